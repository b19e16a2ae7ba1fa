"""How a report table is written: CSV (registry keys beside display names), Markdown and LaTeX.

The tables of ``densebench.report.tables``, ``.ranking``, ``.stats`` and ``.variants`` share
these helpers: ``latex_escape`` (LaTeX's special characters, the dagger of our runs and the
double dagger of a small test split, ``densebench.report.reliability``),
``emphasis`` with ``md_mark``/``tex_mark`` (best bold, second underlined, on unrounded values),
``ci_cell`` (``mean [lower, upper]``), ``markdown`` and ``latex`` (a booktabs table) documents,
and ``write_formats``/``write_text_table``, which write ``<stem>.csv``, ``.md`` and ``.tex``
atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.atomic import write_table, write_text

if TYPE_CHECKING:
    import pandas as pd

FORMATS: tuple[str, ...] = ("csv", "md", "tex")


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\u2020": r"\textsuperscript{\dag}",
    "\u2021": r"\textsuperscript{\ddag}",
}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (and the dagger marks) in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def emphasis(values: Sequence[float]) -> list[str]:
    """Per value "best", "second" or "" by the unrounded values (NaN: ""; ties share a rank)."""
    present = sorted({v for v in values if not math.isnan(v)}, reverse=True)
    rank = {v: name for v, name in zip(present, ("best", "second"), strict=False)}
    return [rank.get(v, "") if not math.isnan(v) else "" for v in values]


def ci_cell(mean: float, lower: float, upper: float, digits: int = 3) -> str:
    """``0.812 [0.781, 0.843]``; "n/a" when missing."""
    if any(math.isnan(float(v)) for v in (mean, lower, upper)):
        return "n/a"
    return f"{mean:.{digits}f} [{lower:.{digits}f}, {upper:.{digits}f}]"


def md_mark(text: str, mark: str) -> str:
    """Markdown emphasis of a cell: bold best, underlined second."""
    return {"best": f"**{text}**", "second": f"<u>{text}</u>"}.get(mark, text)


def tex_mark(text: str, mark: str) -> str:
    """LaTeX emphasis of a cell: bold best, underlined second."""
    return {"best": f"\\textbf{{{text}}}", "second": f"\\underline{{{text}}}"}.get(mark, text)


def _numeric(cell: str) -> bool:
    """Whether a cell shows a number (possibly marked, with a CI, or n/a)."""
    text = cell.replace("**", "").replace("<u>", "").replace("</u>", "").strip()
    head = text.split(" ")[0].rstrip("%")
    if head in ("n/a", ""):
        return True
    try:
        float(head)
    except ValueError:
        return False
    return True


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]], title: str, note: str) -> str:
    """A Markdown document: title, table (numeric columns right-aligned, text left), note."""
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |"]
    numeric = [all(_numeric(row[i]) for row in rows) for i in range(len(header))]
    lines.append("|" + "|".join("---:" if n else "---" for n in numeric) + "|")
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join([*lines, "", note]) + "\n"


def latex(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str, label: str) -> str:
    """A booktabs ``table`` (cells already escaped/marked; the header is escaped here)."""
    spec = "l" + "r" * (len(header) - 1)
    lines = [
        "\\begin{table}[ht]",
        "\\centering",
        "\\small",
        f"\\caption{{{latex_escape(caption)}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{spec}}}",
        "\\toprule",
        " & ".join(latex_escape(h) for h in header) + " \\\\",
        "\\midrule",
        *(" & ".join(row) + " \\\\" for row in rows),
        "\\bottomrule",
        "\\end{tabular}",
        "\\end{table}",
    ]
    return "\n".join(lines) + "\n"


def write_formats(frame: pd.DataFrame, md: str, tex: str, stem: Path) -> list[Path]:
    """Write ``<stem>.csv``, ``.md`` and ``.tex`` atomically; return the paths."""
    paths = [stem.with_name(f"{stem.name}.{ext}") for ext in FORMATS]
    write_table(frame, paths[0])
    write_text(md, paths[1])
    write_text(tex, paths[2])
    return paths


def write_text_table(
    frame: pd.DataFrame,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    title: str,
    note: str,
    label: str,
    stem: Path,
) -> list[Path]:
    """Write a table of plain text cells (no marks) as CSV (``frame``), Markdown and LaTeX
    (cells escaped, caption = title and note)."""
    md = markdown(header, rows, title, note)
    tex_rows = [[latex_escape(c) for c in row] for row in rows]
    tex = latex(header, tex_rows, f"{title}. {note}", label)
    return write_formats(frame, md, tex, stem)


def format_p(value: float) -> str:
    """A p-value: 4 decimals, scientific below 1e-4."""
    if math.isnan(value):
        return "n/a"
    if value == 0:
        return "< 1e-300"
    return f"{value:.4f}" if value >= 1e-4 else f"{value:.2e}"


def p_relation(p: str) -> str:
    """'= p' or '< bound' for a formatted p-value."""
    return p if p.startswith("<") else f"= {p}"


def tex_p(value: float) -> str:
    """A p-value in LaTeX math: '= 0.0123', '= 1.2 \\times 10^{-5}' or '< 10^{-300}'."""
    if math.isnan(value):
        return r"= \text{n/a}"
    if value == 0:
        return "< 10^{-300}"
    if value >= 1e-4:
        return f"= {value:.4f}"
    mantissa, exponent = f"{value:.2e}".split("e")
    return rf"= {mantissa} \times 10^{{{int(exponent)}}}"
