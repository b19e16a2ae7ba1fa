"""The compute our runs used, beside the FLOP rule's estimate (`densebench compute`).

Each trained run's provenance.json records its training job's measured wall time
(densebench.train.loop.job_record): `device_hours` is the run's share of its job's device time
(`train_wall_s` / `shared_runs` / 3600: a job that trained several runs on one encoder forward,
`train.share_frozen_backbone`, counts once over them) and `device` the GPU's name (or cpu).
This table sums them per (model, strategy) over the report's runs, with the devices seen and
how many runs a shared job trained, beside the FLOP rule's estimated train GPU-hours of the
plan's runs of that pair (densebench.resources.train_gpu_hours: trained alone, and with sharing
as their shares of the shared jobs), which the plan passes
(densebench.plan.report.ReportPlan.compute_estimate). A provenance written before the job
record has no `device_hours`: it counts as a run, not as measured (`measured`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.atomic import write_table, write_text
from densebench.report.formats import markdown

if TYPE_CHECKING:
    import pandas as pd

COLUMNS: tuple[str, ...] = (
    "model",
    "strategy",
    "runs",
    "measured",
    "shared",
    "device_hours",
    "devices",
    "estimated_gpu_hours",
    "estimated_gpu_hours_shared",
)
"""The table's columns: runs (provenance files), measured (with `device_hours`), shared
(trained by a shared job), their summed device-hours, the devices seen (`; `-joined), and the
estimate alone and with sharing."""
HEADER: tuple[str, ...] = (
    "model",
    "strategy",
    "runs",
    "measured",
    "in shared jobs",
    "device h",
    "devices",
    "est. GPU h",
    "est. GPU h, shared",
)
TOTAL = "all"
"""The model of the Markdown's total rows (per strategy, and of every strategy)."""


def read_provenance(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The provenance records of trained runs (their provenance.json), each checked to name
    its model and strategy."""
    records = []
    for path in map(Path, paths):
        record = json.loads(path.read_text(encoding="utf-8"))
        missing = [k for k in ("model", "strategy") if k not in record]
        if missing:
            raise ValueError(f"{path}: not a run's provenance (no {', '.join(missing)})")
        records.append(record)
    return records


def _hours(record: Mapping[str, Any]) -> float | None:
    """A record's measured device-hours (None: written before the job record)."""
    value = record.get("device_hours")
    return None if value is None else float(value)


def compute_used(
    records: Iterable[Mapping[str, Any]], estimate: Sequence[Mapping[str, Any]] = ()
) -> pd.DataFrame:
    """Per (model, strategy): the runs' measured device-hours and devices beside the
    estimate (`estimate`: records {model, strategy, gpu_h, shared_gpu_h}, in the order of the
    rows; pairs with provenance but no estimate follow, sorted, with the estimate empty)."""
    import pandas as pd

    rows: dict[tuple[str, str], dict[str, Any]] = {}

    def row(model: str, strategy: str) -> dict[str, Any]:
        blank = {
            "model": model, "strategy": strategy, "runs": 0, "measured": 0, "shared": 0,
            "device_hours": 0.0, "devices": set(), "estimated_gpu_hours": math.nan,
            "estimated_gpu_hours_shared": math.nan,
        }  # fmt: skip
        return rows.setdefault((model, strategy), blank)

    for entry in estimate:
        out = row(entry["model"], entry["strategy"])
        out["estimated_gpu_hours"] = float(entry["gpu_h"])
        out["estimated_gpu_hours_shared"] = float(entry["shared_gpu_h"])
    known = len(rows)
    for record in records:
        out = row(str(record["model"]), str(record["strategy"]))
        out["runs"] += 1
        out["shared"] += int(record.get("shared_runs") or 1) > 1
        hours = _hours(record)
        if hours is not None:
            out["measured"] += 1
            out["device_hours"] += hours
        if record.get("device"):
            out["devices"].add(str(record["device"]))
    ordered = [*list(rows.values())[:known], *sorted(list(rows.values())[known:], key=_key)]
    for out in ordered:
        out["device_hours"] = out["device_hours"] if out["measured"] else math.nan
        out["devices"] = "; ".join(sorted(out["devices"]))
    return pd.DataFrame(ordered, columns=list(COLUMNS))


def _key(row: Mapping[str, Any]) -> tuple[str, str]:
    return row["model"], row["strategy"]


def _number(value: float) -> str:
    """An hours cell: 2 decimals, 2 significant digits below 0.01 (CPU demo runs), "n/a"
    when missing."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}" if value == 0 or abs(value) >= 0.01 else f"{value:.2g}"


def _cells(model: str, strategy: str, rows: pd.DataFrame) -> list[str]:
    """A Markdown row of the rows' sums (one (model, strategy), or a total)."""
    measured = int(rows["measured"].sum())
    hours = float(rows["device_hours"].sum(min_count=1)) if measured else math.nan
    devices = sorted({d for text in rows["devices"] for d in text.split("; ") if d})
    return [
        model,
        strategy,
        str(int(rows["runs"].sum())),
        str(measured),
        str(int(rows["shared"].sum())),
        _number(hours),
        ", ".join(devices) or "n/a",
        _number(float(rows["estimated_gpu_hours"].sum(min_count=1))),
        _number(float(rows["estimated_gpu_hours_shared"].sum(min_count=1))),
    ]


def compute_markdown(table: pd.DataFrame) -> str:
    """The table as Markdown: a row per (model, strategy), then the total of each strategy
    and of all runs."""
    rows = [_cells(r.model, r.strategy, table.iloc[[i]]) for i, r in enumerate(table.itertuples())]
    for strategy in dict.fromkeys(table["strategy"]):
        rows.append(_cells(TOTAL, strategy, table[table["strategy"] == strategy]))
    rows.append(_cells(TOTAL, TOTAL, table))
    note = (
        "device h: the runs' measured share of their training jobs' device time (a shared "
        "job's wall time split evenly over the runs it trained; from each run's "
        "provenance.json). est. GPU h: the FLOP rule's first-attempt estimate of the plan's "
        "runs of the pair, trained alone and with train.share_frozen_backbone (a shared job's "
        "estimate split over its runs in proportion to their own)."
    )
    return markdown(HEADER, rows, "Compute used: measured device-hours and the estimate", note)


def write_compute(table: pd.DataFrame, stem: Path) -> list[Path]:
    """Write `<stem>.csv` and `<stem>.md` atomically; return the paths."""
    stem = Path(stem)
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in ("csv", "md")]
    write_table(table, paths[0])
    write_text(compute_markdown(table), paths[1])
    return paths
