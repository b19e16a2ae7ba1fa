"""The benchmark scripts run (smoke test on the CPU with tiny settings)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from tests.conftest import REPO


def load_bench_gpu(monkeypatch):
    """benchmarks/bench_gpu.py as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("bench_gpu", REPO / "benchmarks/bench_gpu.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_gpu", module)  # its dataclasses look it up
    spec.loader.exec_module(module)
    return module


def test_gpu_benchmark_smoke_runs_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(REPO / "benchmarks/bench_gpu.py"), "--smoke", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["torch"] and result["peak_tflops"] is None
    records = result["records"]
    strategies = ["frozen", "lora", "cnn_adapter", "transformer_adapter"]
    assert sorted((r["model"], r["strategy"]) for r in records) == sorted(
        (m, s) for m in ("demo_vit_p14_reg4", "demo_vit_p16") for s in strategies
    )
    for r in records:
        assert r["status"] == "ok" and r["dtype"] == "float32", r
        assert r["images_per_s"] > 0 and 0.0 <= r["data_wait_share"] <= 1.0
        assert r["estimate_gb"] > 0 and r["peak_gb"] is None
        assert r["mfu"] is None and r["hfu"] is None and r["counted_gflop_per_image"] > 0
        assert r["size"] == (32 if r["model"] == "demo_vit_p16" else 28)


def test_gpu_benchmark_peak_and_sizes(monkeypatch):
    bench = load_bench_gpu(monkeypatch)
    assert bench.peak_flops("NVIDIA H100 80GB HBM3", None) == 989e12
    assert bench.peak_flops("NVIDIA H100 PCIe", None) == 756e12
    assert bench.peak_flops("NVIDIA H200", None) == 989e12
    assert bench.peak_flops("NVIDIA A100-SXM4-80GB", None) == 312e12
    assert bench.peak_flops("cpu", None) is None and bench.peak_flops("cpu", 2.0) == 2e12
    assert bench.mfu(1e12, 100.0, 989e12) == 1e14 / 989e12 and bench.mfu(1.0, 1.0, None) is None
    sides = [bench.nearest_multiple(s, p) for s in (448, 992) for p in (16, 14)]
    assert sides == [448, 448, 992, 994]


def test_augment_script_runs(tmp_path):
    cmd = [sys.executable, str(REPO / "benchmarks/bench_augment.py"), "--images", "2"]
    result = subprocess.run([*cmd, "--side", "64"], check=True, capture_output=True, text=True)
    assert "images/s per core" in result.stdout and "CPUs per GPU" in result.stdout
