"""The workflow on a real single-node SLURM cluster (ci/local_slurm.sh: munge, slurmctld,
slurmd, slurmdbd + MariaDB, two fake GPUs), through the slurm executor and the project's
profile template (workflow/profiles/slurm, placeholders filled, no container).

The reduced demo's first training attempt outlives its 1-minute time limit: each training is
paused (SIGSTOP) once it has saved its first epoch to last.pt, as a training too long for its
limit would be, so SLURM ends the job at the limit (TIMEOUT) however fast this machine trains
(a few epochs, not the hundreds it would take otherwise). Snakemake resubmits it with attempt 2
and more runtime, and the training resumes from last.pt. One prediction is killed (SIGKILL, as
the out-of-memory killer would): its job fails and reruns from best.pt, nothing is retrained.
(A job cancelled with scancel is not retried: the slurm plugin 2.8.0 reads sacct's state
"CANCELLED by <uid>" as still running and waits.) Every number equals a local run of the same
config (its runs and scores, not the report), which runs meanwhile beside it.

Needs root and Debian's apt (it installs slurm-wlm, munge and mariadb). Elsewhere it is skipped,
unless DENSEBENCH_REQUIRE_CLUSTER=1 (set by .ci/run), where it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO
from tests.test_workflow import job_counts, snakemake, snakemake_command

pytestmark = pytest.mark.workflow
SLURM = REPO / "ci/local_slurm.sh"
ACCOUNT, PARTITION = "ci", "debug"
FIRST_LIMIT_MIN, RETRY_LIMIT_MIN = 1, 20
EPOCHS = 6
RUNS = [("demo_glands", "demo_vit_p8", s) for s in ("frozen", "lora")]
LOCAL_RULES = {"all"}


def cluster_unavailable() -> str | None:
    """Why a local SLURM cluster cannot be started here, or None."""
    if os.geteuid() != 0:
        return "needs root (it installs and starts slurm, munge and mariadb)"
    if not shutil.which("apt-get"):
        return "needs Debian's apt-get"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_conf():
    """The cluster's configuration for this module (tests/conftest.py hides it from the rest)."""
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = "/etc/slurm/slurm.conf"
    yield
    if before is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = before


def slurm_script(command: str) -> subprocess.CompletedProcess:
    """Run ci/local_slurm.sh <command> with the test's cluster settings."""
    env = dict(os.environ, LOCAL_SLURM_FAKE_GPUS="2", LOCAL_SLURM_PARTITION=PARTITION)
    env["LOCAL_SLURM_ACCOUNT"] = ACCOUNT
    # one start at a time on this machine; -o: the daemons a start spawns must not hold the lock
    lock = ["flock", "-o", "/tmp/densebench-local-slurm.lock"]
    return subprocess.run(
        [*lock, "bash", str(SLURM), command], capture_output=True, text=True, env=env, timeout=1800
    )


@pytest.fixture(scope="module")
def slurm_cluster():
    """A running cluster; stopped afterwards (by the PIDs it recorded) only if started here."""
    reason = cluster_unavailable()
    if reason:
        if os.environ.get("DENSEBENCH_REQUIRE_CLUSTER") == "1":
            pytest.fail(f"the cluster test is required here but {reason}")
        pytest.skip(reason)
    was_running = slurm_script("status").returncode == 0
    started = slurm_script("start")
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    yield
    if not was_running:
        slurm_script("stop")


def ci_profile(path: Path) -> Path:
    """The slurm profile template with its placeholders filled for the local cluster, without
    the container (no image registry here), with CI's short status interval, and with a first
    training attempt too short to finish."""
    template = REPO / "workflow/profiles/slurm/config.v8+.yaml"
    profile = yaml.safe_load(template.read_text())
    assert "<your_account>" in template.read_text()
    profile["default-resources"].update(slurm_account=ACCOUNT, slurm_partition=PARTITION)
    for key in ("software-deployment-method", "apptainer-args"):
        profile.pop(key)
    profile["slurm-init-seconds-before-status-checks"] = 2
    profile["jobs"] = 4
    first, retry = FIRST_LIMIT_MIN, RETRY_LIMIT_MIN
    # no early USR1 here: the first attempt's 1-minute limit ends in SLURM's SIGTERM (TIMEOUT)
    profile["set-resources"] = {"train": {"runtime": f"{first} if attempt == 1 else {retry}"}}
    path.mkdir(parents=True)
    (path / "config.v8+.yaml").write_text(yaml.safe_dump(profile))
    return path


def cluster_config(path: Path) -> Path:
    """The reduced demo on one model, trained EPOCHS epochs, and a GPU requested for every
    train / predict job (resources.gpu: always)."""
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config["models"] = ["demo_vit_p8"]
    config["train"]["epochs"] = EPOCHS
    config["resources"] = {"gpu": "always", "gpus": two_gpu_classes(config)}
    path.write_text(yaml.safe_dump(config))
    return path


def two_gpu_classes(config: dict) -> list[dict]:
    """Two GPU classes split between the runs by the memory model: the frozen run's training
    fits the small one (plain --gpus=1), the LoRA run's only the large one (--gres=gpu:1)."""
    from densebench.config import load_config
    from densebench.memory import estimate
    from densebench.registry import Registries
    from densebench.spec import build_run_spec

    full = load_config(REPO / ".test/config/config.yaml")
    full.update(models=config["models"], train=dict(full["train"], epochs=EPOCHS))
    registries = Registries.load(
        *(REPO / f"config/{axis}.yaml" for axis in ("models", "datasets", "strategies"))
    )
    need = {
        s: estimate(build_run_spec(full, d, m, s, registries), "train", True).gb for d, m, s in RUNS
    }
    assert need["frozen"] < need["lora"]
    return [
        {"name": "small", "memory_gb": (need["frozen"] + need["lora"]) / 2},
        {"name": "large", "memory_gb": 80, "gres": "gpu:1"},
    ]


def sacct(job_ids: list[str]) -> pd.DataFrame:
    """Accounting records of jobs: id, comment (the plugin's rule_<rule>[_wildcards_...]),
    state, time limit and requested TRES."""
    fields = "JobID,Comment,State,Timelimit,ReqTRES"
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "-o", fields, "-j", ",".join(job_ids)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = [line.split("|") for line in out.strip().splitlines()]
    return pd.DataFrame(rows, columns=fields.split(","))


def submitted_ids(output: str) -> list[str]:
    """SLURM job ids of the jobs Snakemake submitted."""
    return re.findall(r"submitted with SLURM jobid (\d+)", output)


def rule_of(comment: str) -> str:
    """Rule (or group) name of a job from its comment."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def kill_first_prediction(workdir: Path, killed: list[str], stop: threading.Event) -> None:
    """SIGKILL the first `densebench predict` process of the cluster run (once), as the kernel's
    out-of-memory killer would; record the confusion file it was writing."""
    while not stop.is_set() and not killed:
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
                here = (proc / "cwd").resolve() == workdir.resolve()
            except OSError:
                continue
            if here and b"predict" in args and any(a.endswith(b"densebench") for a in args):
                time.sleep(0.5)
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(args[args.index(b"--out") + 1].decode())
                return
        time.sleep(0.1)


def pause_first_attempts(workdir: Path, paused: list[str], stop: threading.Event) -> None:
    """SIGSTOP each `densebench train` process of the cluster run once it has written last.pt
    (one per run: the retry is left to finish); record their output folders."""
    while not stop.is_set() and len(paused) < len(RUNS):
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                args = (proc / "cmdline").read_bytes().split(b"\0")
                here = (proc / "cwd").resolve() == workdir.resolve()
            except OSError:
                continue
            if not (here and b"train" in args and any(a.endswith(b"densebench") for a in args)):
                continue
            out = args[args.index(b"--out-dir") + 1].decode()
            if out not in paused and (workdir / out / "last.pt").exists():
                os.kill(int(proc.name), signal.SIGSTOP)
                paused.append(out)
        time.sleep(0.05)


def run_files(workdir: Path, name: str) -> list[Path]:
    return [workdir / f"results/runs/{d}/{m}/{s}/{name}" for d, m, s in RUNS]


@pytest.fixture(scope="module")
def cluster_run(slurm_cluster, tmp_path_factory):
    """The reduced demo through SLURM, and the same config's runs and scores made locally at
    the same time."""
    root = tmp_path_factory.mktemp("cluster")
    profile = ci_profile(root / "profile")
    config = cluster_config(root / "config.yaml")
    work, local = root / "slurm", root / "local"
    for folder in (work, local):
        folder.mkdir()
        (folder / "config").symlink_to(REPO / "config")
    dry = snakemake(work, "-n", "--quiet", "rules", "--configfile", str(config))
    planned = job_counts(dry.stdout + dry.stderr)
    scores = "results/scores/demo_glands.csv"
    cmd, env = snakemake_command(local, scores, "--configfile", str(config), "--cores", "2")
    local_log = root / "local.log"
    with local_log.open("w") as sink:
        beside = subprocess.Popen(cmd, env=env, stdout=sink, stderr=subprocess.STDOUT)
    start = time.monotonic()
    killed, paused, stop = [], [], threading.Event()
    killer = threading.Thread(target=kill_first_prediction, args=(work, killed, stop))
    pauser = threading.Thread(target=pause_first_attempts, args=(work, paused, stop))
    killer.start()
    pauser.start()
    cmd, env = snakemake_command(work, "--configfile", str(config), "--profile", str(profile))
    run = subprocess.run(
        ["timeout", "-s", "INT", "-k", "30", "1200", *cmd],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.monotonic() - start
    stop.set()
    killer.join()
    pauser.join()
    assert beside.wait(timeout=900) == 0, local_log.read_text()[-3000:]
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    print(f"cluster run: {seconds:.0f} s")
    return {
        "work": work,
        "local": local,
        "config": config,
        "profile": profile,
        "output": output,
        "planned": planned,
        "jobs": sacct(submitted_ids(output)),
        "killed": killed,
        "paused": paused,
    }


def test_every_job_went_through_sbatch_and_only_run_jobs_asked_for_a_gpu(cluster_run):
    jobs, planned = cluster_run["jobs"], cluster_run["planned"]
    done = jobs[jobs["State"] == "COMPLETED"]
    completed = Counter(rule_of(c) for c in done["Comment"])
    assert planned["train"] == planned["predict_with_objects"] == len(RUNS)  # demo_glands
    expected = {rule: n for rule, n in planned.items() if rule not in LOCAL_RULES | {"total"}}
    assert completed == expected
    is_run = jobs["Comment"].map(rule_of).isin(["train", "predict", "predict_with_objects"])
    assert jobs.loc[is_run, "ReqTRES"].str.contains("gres/gpu=1").all()
    assert not jobs.loc[~is_run, "ReqTRES"].str.contains("gpu").any()


def test_a_small_and_a_large_cell_ask_for_different_gpu_classes(cluster_run):
    first = {}
    for strategy, note in re.findall(
        r"Training demo_vit_p8 / (\w+) on demo_glands \((1 GPU \S+): est", cluster_run["output"]
    ):
        first.setdefault(strategy, note)
    assert first == {"frozen": "1 GPU small", "lora": "1 GPU large"}
    jobs = cluster_run["jobs"]
    trainings = jobs[jobs["Comment"].map(rule_of) == "train"]
    assert (trainings["State"] == "COMPLETED").sum() == len(RUNS)


def test_a_timed_out_training_is_retried_with_more_runtime_and_resumes(cluster_run):
    jobs, work = cluster_run["jobs"], cluster_run["work"]
    runs = jobs[jobs["Comment"].map(rule_of) == "train"]
    timed_out = runs[runs["State"] == "TIMEOUT"]
    assert len(timed_out) >= 1, runs
    assert set(timed_out["Timelimit"]) == {f"00:{FIRST_LIMIT_MIN:02d}:00"}
    assert set(runs.loc[runs["State"] == "COMPLETED", "Timelimit"]) == {
        f"00:{RETRY_LIMIT_MIN:02d}:00"
    }
    logs = [work / f"logs/train/{d}/{m}/{s}.log" for d, m, s in RUNS]
    resumed = [
        re.search(r"resuming from .*last\.pt after epoch (\d+)", p.read_text()) for p in logs
    ]
    assert sum(m is not None for m in resumed) == len(timed_out)
    assert all(int(m[1]) >= 1 for m in resumed if m)
    assert len(cluster_run["paused"]) == len(RUNS)
    assert not any(p.exists() for p in run_files(work, "last.pt"))


def test_a_killed_prediction_reruns_without_retraining(cluster_run):
    jobs, killed = cluster_run["jobs"], cluster_run["killed"]
    assert len(killed) == 1
    dataset, model, strategy = Path(killed[0]).parent.parts[-3:]
    cell = f"wildcards_{dataset}_{model}_{strategy}"
    # demo_glands has instance labels: its prediction also writes the run's object tallies
    predictions = jobs[jobs["Comment"] == f"rule_predict_with_objects_{cell}"]
    assert list(predictions["State"]) == ["FAILED", "COMPLETED"]
    trainings = jobs[jobs["Comment"] == f"rule_train_{cell}"]
    assert (trainings["State"] == "COMPLETED").sum() == 1
    assert trainings["JobID"].astype(int).max() < predictions["JobID"].astype(int).min()
    log = cluster_run["work"] / f"logs/train/{dataset}/{model}/{strategy}.log"
    assert log.read_text().count(f"epoch {EPOCHS}/{EPOCHS}") == 1


def test_cluster_results_equal_a_local_run(cluster_run):
    work, local = cluster_run["work"], cluster_run["local"]
    pairs = zip(run_files(work, "confusion.npz"), run_files(local, "confusion.npz"), strict=True)
    for ours, theirs in pairs:
        a, b = np.load(ours), np.load(theirs)
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
    logs = zip(run_files(work, "train_log.csv"), run_files(local, "train_log.csv"), strict=True)
    for ours, theirs in logs:
        columns = ["epoch", "lr", "train_loss", "val_mIoU"]
        pd.testing.assert_frame_equal(pd.read_csv(ours)[columns], pd.read_csv(theirs)[columns])
    scores = "results/scores/demo_glands.csv"
    assert (work / scores).read_bytes() == (local / scores).read_bytes()
    for product in ("results/tables/results.csv", "results/report/reproduced/figures/figure3.pdf"):
        assert (work / product).is_file()


def test_a_rerun_through_slurm_submits_nothing(cluster_run):
    cmd, env = snakemake_command(
        cluster_run["work"],
        "--configfile",
        str(cluster_run["config"]),
        "--profile",
        str(cluster_run["profile"]),
    )
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    output = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, output[-3000:]
    assert "Nothing to be done" in output and not submitted_ids(output)


def test_a_shared_job_trains_two_runs_on_one_gpu_and_hands_them_over(slurm_cluster, tmp_path):
    """train.share_frozen_backbone through SLURM: the frozen and CNN-adapter runs of a cell are
    one GPU job (train_shared); each run's own train job only takes its outputs (no GPU); the
    predictions equal a local run with sharing off."""
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config.update(datasets=["demo_tissue"], models=["demo_vit_p8"])
    config.update(strategies=["frozen", "cnn_adapter"], resources={"gpu": "always"})
    config["train"] = dict(config["train"], epochs=1, share_frozen_backbone=True)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    profile = ci_profile(tmp_path / "profile")
    cell = "results/runs/demo_tissue/demo_vit_p8"
    targets = [f"{cell}/{s}/confusion.npz" for s in config["strategies"]]
    work, local = tmp_path / "slurm", tmp_path / "local"
    for folder in (work, local):
        folder.mkdir()
        (folder / "config").symlink_to(REPO / "config")
    cmd, env = snakemake_command(
        work, *targets, "--configfile", str(path), "--profile", str(profile)
    )
    run = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-5000:]
    jobs = sacct(submitted_ids(output))
    rules = jobs["Comment"].map(rule_of)
    assert Counter(rules[jobs["State"] == "COMPLETED"])["train_shared"] == 1
    assert Counter(rules)["train"] == 2 and (jobs["State"] == "COMPLETED").all()
    assert jobs.loc[rules == "train_shared", "ReqTRES"].str.contains("gres/gpu=1").all()
    assert not jobs.loc[rules == "train", "ReqTRES"].str.contains("gpu").any()
    config["train"]["share_frozen_backbone"] = False
    path.write_text(yaml.safe_dump(config))
    snakemake(local, *targets, "--configfile", str(path), "--cores", "2")
    for target in targets:
        ours, theirs = np.load(work / target), np.load(local / target)
        assert np.array_equal(ours["matrices"], theirs["matrices"]), target


RULE_FILES = ("evaluate", "report", "figures")
SHARED_STRATEGIES = ("frozen", "cnn_adapter", "transformer_adapter")


def test_slurm_profile_dry_run_of_the_paper_grid_requests_gpus_only_for_run_jobs(tmp_path):
    # The template as a user runs it first, apptainer included (ci/install_apptainer.sh here).
    if not shutil.which("apptainer"):
        if os.environ.get("DENSEBENCH_REQUIRE_CONTAINER") == "1":
            pytest.fail("apptainer is required here: run ci/install_apptainer.sh")
        pytest.skip("the profile's --sdm apptainer needs an apptainer binary")
    (tmp_path / "config").symlink_to(REPO / "config")
    profile = str(REPO / "workflow/profiles/slurm")
    result = snakemake(tmp_path, "--profile", profile, "-n", "all")
    output = result.stdout + result.stderr
    messages = re.findall(r"Job \d+: (.*)", output)
    jobs = [m for m in messages if m.startswith(("Training ", "Predicting "))]
    # train.share_frozen_backbone: each (dataset, model) trains its frozen, CNN- and
    # Transformer-adapter runs in one shared GPU job; those runs' train jobs only take files
    shared = [m for m in jobs if " on one encoder forward " in m]
    taking = [m for m in jobs if m not in shared and "(no GPU," in m]
    assert len(shared) == 18 * 17 and len(taking) == 3 * len(shared)
    assert all(m.startswith("Training ") for m in taking)
    assert {m.split(" / ")[1].split(" ")[0] for m in taking} == set(SHARED_STRATEGIES)
    runs = [m for m in jobs if m not in taking]
    assert len(runs) == 2 * 1530 - len(taking) + len(shared)
    request = r"\((\d+) GPU (\S+): est\. (\d+) GB (with|without) checkpointing, (\d+) CPUs, .*\)$"
    requests = [re.search(request, m) for m in runs]
    assert all(r and r[1] == "1" and r[2] == "gpu-80g" and 2 <= int(r[5]) <= 16 for r in requests)
    assert all(int(r[3]) <= 80 for r in requests)
    # the ViT-g LoRA / DoRA / full cells checkpoint on the 80 GB class, frozen ones never do
    pairs = zip(runs, requests, strict=True)
    checkpointed = {m.split(" on ")[0] for m, r in pairs if r[4] == "with"}
    assert "Training hoptimus_0 / lora" in checkpointed
    assert not any("/ frozen" in m for m in checkpointed)
    others = [m for m in messages if m not in jobs]
    # scoring and report jobs (cluster jobs of evaluate/report/figures.smk but predict) say so
    text = "".join((REPO / f"workflow/rules/{n}.smk").read_text() for n in RULE_FILES)
    no_gpu_rules = set(re.findall(r"^rule (\w+):", text, re.MULTILINE)) - {"predict"}
    planned = job_counts(output)
    expected = sum(n for rule, n in planned.items() if rule in no_gpu_rules)
    assert planned["score"] == 18 and planned["paired_bootstrap"] == 18
    assert len([m for m in others if "no GPU" in m]) == expected
    assert not any(re.search(r"\d+ GPU", m) for m in others)
