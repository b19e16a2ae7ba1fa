"""The benchmark scripts run (smoke test on the CPU with tiny settings)."""

from __future__ import annotations

import csv
import subprocess
import sys

from tests.conftest import REPO


def test_gpu_throughput_script_runs_on_cpu(tmp_path):
    out = tmp_path / "throughput.csv"
    cmd = [sys.executable, str(REPO / "benchmarks/bench_gpu_throughput.py"), "--device", "cpu"]
    cmd += ["--models", "demo_vit_p14_reg4", "--strategies", "lora", "cnn_adapter"]
    cmd += ["--size", "56", "--batch", "2", "--steps", "1", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    rows = list(csv.DictReader(out.open()))
    assert [(r["model"], r["strategy"]) for r in rows] == [
        ("demo_vit_p14_reg4", "lora"),
        ("demo_vit_p14_reg4", "cnn_adapter"),
    ]
    assert all(float(r["images_per_s"]) > 0 and r["dtype"] == "float32" for r in rows)


def test_augment_script_runs(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks/bench_augment.py"), "--images", "2"]
    result = subprocess.run([*cmd, "--side", "64"], check=True, capture_output=True, text=True)
    assert "images/s per core" in result.stdout and "CPUs per GPU" in result.stdout
