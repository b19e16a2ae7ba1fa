"""Model weights: Hugging Face snapshots, hub-error remedies, snapshot checks, offline jobs.

Weights are fetched once, on a machine with internet (the login node), into
resources/weights/<model>/ with a SNAPSHOT.json manifest (repo, requested revision, resolved
commit, files and sizes); `fetch_command` is the one spelling of that remedy, used by every
message that names it. The demo's `weights: pretrain` models get theirs from
`densebench.models.pretrain` instead (same folder and manifest, nothing downloaded). Training
jobs run offline (HF_HUB_OFFLINE=1) and call check_snapshot before loading. `classify` turns hub
errors into a status and a remedy, for fetching here and for the access preflight
(`densebench.models.preflight`).

Tokens: the explicit argument, else HF_TOKEN, else the token stored by `hf auth login`. A token is
never written to a message, a log or a file (every text that leaves this module is redacted).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from densebench.atomic import atomic_output

log = logging.getLogger(__name__)

HUB = "https://huggingface.co"
TOKENS_PAGE = f"{HUB}/settings/tokens"
MANIFEST = "SNAPSHOT.json"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
_TOKEN_LIKE = re.compile(r"hf_[A-Za-z0-9]{20,}")


class WeightsError(ValueError):
    """Weights cannot be fetched; the message names the model, the repo and the remedy."""


# ---- small helpers ------------------------------------------------------------------------


def hub_module() -> ModuleType:
    """The huggingface_hub module (looked up at call time, so tests can replace functions)."""
    import huggingface_hub

    return huggingface_hub


def is_pretrain(record: Mapping[str, Any]) -> bool:
    """Whether a registry record is a demo model pretrained by the workflow (`weights: pretrain`):
    its snapshot is made here (`densebench.models.pretrain`), nothing is downloaded."""
    return record.get("weights") == "pretrain"


def is_random_init(record: Mapping[str, Any]) -> bool:
    """Whether a registry record is a random-init demo model (nothing to download, no snapshot):
    `weights: random`, or neither a hub repo nor pretrained here."""
    return record.get("weights") == "random" or not (record.get("hf_repo") or is_pretrain(record))


def needs_weights(record: Mapping[str, Any]) -> bool:
    """Whether a model loads a weights snapshot (downloaded or pretrained here): the one test of
    random initialisation, for the rules, the backbone builder and every family module."""
    return not is_random_init(record)


PRETRAIN_KEYS = ("seed", "images", "steps", "batch_size", "lr", "input_size")
"""The settings of a record's `pretrain` mapping (workflow/schemas/models.schema.yaml)."""
PRETRAIN_VERSION = 1
"""Version of the pretraining objective; bump it when densebench.models.pretrain changes the
weights it writes, and every pretrained snapshot is redone."""


def pretrain_settings(model: str, record: dict[str, Any]) -> dict[str, Any]:
    """The `pretrain` mapping of a pretrain record, checked (WeightsError names what is wrong)."""
    settings = record.get("pretrain")
    if not is_pretrain(record) or not isinstance(settings, dict):
        raise WeightsError(
            f"model {model}: not a pretrain demo model; set `weights: pretrain` and a "
            f"`pretrain` mapping ({', '.join(PRETRAIN_KEYS)}) in config/models.yaml"
        )
    missing = [key for key in PRETRAIN_KEYS if key not in settings]
    if missing:
        raise WeightsError(f"model {model}: `pretrain` lacks {missing} in config/models.yaml")
    return {key: settings[key] for key in PRETRAIN_KEYS}


def pretrain_identity(model: str, record: dict[str, Any]) -> dict[str, Any]:
    """What decides a pretrained snapshot: the architecture, the model's own normalisation,
    the pretraining settings and the objective's version."""
    return {
        "arch": record["arch"],
        "kwargs": record.get("kwargs", {}),
        "normalisation": record["normalisation"]["model"],
        "pretrain": pretrain_settings(model, record),
        "version": PRETRAIN_VERSION,
    }


def fetch_command(model: str) -> str:
    """The command that fetches a model's weights (run it where there is internet)."""
    return f"snakemake --cores 1 resources/weights/{model}"


def resolve_token(token: str | None = None) -> str | None:
    """The token to use: the argument, else HF_TOKEN, else the `hf auth login` token, else None."""
    if token:
        return token
    if os.environ.get("HF_TOKEN"):
        return os.environ["HF_TOKEN"]
    try:
        return hub_module().get_token() or None
    except Exception:  # a broken token store must not break a download of a public repo
        return None


def redact(text: str, token: str | None = None) -> str:
    """Text with the token (and anything shaped like an HF token) replaced by ***."""
    if token:
        text = text.replace(token, "***")
    return _TOKEN_LIKE.sub("hf_***", text)


def _truthy(value: str | None) -> bool:
    """Whether an environment value means 'on' (1/true/yes/on)."""
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_mode() -> bool:
    """Whether hub access is switched off (HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)."""
    if any(_truthy(os.environ.get(name)) for name in OFFLINE_VARS[:2]):
        return True
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(constants and constants.is_offline_mode())


def _first_line(exc: BaseException, limit: int = 160) -> str:
    """Exception type and the first non-empty line of its message, shortened."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _status_code(exc: BaseException) -> int | None:
    """HTTP status of a hub error, if it carries a response."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _is_connection_error(exc: BaseException) -> bool:
    """Whether exc means the hub cannot be reached (no route, DNS, timeout, proxy)."""
    import httpx2

    errors = (httpx2.TransportError, ConnectionError, TimeoutError)
    return isinstance(exc, errors) and _status_code(exc) is None


# ---- classification -----------------------------------------------------------------------


def classify(
    exc: BaseException, model: str, repo: str, revision: str | None, has_token: bool, gated: bool
) -> tuple[str, str]:
    """Map a huggingface_hub exception to (status, detail with the remedy)."""
    from huggingface_hub import errors as hub_errors

    why = _first_line(exc)
    if isinstance(exc, hub_errors.OfflineModeIsEnabled) or (
        isinstance(exc, hub_errors.LocalEntryNotFoundError) and offline_mode()
    ):
        return "offline", offline_detail(model, "HF_HUB_OFFLINE is set")
    if isinstance(exc, hub_errors.GatedRepoError):
        if not has_token:
            return "no-token", no_token_detail(repo)
        return "gated-not-approved", (
            f"gated repo and your token's account is not (yet) approved: request access at "
            f"{HUB}/{repo} with the account of your token, then wait for the approval [{why}]"
        )
    if isinstance(exc, hub_errors.RevisionNotFoundError):
        return "not-found", (
            f"{revision_words(revision)} does not exist in {repo}: fix `revision` of {model} in "
            f"config/models.yaml (a commit sha, branch or tag of {HUB}/{repo}) [{why}]"
        )
    if isinstance(exc, hub_errors.RepositoryNotFoundError | hub_errors.DisabledRepoError):
        if not has_token and gated:
            return "no-token", no_token_detail(repo)
        hint = "" if has_token else "; if it is private or gated, set HF_TOKEN"
        return "not-found", (
            f"repo {repo} not found (or disabled): fix `hf_repo` of {model} in "
            f"config/models.yaml{hint} [{why}]"
        )
    if isinstance(exc, hub_errors.HfHubHTTPError) and _status_code(exc) == 401:
        return "no-token", (
            f"the hub rejected the token (invalid, expired or revoked): create a read token at "
            f"{TOKENS_PAGE} and set HF_TOKEN [{why}]"
        )
    if isinstance(exc, hub_errors.LocalEntryNotFoundError) or _is_connection_error(exc):
        return "offline", offline_detail(model, f"cannot reach {HUB} [{why}]")
    code = _status_code(exc)
    retry = f"the hub answered HTTP {code}" if code else "unexpected error"
    return "error", f"{retry}; retry later or check {HUB}/{repo} [{why}]"


def offline_detail(model: str, reason: str) -> str:
    """Remedy when the hub cannot be (or must not be) contacted."""
    return (
        f"{reason}: run on a machine with internet (the login node), without HF_HUB_OFFLINE: "
        f"{fetch_command(model)}; jobs then load the snapshot offline"
    )


def no_token_detail(repo: str) -> str:
    """Remedy when a gated repo is accessed without any token."""
    return (
        f"gated repo and no token: set HF_TOKEN ({TOKENS_PAGE}) to a read token of an account "
        f"approved at {HUB}/{repo}"
    )


def revision_words(revision: str | None) -> str:
    """Words for a requested revision."""
    return f"revision {revision}" if revision else "the default branch"


# ---- fetching -----------------------------------------------------------------------------


def _list_files(folder: Path) -> list[dict[str, Any]]:
    """Every file under folder (relative posix path and size), sorted, manifest excluded."""
    files = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder).as_posix()
        if path.is_file() and rel != MANIFEST:
            files.append({"path": rel, "size": path.stat().st_size})
    return sorted(files, key=lambda item: item["path"])


def fetch_weights(
    model: str, record: dict[str, Any], out_dir: Path, token: str | None = None
) -> dict[str, Any]:
    """Snapshot hf_repo at its revision into out_dir atomically, return the manifest."""
    if is_random_init(record):
        raise WeightsError(f"model {model}: random-init demo model, nothing to download")
    if is_pretrain(record):
        raise WeightsError(
            f"model {model}: demo model pretrained by the workflow, nothing to download: "
            f"`densebench pretrain` (rule pretrain_weights) writes its snapshot"
        )
    repo, revision = record["hf_repo"], record.get("revision")
    token = resolve_token(token)
    if offline_mode():
        detail = offline_detail(model, "HF_HUB_OFFLINE is set")
        raise WeightsError(_fetch_message(model, repo, "offline", detail))
    hub = hub_module()
    started = time.time()
    try:
        sha = hub.model_info(repo, revision=revision, token=token or False, timeout=30).sha
        with atomic_output(Path(out_dir)) as tmp:
            hub.snapshot_download(
                repo_id=repo,
                revision=sha or revision,
                local_dir=tmp,
                token=token or False,
            )
            shutil.rmtree(tmp / ".cache" / "huggingface", ignore_errors=True)
            if (tmp / ".cache").is_dir() and not any((tmp / ".cache").iterdir()):
                (tmp / ".cache").rmdir()
            manifest = _manifest(model, record, sha, _list_files(tmp), started)
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except WeightsError:
        raise
    except Exception as exc:
        status, detail = classify(
            exc, model, repo, revision, bool(token), bool(record.get("gated"))
        )
        raise WeightsError(redact(_fetch_message(model, repo, status, detail), token)) from None
    log.info("fetched %s (%s @ %s): %d files", model, repo, sha, len(manifest["files"]))
    return manifest


def _fetch_message(model: str, repo: str, status: str, detail: str) -> str:
    """The WeightsError text of a failed fetch."""
    return f"model {model}: cannot fetch weights from {HUB}/{repo} ({status}): {detail}"


def _manifest(
    model: str, record: dict[str, Any], sha: str | None, files: list[dict], started: float
) -> dict[str, Any]:
    """The SNAPSHOT.json content of a finished download."""
    if not files:
        raise WeightsError(f"model {model}: the snapshot of {record['hf_repo']} has no files")
    return {
        "model": model,
        "repo": record["hf_repo"],
        "revision": record.get("revision"),
        "commit": sha,
        "files": files,
        "total_bytes": sum(item["size"] for item in files),
        "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "download_seconds": round(time.time() - started, 1),
        "huggingface_hub": hub_module().__version__,
        "licence": record.get("licence"),
    }


# ---- checking a snapshot before loading ---------------------------------------------------


def snapshot_manifest(folder: Path) -> dict[str, Any] | None:
    """The SNAPSHOT.json of a weights folder, or None if there is none (yet) or it is unreadable
    (the weights identity reads it: densebench.identity.weights_identity)."""
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def check_snapshot(model: str, weights_dir: Path) -> None:
    """Raise FileNotFoundError (naming the fetch command) unless the snapshot is complete."""
    weights_dir = Path(weights_dir)
    problem = _snapshot_problem(weights_dir)
    if problem:
        raise FileNotFoundError(
            f"weights of model {model} at {weights_dir}: {problem}; fetch them on a machine with "
            f"internet (the login node) with: {fetch_command(model)}"
        )


def _snapshot_problem(weights_dir: Path) -> str | None:
    """What is wrong with a snapshot folder, or None when it is complete."""
    if not weights_dir.is_dir():
        return "folder missing"
    try:
        manifest = json.loads((weights_dir / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except FileNotFoundError:
        return f"{MANIFEST} missing (partial or foreign download)"
    except (ValueError, KeyError, TypeError):
        return f"{MANIFEST} unreadable"
    bad = []
    for item in files:
        path = weights_dir / item["path"]
        if not path.is_file():
            bad.append(f"{item['path']} missing")
        elif path.stat().st_size != item["size"]:
            bad.append(f"{item['path']} has {path.stat().st_size} bytes, expected {item['size']}")
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return "partial snapshot: " + "; ".join(bad[:3]) + more
    return None


# ---- offline loading inside jobs ----------------------------------------------------------


def offline_environment() -> dict[str, str]:
    """The environment variables training and prediction jobs run with (no hub access)."""
    return dict.fromkeys(OFFLINE_VARS, "1")


def enforce_offline() -> dict[str, str]:
    """Set the offline variables in os.environ (call before importing model libraries)."""
    env = offline_environment()
    os.environ.update(env)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported already: its flag was read at import time
        constants.HF_HUB_OFFLINE = True
    return env
