"""Weights stage: fetch, snapshot check, gated-access preflight, offline mode; no network.

A fake hub answers huggingface_hub's own HTTP calls through httpx2.MockTransport, so the real
model_info, auth_check, snapshot_download and hub error parsing run; only the transport is fake.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import httpx2
import huggingface_hub
import pytest
from huggingface_hub import errors as hub_errors
from huggingface_hub.utils._http import default_client_factory, hf_request_event_hook

import densebench.models.preflight as hub_preflight
from densebench.models import weights
from densebench.models.preflight import preflight, summary, write_preflight
from densebench.models.weights import (
    WeightsError,
    check_snapshot,
    classify,
    enforce_offline,
    fetch_weights,
    offline_environment,
    resolve_token,
)

FAKE_TOKEN = "hf_FAKE1234567890"
OTHER_TOKEN = "hf_OTHERtoken987654"
SHA = "0123456789abcdef0123456789abcdef01234567"
FILES = {
    "config.json": b'{"architecture": "vit_large_patch16_224"}',
    "model.safetensors": bytes(range(256)) * 40,
    "extra/notes.txt": b"weights card",
}


# ---- fixtures -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_hub_env(monkeypatch):
    """No token, no offline flag, no stored login; everything restored after the test."""
    for name in ("HF_TOKEN", *weights.OFFLINE_VARS):
        monkeypatch.setenv(name, "0")  # records the original value (or its absence) ...
        monkeypatch.delenv(name)  # ... so a test that sets it (enforce_offline) is undone
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


class FakeHub:
    """Answers the hub's REST and file endpoints from a dict of repos."""

    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}
        self.approved: set[tuple[str, str]] = set()
        self.valid_tokens = {FAKE_TOKEN, OTHER_TOKEN}
        self.requests: list[httpx2.Request] = []
        self.fail_file: str | None = None
        self.status: int | None = None

    def add(self, repo: str, gated: str | bool = False, files: dict | None = None) -> None:
        """Serve a repo (gated: False or "manual") with files at SHA, branch main."""
        self.repos[repo] = {"gated": gated, "files": dict(files or FILES)}

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Route one request."""
        if request.url.path == "/api/agent-harnesses":  # the client's best-effort telemetry
            return httpx2.Response(404, request=request)
        self.requests.append(request)
        auth = request.headers.get("authorization")
        token = auth.removeprefix("Bearer ") if auth else None
        if self.status:
            return httpx2.Response(self.status, request=request)
        if token is not None and token not in self.valid_tokens:
            headers = {"X-Error-Message": "Invalid credentials in Authorization header"}
            return httpx2.Response(401, headers=headers, request=request)
        path = request.url.path
        api = path.startswith("/api/models/")
        parts = path.removeprefix("/api/models/").lstrip("/").split("/")
        repo, rest = "/".join(parts[:2]), parts[2:]
        if repo not in self.repos:
            return _error(request, 404 if token else 401, "RepoNotFound")
        record = self.repos[repo]
        revision = rest[1] if rest[:1] in (["revision"], ["tree"], ["resolve"]) else "main"
        if revision not in ("main", SHA):
            return _error(request, 404, "RevisionNotFound")
        allowed = not record["gated"] or (token, repo) in self.approved
        if api and rest[:1] not in (["tree"], ["auth-check"]):
            body = {"id": repo, "sha": SHA, "gated": record["gated"], "private": False}
            body["siblings"] = [{"rfilename": name} for name in record["files"]]
            return httpx2.Response(200, json=body, request=request)
        if not allowed:
            return _error(request, 401 if token is None else 403, "GatedRepo")
        if api and rest[:1] == ["auth-check"]:
            return httpx2.Response(200, json={}, request=request)
        if api:
            body = [
                {"type": "file", "path": name, "size": len(data), "oid": _oid(data)}
                for name, data in record["files"].items()
            ]
            return httpx2.Response(200, json=body, request=request)
        name = "/".join(parts[4:]) if not api else ""
        data = record["files"][name]
        if name == self.fail_file and request.method == "GET":
            return httpx2.Response(403, headers={"X-Error-Code": "Forbidden"}, request=request)
        headers = {
            "X-Repo-Commit": SHA,
            "ETag": f'"{_oid(data)}"',
            "Content-Length": str(len(data)),
        }
        body = b"" if request.method == "HEAD" else data
        return httpx2.Response(200, headers=headers, content=body, request=request)


def _oid(data: bytes) -> str:
    """A git-like object id of a file."""
    return hashlib.sha1(data).hexdigest()


def _error(request: httpx2.Request, status: int, code: str) -> httpx2.Response:
    """An error response as the hub sends it (X-Error-Code header)."""
    return httpx2.Response(status, headers={"X-Error-Code": code}, request=request)


@pytest.fixture
def fake_hub():
    """Route huggingface_hub's HTTP client to a FakeHub; restore the real client after."""
    hub = FakeHub()

    def client() -> httpx2.Client:
        """A client whose transport is the fake hub (with the hub's own offline hook)."""
        return httpx2.Client(
            transport=httpx2.MockTransport(hub.handle),
            event_hooks={"request": [hf_request_event_hook]},
            follow_redirects=True,
        )

    huggingface_hub.set_client_factory(client)
    yield hub
    huggingface_hub.set_client_factory(default_client_factory)


@pytest.fixture
def paper_models(registries) -> dict[str, dict]:
    """The registry's paper models (those with an hf_repo)."""
    models = {name: rec for name, rec in registries.models.items() if rec.get("hf_repo")}
    assert len(models) == 17
    return models


@pytest.fixture
def no_internet():
    """Hub requests go through a proxy at a closed local port: a real refused connection, as on
    a machine without internet, whether or not this one can reach huggingface.co."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def client() -> httpx2.Client:
        """The hub's client, routed to the dead port."""
        hooks = {"request": [hf_request_event_hook]}
        return httpx2.Client(proxy=f"http://127.0.0.1:{port}", event_hooks=hooks)

    huggingface_hub.set_client_factory(client)
    yield
    huggingface_hub.set_client_factory(default_client_factory)


def _leftovers(out: Path) -> list[str]:
    """Entries beside (and including) out: a failed fetch must leave none, not even a temp."""
    return sorted(p.name for p in out.parent.iterdir()) if out.parent.exists() else []


def _record(repo: str = "org/vit", gated: bool = False, **extra) -> dict:
    """A minimal registry record."""
    return {"hf_repo": repo, "gated": gated, "licence": "MIT", **extra}


# ---- preflight without internet (real sockets, refused) ------------------------------------


def test_preflight_reports_every_paper_model_offline_without_internet(
    registries, paper_models, caplog, monkeypatch, no_internet
):
    calls = []
    real = huggingface_hub.model_info
    monkeypatch.setattr(
        huggingface_hub, "model_info", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    start = time.monotonic()
    with caplog.at_level(logging.INFO, logger="densebench.models.preflight"):
        rows = preflight(registries.models, token=FAKE_TOKEN, timeout=3)
    elapsed = time.monotonic() - start
    by_model = {row["model"]: row for row in rows}
    assert elapsed < 5, f"preflight took {elapsed:.1f} s offline"
    assert len(calls) == 1, "offline must be detected once, not retried per model"
    assert {m for m, r in by_model.items() if r["status"] == "offline"} == set(paper_models)
    assert {m for m, r in by_model.items() if r["status"] == "random-init"} == {
        m for m, r in registries.models.items() if r.get("weights") == "random"
    }
    first = rows[0]
    assert "cannot reach https://huggingface.co" in first["detail"]
    assert "ConnectError" in first["detail"]
    for name in paper_models:
        detail = by_model[name]["detail"]
        assert "login node" in detail and f"resources/weights/{name}" in detail
        assert by_model[name]["repo"] == paper_models[name]["hf_repo"]
    assert FAKE_TOKEN not in json.dumps(rows) + caplog.text


def test_preflight_with_hf_hub_offline_makes_no_call(paper_models, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "model_info", _must_not_be_called)
    monkeypatch.setattr(huggingface_hub, "auth_check", _must_not_be_called)
    start = time.monotonic()
    rows = preflight(paper_models, token=FAKE_TOKEN)
    assert time.monotonic() - start < 1
    assert [row["status"] for row in rows] == ["offline"] * 17
    assert all("HF_HUB_OFFLINE is set" in row["detail"] for row in rows)
    assert all("login node" in row["detail"] for row in rows)


def _must_not_be_called(*args, **kwargs):
    """A hub function that fails the test if preflight calls it."""
    raise AssertionError("the hub was contacted")


def test_preflight_detects_a_dead_connection_once(paper_models, fake_hub):
    def refuse(request):
        """Every connection fails, as without internet."""
        if request.url.path != "/api/agent-harnesses":
            fake_hub.requests.append(request)
        raise httpx2.ConnectError("[Errno 101] Network is unreachable", request=request)

    huggingface_hub.set_client_factory(
        lambda: httpx2.Client(transport=httpx2.MockTransport(refuse))
    )
    rows = preflight(paper_models)
    assert len(fake_hub.requests) == 1
    assert {row["status"] for row in rows} == {"offline"}
    assert "Network is unreachable" in rows[0]["detail"]
    assert "not retried" in rows[1]["detail"] and rows[0]["model"] in rows[1]["detail"]


def test_preflight_does_not_wait_on_a_silent_hub(monkeypatch):
    calls = []

    def hang(*args, **kwargs):
        """A metadata call that never answers in time (packets dropped)."""
        calls.append(args)
        time.sleep(5)

    monkeypatch.setattr(huggingface_hub, "model_info", hang)
    models = {f"m{i}": _record(f"org/m{i}") for i in range(5)}
    start = time.monotonic()
    rows = preflight(models, timeout=0.2)
    assert time.monotonic() - start < 2
    assert len(calls) == 1
    assert [row["status"] for row in rows] == ["offline"] * 5
    assert "no answer within" in rows[0]["detail"]


# ---- status classification through the hub's own error parsing ----------------------------


SCENARIOS = [
    # (name, repo served as, token, approved, expected status, text in detail)
    ("public", False, None, False, "ok", f"resolves to {SHA}"),
    ("public-token", False, FAKE_TOKEN, False, "ok", "access granted"),
    (
        "gated-not-approved",
        "manual",
        FAKE_TOKEN,
        False,
        "gated-not-approved",
        "request access at https://huggingface.co/org/vit with the account of your token",
    ),
    ("gated-approved", "manual", FAKE_TOKEN, True, "ok", "access granted"),
    (
        "gated-no-token",
        "manual",
        None,
        False,
        "no-token",
        "set HF_TOKEN (https://huggingface.co/settings/tokens)",
    ),
    ("bad-token", False, "hf_EXPIREDtoken000000", False, "no-token", "rejected the token"),
]


@pytest.mark.parametrize(
    ("served", "token", "approved", "status", "text"),
    [case[1:] for case in SCENARIOS],
    ids=[case[0] for case in SCENARIOS],
)
def test_preflight_status(fake_hub, served, token, approved, status, text, tmp_path, caplog):
    fake_hub.add("org/vit", gated=served)
    if approved:
        fake_hub.approved.add((token, "org/vit"))
    with caplog.at_level(logging.DEBUG):
        rows = preflight({"vit": _record(gated=bool(served))}, token=token)
    (row,) = rows
    assert (row["status"], row["repo"]) == (status, "org/vit")
    assert text in row["detail"]
    assert row["sha"] == (SHA if status == "ok" else row["sha"]) and row["sha"] in ("", SHA)
    assert not any("tree" in r.url.path or "resolve" in r.url.path for r in fake_hub.requests)
    auth = {r.headers.get("authorization") for r in fake_hub.requests}
    assert auth == ({f"Bearer {token}"} if token else {None})
    write_preflight(rows, tmp_path / "preflight.tsv")
    for secret in (FAKE_TOKEN, "hf_EXPIREDtoken000000"):
        outputs = json.dumps(rows) + caplog.text + (tmp_path / "preflight.tsv").read_text()
        assert secret not in outputs + summary(rows)


def test_preflight_not_found_and_server_errors(fake_hub):
    fake_hub.add("org/vit")
    models = {
        "missing": _record("org/nope"),
        "bad_rev": _record("org/vit", revision="v9"),
        "gated_missing": _record("org/gone", gated=True),
    }
    rows = {row["model"]: row for row in preflight(models, token=FAKE_TOKEN)}
    assert rows["missing"]["status"] == "not-found"
    assert "fix `hf_repo` of missing" in rows["missing"]["detail"]
    assert rows["bad_rev"]["status"] == "not-found"
    assert "revision v9 does not exist" in rows["bad_rev"]["detail"]
    assert rows["bad_rev"]["revision"] == "v9"
    assert rows["gated_missing"]["status"] == "not-found"
    fake_hub.status = 503
    (row,) = preflight({"vit": _record()}, token=FAKE_TOKEN)
    assert row["status"] == "error" and "HTTP 503" in row["detail"]


def test_preflight_never_raises_and_redacts(monkeypatch):
    def leak(*args, **kwargs):
        """An unexpected failure whose message echoes the token."""
        raise RuntimeError(f"proxy rejected header Authorization: Bearer {FAKE_TOKEN}")

    monkeypatch.setattr(huggingface_hub, "model_info", leak)
    rows = preflight({"a": _record("org/a"), "b": _record("org/b")}, token=FAKE_TOKEN)
    assert [row["status"] for row in rows] == ["error", "error"]
    assert "RuntimeError: proxy rejected header" in rows[0]["detail"]
    assert FAKE_TOKEN not in json.dumps(rows)


def _hub_error(status: int, code: str | None = None, message: str | None = None) -> Exception:
    """The exception huggingface_hub itself raises for a hub response."""
    headers = {"X-Error-Code": code} if code else {}
    if message:
        headers["X-Error-Message"] = message
    request = httpx2.Request("GET", "https://huggingface.co/api/models/org/vit/auth-check")
    response = httpx2.Response(status, headers=headers, request=request)
    try:
        huggingface_hub.utils.hf_raise_for_status(response)
    except Exception as exc:
        return exc
    raise AssertionError("no error raised")


@pytest.mark.parametrize(
    ("make", "has_token", "gated", "status", "text"),
    [
        (lambda: _hub_error(403, "GatedRepo"), True, True, "gated-not-approved", "request access"),
        (lambda: _hub_error(401, "GatedRepo"), False, True, "no-token", "set HF_TOKEN"),
        (lambda: _hub_error(401, "RepoNotFound"), False, True, "no-token", "set HF_TOKEN"),
        (lambda: _hub_error(404, "RepoNotFound"), True, False, "not-found", "fix `hf_repo`"),
        (lambda: _hub_error(404, "RevisionNotFound"), True, False, "not-found", "`revision`"),
        (
            lambda: _hub_error(401, None, "Invalid credentials in Authorization header"),
            True,
            False,
            "no-token",
            "rejected the token",
        ),
        (lambda: _hub_error(500), True, False, "error", "HTTP 500"),
        (lambda: hub_errors.OfflineModeIsEnabled("x"), True, False, "offline", "HF_HUB_OFFLINE"),
        (
            lambda: hub_errors.LocalEntryNotFoundError("check your internet connection"),
            True,
            False,
            "offline",
            "login node",
        ),
        (lambda: httpx2.ConnectError("Name or service not known"), True, False, "offline", ""),
        (lambda: httpx2.ReadTimeout("timed out"), True, False, "offline", "ReadTimeout"),
        (lambda: TimeoutError("slow"), True, False, "offline", "cannot reach"),
    ],
)
def test_classify_maps_hub_exceptions(make, has_token, gated, status, text):
    exc = make()
    got, detail = classify(exc, "uni_v1", "org/vit", None, has_token, gated)
    assert got == status
    assert text in detail
    if status == "offline":
        assert "snakemake --cores 1 resources/weights/uni_v1" in detail


# ---- fetch_weights ------------------------------------------------------------------------


def test_fetch_weights_snapshots_atomically_with_manifest(fake_hub, tmp_path, monkeypatch):
    fake_hub.add("org/vit", gated="manual")
    fake_hub.approved.add((FAKE_TOKEN, "org/vit"))
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    out = tmp_path / "weights" / "uni_v1"
    manifest = fetch_weights("uni_v1", _record(gated=True), out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["uni_v1"]
    assert not (out / ".cache").exists()
    for name, data in FILES.items():
        assert (out / name).read_bytes() == data
    saved = json.loads((out / "SNAPSHOT.json").read_text())
    assert saved == manifest
    assert (saved["repo"], saved["revision"], saved["commit"]) == ("org/vit", None, SHA)
    assert saved["files"] == [
        {"path": name, "size": len(FILES[name])} for name in sorted(FILES, key=lambda n: n)
    ]
    assert saved["total_bytes"] == sum(len(d) for d in FILES.values())
    assert saved["downloaded_at"].endswith("+00:00")
    resolves = [r for r in fake_hub.requests if "/resolve/" in r.url.path]
    assert resolves and all(f"/resolve/{SHA}/" in r.url.path for r in resolves)
    info_paths = ("/api/models/org/vit", "/api/models/org/vit/revision/main")
    infos = [r for r in fake_hub.requests if r.url.path in info_paths]
    assert len(infos) == 1, "the branch is resolved once, then the commit is downloaded"
    check_snapshot("uni_v1", out)
    assert FAKE_TOKEN not in (out / "SNAPSHOT.json").read_text()


def test_fetch_weights_failure_midway_leaves_nothing(fake_hub, tmp_path):
    fake_hub.add("org/vit")
    fake_hub.fail_file = "model.safetensors"
    out = tmp_path / "weights" / "phikon"
    with pytest.raises(WeightsError, match=r"model phikon: .*huggingface\.co/org/vit"):
        fetch_weights("phikon", _record(), out, token=FAKE_TOKEN)
    assert _leftovers(out) == []


def test_fetch_weights_failure_keeps_a_previous_snapshot(fake_hub, tmp_path):
    fake_hub.add("org/vit")
    out = tmp_path / "weights" / "phikon"
    fetch_weights("phikon", _record(), out)
    before = (out / "SNAPSHOT.json").read_text()
    fake_hub.fail_file = "config.json"
    with pytest.raises(WeightsError):
        fetch_weights("phikon", _record(), out)
    assert (out / "SNAPSHOT.json").read_text() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["phikon"]


def test_fetch_weights_removes_partial_files_of_a_killed_snapshot_download(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "model_info", lambda *a, **k: _Info(SHA, False))

    def half(repo_id, revision, local_dir, token):
        """Write one file, then lose the connection."""
        Path(local_dir).mkdir(parents=True)
        (Path(local_dir) / "config.json").write_bytes(b"{}")
        raise httpx2.ReadError("connection reset by peer")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", half)
    out = tmp_path / "weights" / "musk"
    with pytest.raises(WeightsError, match=r"\(offline\).*connection reset.*login node"):
        fetch_weights("musk", _record("xiangjx/musk"), out)
    assert _leftovers(out) == []


class _Info:
    """What fetch_weights and preflight read from model_info."""

    def __init__(self, sha: str, gated: str | bool) -> None:
        self.sha, self.gated = sha, gated


@pytest.mark.parametrize(
    ("served", "token", "repo", "revision", "status", "text"),
    [
        (
            "manual",
            FAKE_TOKEN,
            "org/vit",
            None,
            "gated-not-approved",
            "request access at https://huggingface.co/org/vit with the account of your token",
        ),
        (
            "manual",
            None,
            "org/vit",
            None,
            "no-token",
            "set HF_TOKEN (https://huggingface.co/settings/tokens)",
        ),
        (False, FAKE_TOKEN, "org/other", None, "not-found", "fix `hf_repo` of uni_v1"),
        (False, FAKE_TOKEN, "org/vit", "v2", "not-found", "revision v2 does not exist"),
    ],
)
def test_fetch_weights_errors_name_model_repo_and_remedy(
    fake_hub, tmp_path, served, token, repo, revision, status, text
):
    fake_hub.add("org/vit", gated=served)
    record = _record(repo, gated=bool(served), revision=revision)
    out = tmp_path / "weights" / "uni_v1"
    with pytest.raises(WeightsError) as info:
        fetch_weights("uni_v1", record, out, token=token)
    message = str(info.value)
    assert message.startswith(
        f"model uni_v1: cannot fetch weights from https://huggingface.co/{repo}"
    )
    assert f"({status})" in message and text in message
    assert FAKE_TOKEN not in message
    assert not out.exists() and _leftovers(out) == []


def test_fetch_weights_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _must_not_be_called)
    with pytest.raises(WeightsError, match=r"uni_v1.*\(offline\).*HF_HUB_OFFLINE.*login node"):
        fetch_weights("uni_v1", _record("MahmoodLab/UNI", gated=True), tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_fetch_weights_without_internet(paper_models, tmp_path, no_internet):
    out = tmp_path / "weights" / "phikon"
    start = time.monotonic()
    with pytest.raises(WeightsError, match=r"phikon.*owkin/phikon \(offline\).*login node"):
        fetch_weights("phikon", paper_models["phikon"], out)
    assert time.monotonic() - start < 5
    assert _leftovers(out) == []


def test_random_init_models_are_refused(registries, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _must_not_be_called)
    with pytest.raises(WeightsError, match=r"demo_vit_p8: random-init.*nothing to download"):
        fetch_weights("demo_vit_p8", registries.models["demo_vit_p8"], tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_token_order(monkeypatch):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: OTHER_TOKEN)
    assert resolve_token() == OTHER_TOKEN
    monkeypatch.setenv("HF_TOKEN", FAKE_TOKEN)
    assert resolve_token() == FAKE_TOKEN
    assert resolve_token("hf_explicit000") == "hf_explicit000"


# ---- check_snapshot -----------------------------------------------------------------------


@pytest.fixture
def snapshot(fake_hub, tmp_path) -> Path:
    """A complete snapshot fetched from the fake hub."""
    fake_hub.add("org/vit")
    out = tmp_path / "weights" / "uni_v2"
    fetch_weights("uni_v2", _record(), out)
    return out


@pytest.mark.parametrize(
    ("damage", "text"),
    [
        (shutil.rmtree, "folder missing"),
        (lambda d: (d / "SNAPSHOT.json").unlink(), "SNAPSHOT.json missing"),
        (lambda d: (d / "SNAPSHOT.json").write_text("{trunc"), "SNAPSHOT.json unreadable"),
        (lambda d: (d / "extra" / "notes.txt").unlink(), "extra/notes.txt missing"),
        (
            lambda d: os.truncate(d / "model.safetensors", 100),
            f"model.safetensors has 100 bytes, expected {len(FILES['model.safetensors'])}",
        ),
    ],
    ids=["no-folder", "no-manifest", "bad-manifest", "file-missing", "truncated"],
)
def test_check_snapshot_names_model_and_fetch_command(snapshot, damage, text):
    check_snapshot("uni_v2", snapshot)
    damage(snapshot)
    with pytest.raises(FileNotFoundError) as info:
        check_snapshot("uni_v2", snapshot)
    message = str(info.value)
    assert message.startswith("weights of model uni_v2")
    assert text in message
    assert "snakemake --cores 1 resources/weights/uni_v2" in message


# ---- TSV, summary, offline environment ----------------------------------------------------


def test_write_preflight_and_summary(tmp_path):
    rows = [
        hub_preflight._row("a", _record("org/a"), "ok", "fine", SHA),
        hub_preflight._row("b", _record("org/b", gated=True), "no-token", "line one\n\tline two"),
        hub_preflight._row("demo", {"weights": "random"}, "random-init", "no weights"),
    ]
    path = tmp_path / "out" / "weights_preflight.tsv"
    write_preflight(rows, path)
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == list(hub_preflight.COLUMNS)
    assert len(lines) == 4 and all(len(line.split("\t")) == 8 for line in lines)
    assert "line one line two" in lines[2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["weights_preflight.tsv"]
    assert summary(rows) == "weights preflight: 3 models, 2 ready (1 ok, 1 no-token, 1 random-init)"


def test_offline_environment_is_enforced(monkeypatch, paper_models):
    assert offline_environment() == {
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    assert not huggingface_hub.constants.is_offline_mode()
    enforce_offline()
    assert all(os.environ[name] == "1" for name in offline_environment())
    assert huggingface_hub.constants.is_offline_mode()
    with pytest.raises(hub_errors.OfflineModeIsEnabled):
        huggingface_hub.utils._http.hf_request_event_hook(
            httpx2.Request("GET", "https://huggingface.co/api/models/owkin/phikon")
        )
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE")
    rows = preflight({"phikon": paper_models["phikon"]})
    assert rows[0]["status"] == "offline" and "HF_HUB_OFFLINE is set" in rows[0]["detail"]


def test_needs_weights_is_the_one_random_init_test(registries):
    """The rules, the backbone builder and the families ask `needs_weights`: a record without a
    hub repo or pretraining is random-init, whatever else it says."""
    from densebench.models.backbone import build_backbone

    for record in registries.models.values():
        assert weights.needs_weights(record) is not weights.is_random_init(record)
    pretrained_here = dict(registries.models["demo_vit_p16"], weights="pretrain")
    assert weights.needs_weights(pretrained_here)
    assert not weights.needs_weights(dict(pretrained_here, weights="random"))
    bare = {k: v for k, v in pretrained_here.items() if k not in ("weights", "pretrain")}
    assert not weights.needs_weights(bare) and weights.needs_weights(dict(bare, hf_repo="a/b"))
    assert build_backbone("demo_vit_p16", bare).embed_dim == bare["embed_dim"]
