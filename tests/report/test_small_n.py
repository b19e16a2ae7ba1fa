"""Honest statistics at small n (densebench.report.reliability) through the real report
functions: a bootstrap p-value is never shown as 0 but as "< 1/B", and a test split of fewer
than 10 images marks its intervals and paired tests as unreliable, while nothing changes for
n >= 10.

Known answers: a strictly better copy of a run is better in every replicate, so its estimated
p is 0 (shown "< 1/B"); Holm's adjustment of m p-values all raised to 1/B is m/B for each.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densebench.evaluate.confusion import write_confusion
from densebench.evaluate.metrics import METRICS
from densebench.report import paired
from densebench.report.aggregate import COLUMNS, tidy
from densebench.report.comparison import compare
from densebench.report.formats import latex_escape
from densebench.report.grid import Grid
from densebench.report.reliability import (
    MIN_IMAGES,
    SMALL_N_MARK,
    format_bootstrap_p,
    is_unreliable,
    p_floor,
)
from densebench.report.reproduction import reproduction_markdown
from densebench.report.tables import class_tables, strategy_tables

REPLICATES, SEED, CLASSES = 200, 7, 3
MARK = SMALL_N_MARK
TEX_MARK = latex_escape(MARK)


def test_the_floor_and_the_small_n_rule() -> None:
    assert p_floor(1000) == 0.001 and p_floor(200) == 0.005
    assert format_bootstrap_p(0.0, p_floor(1000)) == "< 0.001"
    assert format_bootstrap_p(0.004, p_floor(1000)) == "0.0040"
    assert format_bootstrap_p(math.nan, p_floor(1000)) == "n/a"
    with pytest.raises(ValueError, match="replicates must be >= 1"):
        p_floor(0)
    assert MIN_IMAGES == 10
    assert [is_unreliable(n) for n in (1, 3, 9, 10, 250)] == [True, True, True, False, False]
    assert not is_unreliable(pd.NA) and not is_unreliable(None) and not is_unreliable(math.nan)


# ---- paired bootstrap -----------------------------------------------------------------------


def _matrices(n_images: int, gain: int) -> np.ndarray:
    """(N, C, C) confusion matrices; each ``gain`` moves one pixel of every row of every image
    from an off-diagonal cell to the diagonal (a strictly better run)."""
    rng = np.random.default_rng(3)
    m = rng.integers(5, 40, size=(n_images, CLASSES, CLASSES))
    m[:, np.arange(CLASSES), np.arange(CLASSES)] += 200
    for c in range(CLASSES):
        m[:, c, (c + 1) % CLASSES] -= gain
        m[:, c, c] += gain
    return m.astype(np.int64)


def _paired(tmp_path: Path, n_images: int) -> tuple[pd.DataFrame, str]:
    """The paired table and Markdown of three runs of one strategy, a > b > c in every image."""
    paths = []
    for model, gain in (("a", 4), ("b", 2), ("c", 0)):
        path = tmp_path / f"{model}.npz"
        ids = [f"img{i:02d}" for i in range(n_images)]
        keys = {"dataset": "D", "model": model, "strategy": "s"}
        write_confusion(path, _matrices(n_images, gain), ids, ["c0", "c1", "c2"], keys)
        paths.append(path)
    grid = Grid(["D"], ["a", "b", "c"], ["s"], names={"datasets": {"D": "Tiny"}})
    frame = paired.paired_bootstrap_files(paths, REPLICATES, SEED, grid=grid)
    csv, md = paired.write_paired(frame, grid, tmp_path / "D.csv", tmp_path / "D.md")
    return pd.read_csv(csv), md.read_text()


def _md_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown tables."""
    lines = [line for line in text.splitlines() if line.startswith("| s |")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_a_three_image_split_shows_p_under_the_floor_and_marks_the_tests(tmp_path: Path) -> None:
    csv, text = _paired(tmp_path, 3)
    assert len(csv) == 3 and list(csv.columns[-3:]) == ["p_floor", "p_holm_floor", "unreliable"]
    # the CSV keeps the estimates: every pair is better in every replicate
    assert (csv["p_value"] == 0.0).all() and (csv["p_holm"] == 0.0).all()
    assert (csv["p_floor"] == 1 / REPLICATES).all()
    assert csv["p_holm_floor"].tolist() == pytest.approx([3 / REPLICATES] * 3)
    assert csv["unreliable"].tolist() == [True] * 3 and (csv["n_images"] == 3).all()
    rows = _md_rows(text)
    assert len(rows) == 3
    for row in rows:  # | Strategy | A | B | Δ | p | p (Holm) | Significant |
        assert row[4] == "< 0.005" and row[5] == "< 0.015"
        assert row[6] == f"yes{MARK}"
    assert "| 0 |" not in text
    assert f"{MARK} unreliable (n = 3 test images)" in text


def test_ten_images_are_not_marked(tmp_path: Path) -> None:
    csv, text = _paired(tmp_path, MIN_IMAGES)
    assert not csv["unreliable"].any() and (csv["n_images"] == 10).all()
    assert MARK not in text and "unreliable" not in text
    assert all(row[4] == "< 0.005" and row[6] == "yes" for row in _md_rows(text))


# ---- strategy and per-class tables ----------------------------------------------------------

GRID = Grid(["D"], ["m1", "m2"], ["s"], names={"models": {"m1": "Model one"}})


def _table(n_images: dict[str, object], classes: bool = False) -> pd.DataFrame:
    """A tidy table of one (dataset, strategy): per model every headline metric (and two
    per-class Dice rows) with the given test-image count (NA: a published cell)."""
    rows = []
    for i, (model, n) in enumerate(n_images.items()):
        metrics = [(name, pd.NA, pd.NA) for name in METRICS]
        if classes:
            metrics += [("Dice", k, f"c{k}") for k in (0, 1)]
        for name, k, class_name in metrics:
            v = 0.8 - 0.1 * i
            rows.append(
                {
                    "dataset": "D",
                    "model": model,
                    "strategy": "s",
                    "metric": name,
                    "class": k,
                    "class_name": class_name,
                    "boot_mean": v,
                    "ci_lower": v - 0.05,
                    "ci_upper": v + 0.05,
                    "n_images": n,
                    "source": "reproduced" if n is not pd.NA else "published",
                }
            )
    return tidy(pd.DataFrame(rows).reindex(columns=list(COLUMNS)))


def _written(tmp_path: Path, name: str, n_images: dict[str, object], writer=strategy_tables):
    """(CSV, Markdown, LaTeX) of the one table ``writer`` writes."""
    out = tmp_path / name
    writer(_table(n_images, classes=writer is class_tables), GRID, out)
    stem = out / "D" / "s"
    csv = pd.read_csv(stem.with_suffix(".csv"))
    return csv, stem.with_suffix(".md").read_text(), stem.with_suffix(".tex").read_text()


def test_a_three_image_split_marks_its_rows_and_says_why(tmp_path: Path) -> None:
    csv, md, tex = _written(tmp_path, "small", {"m1": 3, "m2": 3})
    assert csv["n_images"].tolist() == [3, 3] and csv["unreliable"].tolist() == [True, True]
    assert f"| Model one{MARK} |" in md and f"| m2{MARK} |" in md
    assert f"{MARK} unreliable (n = 3 test images): with fewer than 10 test images" in md
    assert f"Model one{TEX_MARK} &" in tex
    assert f"{TEX_MARK} unreliable (n = 3 test images)" in tex  # the LaTeX caption


def test_only_the_small_rows_of_a_mixed_table_are_marked(tmp_path: Path) -> None:
    csv, md, _ = _written(tmp_path, "mixed", {"m1": pd.NA, "m2": 4})
    assert csv["unreliable"].tolist() == [False, True] and pd.isna(csv.loc[0, "n_images"])
    assert "| Model one |" in md and f"| m2{MARK} |" in md
    assert "(n = 4 test images)" in md


def test_nothing_changes_from_ten_images_on(tmp_path: Path) -> None:
    for writer in (strategy_tables, class_tables):
        _, md10, tex10 = _written(tmp_path, f"ten_{writer.__name__}", {"m1": 10, "m2": 12}, writer)
        _, md_na, tex_na = _written(
            tmp_path, f"na_{writer.__name__}", {"m1": pd.NA, "m2": pd.NA}, writer
        )
        assert (md10, tex10) == (md_na, tex_na)  # as a table without image counts
        assert MARK not in md10 + tex10 and "unreliable" not in md10 + tex10


def test_per_class_tables_mark_a_small_split(tmp_path: Path) -> None:
    csv, md, tex = _written(tmp_path, "classes", {"m1": 3, "m2": 3}, class_tables)
    assert csv["unreliable"].all() and (csv["n_images"] == 3).all()
    assert f"| Model one{MARK} |" in md and "(n = 3 test images)" in md
    assert TEX_MARK in tex


# ---- the reproduction report ----------------------------------------------------------------


def test_the_comparison_marks_our_cells_of_a_small_split() -> None:
    ours = _table({"m1": 3, "m2": 12})
    ours["source"] = "reproduced"
    theirs = _table({"m1": pd.NA, "m2": pd.NA})
    comparison = compare(ours, theirs, GRID)
    dice = comparison[comparison["metric"] == "Mean_Dice"].set_index("model")
    assert dice.loc["m1", "unreliable"] and not dice.loc["m2", "unreliable"]
    assert dice["n_images"].tolist() == [3, 12]
    text = reproduction_markdown(comparison, GRID, "Reproduction")
    line = next(x for x in text.splitlines() if x.startswith("| D | s | Model one |"))
    assert f"0.8000 [0.7500, 0.8500]{MARK}" in line
    assert f"{MARK} unreliable (n = 3 test images)" in text
    large = compare(_table({"m1": 12, "m2": 12}), theirs, GRID)
    assert MARK not in reproduction_markdown(large, GRID, "Reproduction")
