"""The reproduction report: every cell's published result beside ours (reference/protocol.md §6).

The comparison itself (``compare``, ``summaries``: which cells, their statuses and counts) is
``densebench.report.comparison``; this module renders it.

Outputs (``write_reproduction``, atomic): a Markdown and a self-contained HTML page (inline CSS, no
script or external asset; status shown by a colour-blind-safe colour *and* a symbol with its
word), and the full comparison as CSV (registry keys beside display names).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.atomic import write_table, write_text
from densebench.report.comparison import (
    COMPARED,
    STATUSES,
    VIEW_METRIC,
    compare,
    count_column,
    metric_summary,
    not_run,
    summaries,
)
from densebench.report.grid import AXES, COLUMN, Grid
from densebench.report.reliability import marked, small_n_note

if TYPE_CHECKING:
    import pandas as pd

SYMBOLS: dict[str, str] = {
    "agrees": "\u2713",
    "overlaps": "\u2248",
    "differs": "\u2717",
    "not run": "\u25cb",
    "not published": "+",
}
"""A symbol per status, shown with its word so the report reads without colour."""
COLOURS: dict[str, tuple[str, str]] = {
    "agrees": ("#009E73", "#d5efe6"),
    "overlaps": ("#E69F00", "#fbedcc"),
    "differs": ("#D55E00", "#f6dac7"),
    "not run": ("#7f7f7f", "#ececec"),
    "not published": ("#0072B2", "#d6e8f5"),
}
"""Per status (border, background): Okabe-Ito colours, safe for colour-blind readers."""


def status_label(status: str) -> str:
    """A status with its symbol, e.g. "✓ agrees"."""
    return f"{SYMBOLS[status]} {status}"


def _num(value: Any, digits: int = 4, signed: bool = False) -> str:
    """A number to ``digits`` decimals ("+" sign when ``signed``), "—" when missing."""
    import pandas as pd

    if pd.isna(value):
        return "\u2014"
    return f"{float(value):+.{digits}f}" if signed else f"{float(value):.{digits}f}"


def _interval(mean: Any, lower: Any, upper: Any) -> str:
    """``0.8123 [0.7810, 0.8430]``, "—" when the mean is missing."""
    if _num(mean) == "\u2014":
        return "\u2014"
    return f"{_num(mean)} [{_num(lower)}, {_num(upper)}]"


def _share(value: Any) -> str:
    """A share as a percentage, "—" when undefined."""
    return "\u2014" if _num(value) == "\u2014" else f"{100 * float(value):.1f}%"


def _notes(comparison: pd.DataFrame, metric: str) -> list[str]:
    """Sentences on empty sources and cells outside the grid."""
    rows = comparison.loc[comparison["metric"] == metric]
    status = set(rows["status"])
    notes = []
    if rows.empty:
        notes.append("No cells: neither source holds results for this grid.")
    elif not status & {*COMPARED, "not run"}:
        notes.append(
            "No published results for the cells of this grid (e.g. new models or the demo's "
            "synthetic datasets): every reproduced cell is \u201cnot published\u201d."
        )
    elif not status & {*COMPARED, "not published"}:
        notes.append("No reproduced results yet: every published cell is \u201cnot run\u201d.")
    outside = comparison.attrs.get("outside_grid", {})
    for source, count in outside.items():
        if count:
            notes.append(f"{count} {source} cell(s) outside this report's grid are not listed.")
    small = small_n_note(rows["n_images"]) if "n_images" in rows else ""
    if small:
        notes.append(f"{small} So is a marked cell's status, which rests on our interval.")
    return notes


def _headline(overall: pd.DataFrame, metric: str) -> str:
    """One sentence of headline counts of the overall summary."""
    r = overall.iloc[0]
    counts = ", ".join(f"{int(r[count_column(s)])} {status_label(s)}" for s in STATUSES)
    return (
        f"{int(r['cells'])} cells ({metric}): {counts}. Agreeing among the {int(r['compared'])} "
        f"compared: {_share(r['share_agreeing'])}; mean |\u0394| {_num(r['mean_abs_delta'])}, "
        f"mean \u0394 {_num(r['mean_delta'], signed=True)}."
    )


def _legend() -> str:
    """What the statuses and delta mean."""
    return (
        "\u0394 = our bootstrap mean \u2212 the published mean. Status: "
        f"{status_label('agrees')} (published mean inside our 95% CI), "
        f"{status_label('overlaps')} (the CIs overlap, published mean outside ours), "
        f"{status_label('differs')} (no overlap), {status_label('not run')} (published, not "
        f"reproduced), {status_label('not published')} (reproduced, not published)."
    )


def _summary_header(axis: str) -> list[str]:
    """Column titles of a per-axis summary table."""
    first = {"datasets": ["Dataset", "Category"], "models": ["Model"], "strategies": ["Strategy"]}
    counts = [status_label(s) for s in STATUSES]
    return [
        *first.get(axis, ["Metric"]),
        "Cells",
        *counts,
        "Agreeing",
        "Mean |\u0394|",
        "Mean \u0394",
    ]


def _summary_cells(rec: dict[str, Any], axis: str) -> list[str]:
    """The cells of one per-axis summary row."""
    first = {
        "datasets": [rec.get("dataset_name", ""), str(rec.get("category", "")).capitalize()],
        "models": [rec.get("model_name", "")],
        "strategies": [rec.get("strategy_name", "")],
    }.get(axis, [rec.get("metric", "")])
    counts = [str(int(rec[count_column(s)])) for s in STATUSES]
    return [
        *(str(x) for x in first),
        str(int(rec["cells"])),
        *counts,
        _share(rec["share_agreeing"]),
        _num(rec["mean_abs_delta"]),
        _num(rec["mean_delta"], signed=True),
    ]


CELL_HEADER: tuple[str, ...] = (
    "Dataset",
    "Strategy",
    "Model",
    "Published mean [95% CI]",
    "Our point",
    "Our mean [95% CI]",
    "\u0394",
    "Status",
)


def _cell_cells(rec: dict[str, Any]) -> list[str]:
    """The cells of one row of the full cell table (status word without symbol)."""
    return [
        str(rec["dataset_name"]),
        str(rec["strategy_name"]),
        str(rec["model_name"]),
        _interval(rec["published_mean"], rec["published_ci_lower"], rec["published_ci_upper"]),
        _num(rec["point"]),
        marked(_interval(rec["boot_mean"], rec["ci_lower"], rec["ci_upper"]), rec.get("n_images")),
        _num(rec["delta"], signed=True),
        str(rec["status"]),
    ]


def _not_run_groups(comparison: pd.DataFrame, metric: str) -> list[tuple[str, str, list[str]]]:
    """The cells not run grouped by (dataset, strategy): display names and their models."""
    groups: dict[tuple[str, str], list[str]] = {}
    for rec in not_run(comparison, metric).to_dict("records"):
        key = (str(rec["dataset_name"]), str(rec["strategy_name"]))
        groups.setdefault(key, []).append(str(rec["model_name"]))
    return [(d, s, models) for (d, s), models in groups.items()]


def _md_row(cells: Sequence[str]) -> str:
    """One Markdown table row, pipes escaped."""
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines; "None." without rows."""
    if not rows:
        return ["None."]
    lines = [_md_row(header), "|" + "|".join("---" for _ in header) + "|"]
    return lines + [_md_row(r) for r in rows]


def reproduction_markdown(
    comparison: pd.DataFrame, grid: Grid, title: str, metric: str = VIEW_METRIC
) -> str:
    """The report as Markdown: headline counts, per-axis summaries, the full cell table of
    ``metric`` (one row per cell) and the cells not run grouped by dataset and strategy."""
    tables = summaries(comparison, grid, metric)
    lines = [f"# {title}", "", _headline(tables["overall"], metric), ""]
    lines += [*(f"{n}\n" for n in _notes(comparison, metric)), _legend(), ""]
    lines += ["## Status per metric", ""]
    per_metric = metric_summary(comparison).to_dict("records")
    lines += _md_table(
        _summary_header("metrics"), [_summary_cells(r, "metrics") for r in per_metric]
    )
    for axis in AXES:
        rows = [_summary_cells(r, axis) for r in tables[axis].to_dict("records")]
        lines += ["", f"## {metric} per {COLUMN[axis]}", ""]
        lines += _md_table(_summary_header(axis), rows)
    cells = comparison.loc[comparison["metric"] == metric].to_dict("records")
    lines += ["", f"## Cells ({metric})", ""]
    rows = [[*_cell_cells(r)[:-1], status_label(r["status"])] for r in cells]
    lines += _md_table(CELL_HEADER, rows)
    groups = _not_run_groups(comparison, metric)
    lines += ["", f"## Cells not run ({sum(len(g[2]) for g in groups)})", ""]
    header = ["Dataset", "Strategy", "Not run", "Models"]
    lines += _md_table(header, [[d, s, str(len(m)), ", ".join(m)] for d, s, m in groups])
    return "\n".join(lines) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111;
background:#fff;line-height:1.4}
main{max-width:1200px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
th,td{border:1px solid #ccc;padding:.2rem .45rem;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:0 .4rem;border-left:.35rem solid;white-space:nowrap}
ul.counts{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.5rem}
ul.counts li{padding:.3rem .6rem;border-left:.35rem solid}
.note{background:#fff8e1;border-left:.35rem solid #E69F00;padding:.3rem .6rem}
"""


def _status_css() -> str:
    """One CSS class per status (border and background colour)."""
    return "".join(
        f".s-{count_column(s).replace('_', '-')}{{border-color:{b};background:{bg}}}"
        for s, (b, bg) in COLOURS.items()
    )


def _badge(status: str) -> str:
    """A status as a coloured badge with its symbol and word."""
    css = count_column(status).replace("_", "-")
    return f'<span class="badge s-{css}">{html.escape(status_label(status))}</span>'


def _html_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], table_id: str, numeric: set[int]
) -> list[str]:
    """An HTML table (cells already escaped); "None." without rows."""
    if not rows:
        return [f'<p id="{table_id}">None.</p>']
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in header)
    lines = [f'<table id="{table_id}">', f"<thead><tr>{head}</tr></thead>", "<tbody>"]
    for row in rows:
        tds = (
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        lines.append("<tr>" + "".join(tds) + "</tr>")
    return [*lines, "</tbody>", "</table>"]


def _html_summary(rows: list[dict[str, Any]], axis: str, table_id: str) -> list[str]:
    """A per-axis (or per-metric) summary table."""
    first = 2 if axis == "datasets" else 1
    body = [[html.escape(c) for c in _summary_cells(r, axis)] for r in rows]
    numeric = set(range(first, first + len(STATUSES) + 4))
    return _html_table(_summary_header(axis), body, table_id, numeric)


def reproduction_html(
    comparison: pd.DataFrame, grid: Grid, title: str, metric: str = VIEW_METRIC
) -> str:
    """The report as one self-contained HTML5 page (inline CSS, no script or external asset)."""
    esc = html.escape
    tables = summaries(comparison, grid, metric)
    overall = tables["overall"].iloc[0]
    out = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}{_status_css()}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{esc(title)}</h1>",
        '<section id="summary">',
        "<h2>Summary</h2>",
        f"<p>{esc(_headline(tables['overall'], metric))}</p>",
        '<ul class="counts">',
    ]
    for s in STATUSES:
        css = count_column(s).replace("_", "-")
        out.append(
            f'<li class="s-{css}">{esc(status_label(s))}: '
            f"<strong>{int(overall[count_column(s)])}</strong></li>"
        )
    out.append("</ul>")
    out += [f'<p class="note">{esc(n)}</p>' for n in _notes(comparison, metric)]
    out += [f"<p>{esc(_legend())}</p>", "<h3>Status per metric</h3>"]
    out += _html_summary(metric_summary(comparison).to_dict("records"), "metrics", "per-metric")
    out.append("</section>")
    for axis in AXES:
        out += [f'<section id="by-{COLUMN[axis]}">']
        out += [f"<h2>{esc(metric)} per {COLUMN[axis]}</h2>"]
        rows = tables[axis].to_dict("records")
        out += [*_html_summary(rows, axis, f"by-{COLUMN[axis]}-table"), "</section>"]
    cells = comparison.loc[comparison["metric"] == metric].to_dict("records")
    body = [[*(esc(c) for c in _cell_cells(r)[:-1]), _badge(r["status"])] for r in cells]
    out += ['<section id="cells">', f"<h2>Cells ({esc(metric)}): {len(cells)}</h2>"]
    out += [*_html_table(CELL_HEADER, body, "cells-table", {3, 4, 5, 6}), "</section>"]
    groups = _not_run_groups(comparison, metric)
    out += ['<section id="not-run">']
    out += [f"<h2>Cells not run ({sum(len(g[2]) for g in groups)})</h2>"]
    rows = [[esc(d), esc(s), str(len(m)), esc(", ".join(m))] for d, s, m in groups]
    out += _html_table(["Dataset", "Strategy", "Not run", "Models"], rows, "not-run-table", {2})
    out += ["</section>", "</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def write_reproduction(
    reproduced: pd.DataFrame,
    published: pd.DataFrame,
    grid: Grid,
    out_md: Path,
    out_html: Path,
    out_csv: Path,
    title: str = "Reproduction of PFM-DenseBench",
) -> list[Path]:
    """Compare both sources on the grid; write the Markdown, HTML and CSV atomically."""
    comparison = compare(reproduced, published, grid)
    paths = [Path(out_md), Path(out_html), Path(out_csv)]
    write_text(reproduction_markdown(comparison, grid, title), paths[0])
    write_text(reproduction_html(comparison, grid, title), paths[1])
    write_table(comparison, paths[2])
    return paths
