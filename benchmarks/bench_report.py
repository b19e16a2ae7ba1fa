"""Wall time of the published-source report (`snakemake --cores 2 report --config
results_source=published`) from hand-dropped published files, and of `snakemake --report`.

Target (issue 11): every figure and table of the published source in under a minute on the
2-core development machine. Runs in a scratch directory with config/ linked in and the
committed published files (tests/fixtures/published/) dropped into resources/published/.
Usage: python benchmarks/bench_report.py [--repeats 2] [--cores 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "tests/fixtures/published"


def timed(workdir: Path, *args: str) -> float:
    """Seconds of one snakemake call in workdir."""
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), *args]
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - start


def one_run(cores: int) -> tuple[float, float, int]:
    """(report seconds, --report seconds, files written) in a fresh scratch directory."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config").symlink_to(REPO / "config")
        drop = work / "resources/published"
        drop.mkdir(parents=True)
        for path in PUBLISHED.glob("*.json"):
            shutil.copy(path, drop / path.name)
        config = ("--config", "results_source=published")
        report = timed(work, "--cores", str(cores), "report", *config)
        html = timed(work, "report", "--report", "results/report.html", *config)
        files = sum(1 for p in (work / "results/report/published").rglob("*") if p.is_file())
    return report, html, files


def main() -> None:
    """Time the published report a few times and print the best and median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    runs = [one_run(args.cores) for _ in range(args.repeats)]
    report = sorted(r for r, _, _ in runs)
    html = sorted(h for _, h, _ in runs)
    print(
        f"published report: {runs[0][2]} files; best {report[0]:.1f} s, median "
        f"{report[len(report) // 2]:.1f} s over {args.repeats} runs on {args.cores} cores "
        f"(target < 60 s); snakemake --report: best {html[0]:.1f} s"
    )


if __name__ == "__main__":
    main()
