"""Pinning a model's weights revision, through the real Snakemake and a local hub server.

The README says: copy the commit that SNAPSHOT.json records into the model's `revision` to pin
it. That must redo nothing, while pinning another revision must re-download the weights (and so
retrain the model's runs). A local HTTP server answers the hub endpoints that huggingface_hub's
`model_info` and `snapshot_download` call (HF_ENDPOINT points the jobs at it), so the real
download rule, fetch_weights and huggingface_hub run, hermetically.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.test_workflow import BIN, edit_yaml, job_counts, snakemake_command, write_config

pytestmark = pytest.mark.workflow

HUB_REPO = "test-org/tiny-vit"
MODEL = "tiny_vit"
SHA_A = hashlib.sha1(b"commit A").hexdigest()
SHA_B = hashlib.sha1(b"commit B").hexdigest()
COMMITS = {
    SHA_A: {"config.json": b'{"arch": "tiny"}', "model.safetensors": bytes(range(256)) * 4},
    SHA_B: {"config.json": b'{"arch": "tiny", "v": 2}', "model.safetensors": bytes(512)},
}
BRANCHES = {"main": SHA_A}
WEIGHTS = f"resources/weights/{MODEL}"
TRAIN = f"results/runs/demo_glands/{MODEL}/frozen/best.pt"


# ---- the local hub ------------------------------------------------------------------------


def _oid(data: bytes) -> str:
    """A git-like object id of a file (the hub's ETag of a non-LFS file)."""
    return hashlib.sha1(data).hexdigest()


def _json(body: object) -> tuple[int, dict[str, str], bytes]:
    """A 200 JSON answer."""
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _error(status: int, code: str) -> tuple[int, dict[str, str], bytes]:
    """An error answer as the hub sends it (X-Error-Code header)."""
    return status, {"X-Error-Code": code}, b""


def hub_answer(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for one request to the hub serving HUB_REPO at two commits."""
    api = path.startswith("/api/models/")
    parts = path.removeprefix("/api/models/").lstrip("/").split("/")
    repo, rest = "/".join(parts[:2]), parts[2:]
    if repo != HUB_REPO:
        return _error(404, "RepoNotFound")  # also the client's /api/agent-harnesses telemetry
    revision = rest[1] if rest[:1] in (["revision"], ["tree"], ["resolve"]) else "main"
    sha = BRANCHES.get(revision, revision)
    if sha not in COMMITS:
        return _error(404, "RevisionNotFound")
    files = COMMITS[sha]
    if api and rest[:1] == ["tree"]:
        tree = [
            {"type": "file", "path": n, "size": len(d), "oid": _oid(d)} for n, d in files.items()
        ]
        return _json(tree)
    if api:
        siblings = [{"rfilename": name} for name in files]
        return _json(
            {"id": repo, "sha": sha, "gated": False, "private": False, "siblings": siblings}
        )
    data = files.get("/".join(rest[2:]))
    if rest[:1] != ["resolve"] or data is None:
        return _error(404, "EntryNotFound")
    headers = {"X-Repo-Commit": sha, "ETag": f'"{_oid(data)}"', "Content-Length": str(len(data))}
    return 200, headers, b"" if method == "HEAD" else data


class HubHandler(BaseHTTPRequestHandler):
    """Serves hub_answer over HTTP and records each (method, path) on the server."""

    def _answer(self) -> None:
        """Answer the current request."""
        path = self.path.split("?")[0]
        self.server.requests.append((self.command, path))  # type: ignore[attr-defined]
        status, headers, body = hub_answer(self.command, path)
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "GET":
            self.wfile.write(body)

    do_GET = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="module")
def local_hub() -> Iterator[ThreadingHTTPServer]:
    """The local hub, on a random port of 127.0.0.1, for the whole module."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), HubHandler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# ---- the workflow -------------------------------------------------------------------------


def hub_env(server: ThreadingHTTPServer, home: Path) -> dict[str, str]:
    """The environment of a snakemake run against the local hub (no token, not offline)."""
    drop = {"HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"}
    env = {k: v for k, v in os.environ.items() if k not in drop and "PROXY" not in k.upper()}
    return env | {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "HF_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
        "HF_HOME": str(home),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }


def run(workdir: Path, env: dict[str, str], *args: str) -> str:
    """Run snakemake on the repository's Snakefile in workdir; its output (fail if it fails)."""
    cmd, _ = snakemake_command(workdir, *args, "--configfile", str(workdir / "test_config.yaml"))
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"snakemake failed:\n{output[-4000:]}"
    return output


def planned(workdir: Path, env: dict[str, str], target: str = WEIGHTS) -> dict[str, int]:
    """Jobs a dry-run of target schedules, per rule ({} when there is nothing to do)."""
    output = run(workdir, env, target, "-n", "--quiet", "rules")
    return {} if "Nothing to be done" in output else job_counts(output)


def pin(workdir: Path, revision: str | None) -> None:
    """Set the tiny model's `revision` in the workdir's models.yaml."""
    edit_yaml(workdir / "models.yaml", lambda models: models[MODEL].update(revision=revision))


def snapshot(workdir: Path) -> dict:
    """The SNAPSHOT.json of the tiny model's weights."""
    return json.loads((workdir / WEIGHTS / "SNAPSHOT.json").read_text())


@pytest.fixture(scope="module")
def fetched(tmp_path_factory, local_hub) -> tuple[Path, dict[str, str]]:
    """A workdir whose config has the tiny hub model (unpinned), its weights fetched for real."""
    workdir = tmp_path_factory.mktemp("weights")
    (workdir / "config").symlink_to(REPO / "config")
    models = yaml.safe_load((REPO / "config/models.yaml").read_text())
    record = {k: v for k, v in models["demo_vit_p16"].items() if k != "weights"}
    models[MODEL] = record | {"display_name": "Tiny ViT", "hf_repo": HUB_REPO, "revision": None}
    (workdir / "models.yaml").write_text(yaml.safe_dump(models, sort_keys=False))
    registries = {axis: str(REPO / f"config/{axis}.yaml") for axis in ("datasets", "strategies")}
    registries["models"] = str(workdir / "models.yaml")
    write_config(
        workdir,
        datasets=["demo_glands"],
        models=[MODEL],
        strategies=["frozen"],
        registries=registries,
    )
    env = hub_env(local_hub, workdir / "hf_home")
    run(workdir, env, "--cores", "1", WEIGHTS)
    return workdir, env


def test_fetch_records_the_default_branch_commit(fetched, local_hub):
    workdir, env = fetched
    manifest = snapshot(workdir)
    assert manifest["repo"] == HUB_REPO and manifest["revision"] is None
    assert manifest["commit"] == SHA_A
    assert {item["path"] for item in manifest["files"]} == set(COMMITS[SHA_A])
    weights = workdir / WEIGHTS
    assert all((weights / name).read_bytes() == data for name, data in COMMITS[SHA_A].items())
    assert ("GET", f"/{HUB_REPO}/resolve/{SHA_A}/model.safetensors") in local_hub.requests
    assert planned(workdir, env) == {}


@pytest.mark.parametrize("pinned", [SHA_A, SHA_A[:7]], ids=["full-sha", "short-sha"])
def test_pinning_the_fetched_commit_redoes_nothing(fetched, pinned):
    workdir, env = fetched
    pin(workdir, pinned)
    assert planned(workdir, env) == {}
    assert "download_weights" not in planned(workdir, env, TRAIN)


def test_pinning_another_revision_refetches_the_weights(fetched, local_hub):
    workdir, env = fetched
    pin(workdir, SHA_B)
    assert planned(workdir, env) == {"download_weights": 1, "total": 1}
    train = planned(workdir, env, TRAIN)
    assert train["download_weights"] == 1 and train["train"] == 1
    run(workdir, env, "--cores", "1", WEIGHTS)
    manifest = snapshot(workdir)
    assert manifest["revision"] == SHA_B and manifest["commit"] == SHA_B
    weights = workdir / WEIGHTS
    assert all((weights / name).read_bytes() == data for name, data in COMMITS[SHA_B].items())
    assert ("GET", f"/{HUB_REPO}/resolve/{SHA_B}/model.safetensors") in local_hub.requests
    assert planned(workdir, env) == {}
    pin(workdir, SHA_B[:7])  # the short form of the pinned commit is the same pin
    assert planned(workdir, env) == {}
    pin(workdir, None)  # unpinning follows the default branch again: a re-download
    assert planned(workdir, env) == {"download_weights": 1, "total": 1}
