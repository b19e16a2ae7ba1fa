"""Preemption safety: a training job killed (SIGKILL) at any point and started again resumes from
`last.pt` and ends with exactly the numbers of an uninterrupted run (CPU, deterministic)."""

from __future__ import annotations

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from densebench.spec import build_run_spec

BIN = Path(sys.executable).parent
TIMING = ("images_per_s", "epoch_s", "eta_s")


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory, demo_config, registries) -> Path:
    """A 6-epoch Transformer-adapter run (drop-path draws from the global RNG)."""
    config = dict(demo_config, train=dict(demo_config["train"], epochs=6, batch_size=2))
    spec = build_run_spec(config, "demo_nuclei", "demo_vit_p16", "transformer_adapter", registries)
    path = tmp_path_factory.mktemp("spec") / "spec.json"
    path.write_text(spec.to_json())
    return path


def start(spec_file: Path, store: Path, out: Path) -> subprocess.Popen:
    """Start a real run's jobs, train then predict, as the Snakemake rules do (one group); the
    job log (one line per epoch) goes to <out>.log."""
    train = [str(BIN / "densebench"), "train", "--spec", f"@{spec_file}", "--store", str(store)]
    train += ["--out-dir", str(out)]
    predict = [str(BIN / "densebench"), "predict", "--spec", f"@{spec_file}"]
    predict += ["--checkpoint", str(out / "best.pt"), "--store", str(store)]
    predict += ["--out", str(out / "confusion.npz")]
    script = f"{shlex.join(train)} && {shlex.join(predict)}"
    with open(f"{out}.log", "w") as log:
        return subprocess.Popen(
            ["bash", "-c", script], stdout=log, stderr=subprocess.PIPE, start_new_session=True
        )


def epochs_logged(out: Path) -> int:
    """Epochs the job log reports as done so far."""
    log = Path(f"{out}.log")
    return log.read_text().count(" val_mIoU ") if log.exists() else 0


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], delay: float = 0.0) -> bool:
    """SIGKILL the job once `ready()` holds (plus a delay); True if it was still running."""
    while proc.poll() is None and not ready():
        time.sleep(0.005)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


def results(out: Path) -> tuple[list[dict], np.ndarray, dict]:
    """The log without timing columns, the confusion matrices and the best state."""
    rows = [
        {k: v for k, v in row.items() if k not in TIMING}
        for row in csv.DictReader((out / "train_log.csv").open())
    ]
    matrices = np.load(out / "confusion.npz")["matrices"]
    state = torch.load(out / "best.pt", weights_only=False)["state"]
    return rows, matrices, state


def test_killed_job_resumes_to_identical_results(spec_file, small_store, tmp_path):
    reference = tmp_path / "reference"
    proc = start(spec_file, small_store, reference)
    assert proc.wait() == 0, proc.stderr.read().decode()

    out = tmp_path / "interrupted"
    kills = [
        (lambda: False, 1.0),  # while importing / building the model
        (lambda: (out / "last.pt").exists(), 0.0),  # right after the first checkpoint
        (lambda: epochs_logged(out) >= 3, 0.05),  # inside a later epoch
        (lambda: epochs_logged(out) >= 5, 0.0),  # between the log line and the checkpoint
        (lambda: (out / "best.pt").exists(), 0.0),  # while writing provenance / log
        (lambda: not (out / "last.pt").exists() and epochs_logged(out) == 6, 0.5),  # predicting
    ]
    interrupted = 0
    for ready, delay in kills:
        interrupted += kill_when(start(spec_file, small_store, out), ready, delay)
    final = start(spec_file, small_store, out)
    assert final.wait() == 0, final.stderr.read().decode()
    assert interrupted >= 3

    ref_rows, ref_matrices, ref_state = results(reference)
    rows, matrices, state = results(out)
    assert rows == ref_rows and len(rows) == 6
    assert np.array_equal(matrices, ref_matrices)
    assert state.keys() == ref_state.keys()
    assert all(torch.equal(state[k], ref_state[k]) for k in state)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left
    assert not (out / "last.pt").exists()  # a finished run keeps no resume file
