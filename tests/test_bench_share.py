"""The shared-encoder benchmark runs (smoke sizes on the CPU): both settings are timed on both
paths, and every run's best.pt is the same file from the separate and the shared job."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO


def test_share_benchmark_smoke(tmp_path):
    out = tmp_path / "share.json"
    cmd = [sys.executable, str(REPO / "benchmarks/bench_share.py"), "--smoke", "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    result = json.loads(out.read_text())
    settings = {r["setting"]: r for r in result["settings"]}
    assert sorted(settings) == ["demo", "vitl"]
    assert settings["vitl"]["embed_dim"] == 1024 and settings["vitl"]["depth"] >= 1
    for r in settings.values():
        assert set(r["separate_s"]) == set(r["identical"]) == set(r["profile"]["train_step_s"])
        assert len(r["identical"]) == 3 and all(r["identical"].values()), r["identical"]
        for measure in ("s", "cpu_s", "epoch_s"):
            assert all(s > 0 for s in r[f"separate_{measure}"].values()), measure
            assert r[f"shared_{measure}"] > 0, measure
        assert r["ratio"] == r["shared_s"] / r["separate_total_s"] > 0
        assert r["train_images"] > 0 and r["val_images"] > 0 and r["profile"]["encode_s"] > 0
    assert result["target_met"] == (
        settings["vitl"]["ratio"] <= result["target_shared_over_separate_at_vitl"]
    )
