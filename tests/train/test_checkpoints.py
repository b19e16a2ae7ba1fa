"""When `last.pt` is written (time, last epoch, stop signals), the authors' determinism flags,
and an out-of-memory failure that names the run, the estimate and what the retry changes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from densebench.runtime import configure_torch
from densebench.spec import build_run_spec
from densebench.train import loop
from densebench.train.checkpoints import CheckpointClock, host_copy
from tests.train.test_resume import epochs_logged, results, start


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_clock_writes_by_elapsed_minutes_and_after_the_last_epoch():
    now = FakeClock()
    clock = CheckpointClock(30, now)
    now.now = 29 * 60
    assert not clock.due(3, 150)
    now.now = 30 * 60
    assert clock.due(4, 150)
    clock.written()
    now.now = 31 * 60
    assert not clock.due(5, 150) and clock.due(150, 150)
    assert CheckpointClock(0, now).due(1, 150)  # 0: every epoch


def test_host_copies_share_no_storage():
    state = {"w": torch.ones(3), "nested": [{"m": torch.zeros(2)}], "step": 4}
    copy = host_copy(state)
    state["w"].add_(1)
    assert torch.equal(copy["w"], torch.ones(3)) and copy["step"] == 4
    assert copy["nested"][0]["m"].data_ptr() != state["nested"][0]["m"].data_ptr()


def test_determinism_is_the_authors_cudnn_flags_unless_asked_for_more():
    try:
        configure_torch(0, 1)
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert not torch.are_deterministic_algorithms_enabled()
        configure_torch(0, 1, deterministic_algorithms=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()  # strict: no warn-only
    finally:
        torch.use_deterministic_algorithms(False)


@pytest.fixture(scope="module")
def sparse_spec_file(tmp_path_factory, demo_config, registries) -> Path:
    """A 6-epoch run that writes last.pt only at the end (checkpoint_every_min large), with one
    loader worker (SLURM signals every process of the step, workers included)."""
    train = dict(demo_config["train"], epochs=6, batch_size=2)
    train.update(checkpoint_every_min=1000, num_workers=1)
    config = dict(demo_config, train=train)
    spec = build_run_spec(config, "demo_nuclei", "demo_vit_p16", "transformer_adapter", registries)
    path = tmp_path_factory.mktemp("spec") / "spec.json"
    path.write_text(spec.to_json())
    return path


def test_a_stop_signal_mid_epoch_saves_the_last_completed_epoch_and_resumes_exactly(
    sparse_spec_file, small_store, tmp_path
):
    reference = tmp_path / "reference"
    proc = start(sparse_spec_file, small_store, reference)
    assert proc.wait() == 0, proc.stderr.read().decode()

    out = tmp_path / "stopped"
    proc = start(sparse_spec_file, small_store, out)
    while proc.poll() is None and epochs_logged(out) < 3:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGTERM)  # as SLURM: every process of the step
    proc.wait()
    waited = 0.0
    while "stopped by" not in Path(f"{out}.log").read_text() and waited < 60:
        time.sleep(0.1)  # the shell dies at once; the training saves, then says so
        waited += 0.1
    log = Path(f"{out}.log").read_text()
    assert "stopped by SIGTERM" in log, log
    done = epochs_logged(out)
    saved = torch.load(out / "last.pt", weights_only=False)
    assert saved["epoch"] == done >= 3 and len(saved["log"]) == done
    assert not (out / "best.pt").exists()

    final = start(sparse_spec_file, small_store, out)
    assert final.wait() == 0, final.stderr.read().decode()
    assert f"resuming from {out / 'last.pt'} after epoch {done}" in Path(f"{out}.log").read_text()
    ref_rows, ref_matrices, ref_state = results(reference)
    rows, matrices, state = results(out)
    assert rows == ref_rows and np.array_equal(matrices, ref_matrices)
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)


def test_out_of_memory_names_the_run_the_estimate_and_the_retry(
    demo_config, registries, small_store, tmp_path, monkeypatch
):
    def oom(self, x, y):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loop.Trainer, "step", oom)
    spec = build_run_spec(demo_config, "demo_nuclei", "demo_vit_p16", "lora", registries)
    site = {
        "gpu": "always",
        "gpus": [{"name": "small-40g", "memory_gb": 40}, {"name": "big-80g", "memory_gb": 80}],
    }
    lines = []
    for attempt in (1, 2, 3):
        with pytest.raises(SystemExit) as stop:
            loop.train_run(spec, small_store, tmp_path / "run", attempt=attempt, policy=site)
        lines.append(str(stop.value.code))
    for attempt, line in enumerate(lines, 1):
        assert "\n" not in line and line.startswith("out of GPU memory: run demo_nuclei / ")
        assert f"demo_vit_p16 / lora (S = {spec.input_size}), attempt {attempt}, estimated" in line
    assert "without activation checkpointing" in lines[0]
    assert "attempt 2 turns activation checkpointing on" in lines[0]
    assert "with activation checkpointing" in lines[1]
    assert "attempt 3 asks for the next GPU class big-80g (80 GB)" in lines[1]
    assert "no retry can give it more memory" in lines[2]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == []  # nothing half-written
