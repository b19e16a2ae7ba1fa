"""The workflow's plan: which runs, products and report grids a config asks for, decided once.

A ``Plan`` (``densebench.plan.runs``) is built from the (validated) config and the three
registries. It owns every run of the grid (training seeds, input sizes, ablation cells), which
(model, strategy) pairs apply, the inputs and identities of every job, and (``plan.report``,
``densebench.plan.report``) each results source's report products and the grids they show.
The rule files (workflow/rules/*.smk) only format paths from it and pass identities as params,
so the plan is tested without Snakemake (tests/test_plan.py).
"""

from densebench.plan.report import OUR_SOURCES, REPORT_DIR, SOURCES, ReportPlan, grid_record
from densebench.plan.runs import (
    RUN_DIR,
    RUN_PRODUCTS,
    InapplicablePairError,
    LocalCopyError,
    Plan,
    Run,
    run_folder,
)
from densebench.plan.sharing import SHARED_DIR, SharingPlan

__all__ = [
    "OUR_SOURCES",
    "REPORT_DIR",
    "RUN_DIR",
    "RUN_PRODUCTS",
    "SHARED_DIR",
    "SOURCES",
    "InapplicablePairError",
    "LocalCopyError",
    "Plan",
    "ReportPlan",
    "Run",
    "SharingPlan",
    "grid_record",
    "run_folder",
]
