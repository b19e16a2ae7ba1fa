"""Gated-access preflight: can every model's weights be fetched? Metadata calls only.

`preflight(models)` asks the hub, per registry model, for the repo's metadata (`model_info`) and
access (`auth_check`), never for files, each call with a timeout; one row per model with its
status (`STATUSES`), the resolved commit and the remedy. A hub that cannot be reached is
detected once and not retried per model. Rows are written as a TSV (`write_preflight`) and
summed up in one line (`summary`). Statuses and remedies come from
`densebench.models.weights.classify`, shared with fetching; tokens never leave redacted.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from densebench.atomic import write_text
from densebench.models.weights import (
    HUB,
    classify,
    hub_module,
    is_pretrain,
    is_random_init,
    no_token_detail,
    offline_detail,
    offline_mode,
    redact,
    resolve_token,
    revision_words,
)

log = logging.getLogger(__name__)

STATUSES = (
    "ok",
    "gated-not-approved",
    "no-token",
    "not-found",
    "offline",
    "error",
    "random-init",
    "pretrain",
)
COLUMNS = ("model", "repo", "revision", "sha", "gated", "licence", "status", "detail")


class _Timeout(TimeoutError):
    """A metadata call did not answer within the preflight timeout."""


def _with_timeout(call: Callable[[], Any], timeout: float) -> Any:
    """Run call in a daemon thread; raise _Timeout if it has not returned within timeout s."""
    box: dict[str, Any] = {}

    def target() -> None:
        """Store the result or the exception of call."""
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise _Timeout(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _row(model: str, record: dict[str, Any], status: str, detail: str, sha: str = "") -> dict:
    """One preflight row."""
    return {
        "model": model,
        "repo": record.get("hf_repo") or "",
        "revision": record.get("revision") or "",
        "sha": sha or "",
        "gated": bool(record.get("gated")),
        "licence": record.get("licence") or "",
        "status": status,
        "detail": detail,
    }


def _check_one(
    model: str, record: dict[str, Any], token: str | None, timeout: float
) -> tuple[str, str, str]:
    """(status, detail, sha) of one repo from metadata calls only (model_info, auth_check)."""
    hub, repo, revision = hub_module(), record["hf_repo"], record.get("revision")
    try:
        info = _with_timeout(
            lambda: hub.model_info(repo, revision=revision, token=token or False, timeout=timeout),
            timeout,
        )
        gated = bool(record.get("gated")) if info.gated is None else bool(info.gated)
        if gated and not token:
            return "no-token", no_token_detail(repo), info.sha or ""
        _with_timeout(lambda: hub.auth_check(repo, token=token or False), timeout)
    except Exception as exc:
        status, detail = classify(
            exc, model, repo, revision, bool(token), bool(record.get("gated"))
        )
        return status, detail, ""
    note = ""
    if bool(info.gated) != bool(record.get("gated")):
        note = f"; the hub says gated={info.gated!r} but config/models.yaml says {record['gated']}"
    return (
        "ok",
        f"access granted; {revision_words(revision)} resolves to {info.sha}{note}",
        info.sha or "",
    )


def preflight(
    models: dict[str, dict], token: str | None = None, timeout: float = 10
) -> list[dict[str, Any]]:
    """Check access to every model's repo without downloading; one row per registry model."""
    token = resolve_token(token)
    rows: list[dict[str, Any]] = []
    unreachable = "HF_HUB_OFFLINE is set" if offline_mode() else None
    for model, record in models.items():
        if model.startswith("_") or not isinstance(record, dict):
            continue
        if is_random_init(record):
            detail = "built with random weights (trained from scratch), no download"
            rows.append(_row(model, record, "random-init", detail))
        elif is_pretrain(record):
            detail = "demo model pretrained by the workflow (rule pretrain_weights), no download"
            rows.append(_row(model, record, "pretrain", detail))
        elif unreachable is not None:
            rows.append(_row(model, record, "offline", offline_detail(model, unreachable)))
        else:
            status, detail, sha = _check_one(model, record, token, timeout)
            if status == "offline" and unreachable is None:
                unreachable = f"{HUB} unreachable when checking {model}, not retried"
            rows.append(_row(model, record, status, detail, sha))
    for row in rows:
        row["detail"] = redact(row["detail"], token)
        log.info("preflight %s: %s: %s", row["model"], row["status"], row["detail"])
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """One line: how many models have each status."""
    counts = Counter(row["status"] for row in rows)
    parts = [f"{counts[status]} {status}" for status in STATUSES if counts[status]]
    ready = counts["ok"] + counts["random-init"] + counts["pretrain"]
    return f"weights preflight: {len(rows)} models, {ready} ready ({', '.join(parts) or 'none'})"


def write_preflight(rows: list[dict[str, Any]], path: Path) -> None:
    """Write the preflight rows as a TSV atomically (tabs and newlines in details flattened)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        clean = {key: re.sub(r"[\t\r\n]+", " ", str(row.get(key, ""))) for key in COLUMNS}
        writer.writerow(clean)
    write_text(buffer.getvalue(), Path(path))
