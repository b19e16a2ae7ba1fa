"""Wall time of `make demo` from scratch: the full demo workflow on config/demo.yaml.

Target (issue 12): <= 10 minutes on the 2-core development machine, the install (`make venv`,
about 2 minutes here) included. `--ablations` then times `make demo-ablations`.
Runs in a scratch directory (config/ linked in), so the checkout's results/ are untouched, then
runs again to check that the second run has nothing to do.
Usage: python benchmarks/bench_demo.py [--cores 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, cores: int, *extra: str) -> subprocess.CompletedProcess:
    """Run the demo workflow in workdir."""
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), "--configfile", "config/demo.yaml"]
    cmd += ["--cores", str(cores), *extra]
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)


ABLATIONS = ("ablation_lora_rank", "ablation_input_size", "token_similarity", "qualitative")
ABLATIONS += ("baseline_unet",)
"""The targets of `make demo-ablations`."""


def headline(workdir: Path) -> str:
    """Mean Dice (full test set) per dataset and strategy, averaged over the demo's models."""
    import pandas as pd

    table = pd.read_csv(workdir / "results/tables/results.csv")
    dice = table[(table["metric"] == "Mean_Dice") & table["class"].isna()]
    return (
        dice.pivot_table(index="dataset", columns="strategy", values="point").round(3).to_string()
    )


def main() -> None:
    """Time a from-scratch demo run, a no-op rerun and (--ablations) `make demo-ablations`."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--ablations", action="store_true", help="then time the ablations")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "config").symlink_to(REPO / "config")
        start = time.perf_counter()
        snakemake(workdir, args.cores)
        full = time.perf_counter() - start
        start = time.perf_counter()
        rerun = snakemake(workdir, args.cores)
        noop = time.perf_counter() - start
        nothing = "Nothing to be done" in rerun.stdout + rerun.stderr
        print(
            f"demo from scratch: {full:.0f} s ({full / 60:.1f} min, target <= 10 min with the "
            f"install) on {args.cores} cores; rerun {noop:.1f} s, nothing to do: {nothing}"
        )
        print(f"Mean Dice (mean over the demo's models):\n{headline(workdir)}")
        if args.ablations:
            start = time.perf_counter()
            snakemake(workdir, args.cores, *ABLATIONS)
            print(f"demo ablations: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
