# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
CORES ?= 2
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: venv demo demo-ablations test lint format dry-run bench clean

venv: $(VENV)/.installed

# pip takes torch 2.14.1 / torchvision 0.29.1 (pinned in pyproject.toml) from local disk here.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: venv
	snakemake --configfile config/demo.yaml --cores $(CORES)

# The demo's ablations at tiny scale (their figures under results/ablations/), after `make demo`.
demo-ablations: venv
	snakemake --configfile config/demo.yaml --cores $(CORES) ablation_lora_rank ablation_input_size token_similarity qualitative baseline_unet

test: venv lint
	pytest

lint: venv
	ruff check workflow tests benchmarks
	ruff format --check workflow tests benchmarks
	lint-imports
	snakefmt --check Snakefile workflow/rules
	snakemake --lint --configfile config/demo.yaml
	snakemake --lint

format: venv
	ruff check --fix workflow tests benchmarks
	ruff format workflow tests benchmarks
	snakefmt Snakefile workflow/rules

dry-run: venv
	snakemake -n --quiet

bench: venv
	python benchmarks/bench_dry_run.py
	python benchmarks/bench_bootstrap.py
	python benchmarks/bench_report.py
	python benchmarks/bench_demo.py

clean:
	rm -rf results logs resources/raw/demo_* resources/datasets/demo_*.zarr .snakemake
