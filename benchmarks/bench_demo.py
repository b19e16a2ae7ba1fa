"""Wall time of `make demo` from scratch: the full demo workflow on config/demo.yaml.

Target (issue 2): <= 15 minutes on the 2-core development machine (venv already installed).
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


def main() -> None:
    """Time a from-scratch demo run and a no-op rerun."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config").symlink_to(REPO / "config")
        start = time.perf_counter()
        snakemake(Path(tmp), args.cores)
        full = time.perf_counter() - start
        start = time.perf_counter()
        rerun = snakemake(Path(tmp), args.cores)
        noop = time.perf_counter() - start
        nothing = "Nothing to be done" in rerun.stdout + rerun.stderr
    print(
        f"demo from scratch: {full:.0f} s ({full / 60:.1f} min, target <= 15 min) on "
        f"{args.cores} cores; rerun {noop:.1f} s, nothing to do: {nothing}"
    )


if __name__ == "__main__":
    main()
