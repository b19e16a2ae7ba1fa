"""Wall time of `make demo` from scratch, and whether every cell of the demo learns.

Target (issue 12): <= 10 minutes on the 2-core development machine, the install (`make venv`,
about 2 minutes here) included. `--ablations` then times `make demo-ablations`.
Target (issue 20 item 4): every (dataset, model, strategy) cell's Mean Dice (the full test
set's point value) at least `--margin` (0.10) above its dataset's background-only Mean Dice:
the Mean Dice, by the project's own metric code and the run's scoring definitions, of a
prediction of background for every test pixel (each run's summed test confusion matrix with
every count moved to the background column). Cells below are flagged; `--out` writes the
table as JSON.
Runs in a scratch directory (config/ linked in), so the checkout's results/ are untouched, then
runs again to check that the second run has nothing to do. `--score DIR` only scores the
results of an earlier run in DIR (no run, no timing).
Usage: python benchmarks/bench_demo.py [--cores 2] [--keep DIR] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "config/demo.yaml"
MARGIN = 0.10
"""How far above the background-only Mean Dice a learning cell must be."""


def snakemake(workdir: Path, cores: int, *extra: str) -> subprocess.CompletedProcess:
    """Run the demo workflow in workdir."""
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), "--configfile", CONFIG]
    cmd += ["--cores", str(cores), *extra]
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    return subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)


ABLATIONS = ("ablation_lora_rank", "ablation_input_size", "token_similarity", "qualitative")
ABLATIONS += ("baseline_unet",)
"""The targets of `make demo-ablations`."""


def mean_dice(workdir: Path):
    """Mean Dice (full test set, `point`) of every run: a (dataset, model, strategy) frame."""
    import pandas as pd

    table = pd.read_csv(workdir / "results/tables/results.csv")
    dice = table[(table["metric"] == "Mean_Dice") & table["class"].isna()]
    return dice[["dataset", "model", "strategy", "point"]].rename(columns={"point": "mean_dice"})


def background_only(confusion: Path, options: dict) -> float:
    """Mean Dice of predicting background everywhere on the test set of a run's confusion file."""
    import numpy as np

    from densebench.evaluate.confusion import load_confusion
    from densebench.evaluate.metrics import compute_metrics

    matrices, _, _ = load_confusion(confusion)
    rows = matrices.sum(axis=0).sum(axis=1)  # ground-truth pixels per class
    matrix = np.zeros((len(rows), len(rows)), dtype=np.float64)
    matrix[:, 0] = rows
    return compute_metrics(matrix, **options)["Mean_Dice"]


def cells(workdir: Path, margin: float) -> list[dict]:
    """Every demo cell: Mean Dice, its dataset's background-only level, the gap, learns or not."""
    from densebench.config import load_config
    from densebench.fixes import scoring_options

    options = scoring_options(load_config(REPO / CONFIG))
    rows, levels = [], {}
    for rec in mean_dice(workdir).sort_values(["dataset", "model", "strategy"]).itertuples():
        confusion = workdir / "results/runs" / rec.dataset / rec.model / rec.strategy
        if rec.dataset not in levels:
            levels[rec.dataset] = background_only(confusion / "confusion.npz", options)
        level = levels[rec.dataset]
        rows.append(
            {
                "dataset": rec.dataset,
                "model": rec.model,
                "strategy": rec.strategy,
                "mean_dice": round(float(rec.mean_dice), 4),
                "background_only": round(level, 4),
                "gap": round(float(rec.mean_dice) - level, 4),
                "learns": bool(rec.mean_dice >= level + margin),
            }
        )
    return rows


def cell_table(rows: list[dict], margin: float) -> str:
    """The cells as text: Mean Dice per (dataset, model) row and strategy column, `*` after a
    cell below background-only + margin, the background-only level in the last column."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["cell"] = [f"{r['mean_dice']:.3f}{'' if r['learns'] else '*'}" for r in rows]
    table = frame.pivot_table(
        index=["dataset", "model"], columns="strategy", values="cell", aggfunc="first"
    )
    table["background_only"] = frame.groupby(["dataset", "model"])["background_only"].first()
    table["background_only"] = table["background_only"].map("{:.3f}".format)
    failing = sum(not r["learns"] for r in rows)
    return (
        f"{table.to_string()}\n(* = below background-only + {margin:.2f}: "
        f"{failing} of {len(rows)} cells)"
    )


def main() -> None:
    """Time a from-scratch demo run, a no-op rerun and (--ablations) `make demo-ablations`;
    print and (--out) write every cell's Mean Dice against its background-only level."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--ablations", action="store_true", help="then time the ablations")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--score", type=Path, help="only score an earlier run's folder")
    parser.add_argument("--margin", type=float, default=MARGIN)
    parser.add_argument("--out", type=Path, help="write timings and cells as JSON here")
    args = parser.parse_args()
    report: dict = {"cores": args.cores, "margin": args.margin}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.score or args.keep or Path(tmp)
        if not args.score:
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
                f"demo from scratch: {full:.0f} s ({full / 60:.1f} min, target <= 10 min with "
                f"the install) on {args.cores} cores; rerun {noop:.1f} s, nothing to do: {nothing}"
            )
            report |= {"demo_s": round(full, 1), "rerun_s": round(noop, 1), "noop": nothing}
        rows = cells(workdir, args.margin)
        report["cells"] = rows
        report["all_learn"] = all(r["learns"] for r in rows)
        print(f"Mean Dice per cell (full test set):\n{cell_table(rows, args.margin)}")
        if args.ablations and not args.score:
            start = time.perf_counter()
            snakemake(workdir, args.cores, *ABLATIONS)
            report["ablations_s"] = round(time.perf_counter() - start, 1)
            print(f"demo ablations: {report['ablations_s']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
