#!/usr/bin/env bash
# Run by Snakemake inside the new conda environment once it is created: installs the workflow's
# package (editable: the environment follows the checkout; dependencies come from the YAML).
# DENSEBENCH_SOURCE is the workflow's root, set by workflow/rules/common.smk.
set -euo pipefail
python -m pip install --no-deps --editable "${DENSEBENCH_SOURCE:?not set: run through the workflow}"
