"""Wall time of the paper grid's dry-run (`snakemake -n` on config/config.yaml).

Target (issue 2): <= 10 s on the 2-core development machine, listing 1530 training jobs.
Runs in a scratch directory with only config/ linked in, so no data or weights are present.
Usage: python benchmarks/bench_dry_run.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def dry_run(workdir: Path) -> tuple[float, int]:
    """Seconds of one dry-run and the number of training jobs it lists."""
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "snakemake"), "--snakefile", str(REPO / "Snakefile")]
    cmd += ["--directory", str(workdir), "-n", "--quiet", "rules", "reason"]
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    seconds = time.perf_counter() - start
    train = re.search(r"^train\s+(\d+)$", out.stdout + out.stderr, re.MULTILINE)
    return seconds, int(train[1]) if train else -1


def main() -> None:
    """Time the dry-run a few times and print the best and median."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config").symlink_to(REPO / "config")
        runs = [dry_run(Path(tmp)) for _ in range(args.repeats)]
    times = sorted(s for s, _ in runs)
    print(
        f"paper-grid dry-run: {runs[0][1]} training jobs; best {times[0]:.2f} s, "
        f"median {times[len(times) // 2]:.2f} s over {args.repeats} runs (target <= 10 s)"
    )


if __name__ == "__main__":
    main()
