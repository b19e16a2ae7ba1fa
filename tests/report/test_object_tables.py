"""The object-metric tables and the pixel-rank against object-rank figure (issue 21 item 5)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from densebench.report.figures.rank_shift import block_ranks, build_rank_shift
from densebench.report.grid import Grid
from densebench.report.object_tables import object_tables
from densebench.report.products import write_report_table

MODELS = ("uni_v1", "phikon", "virchow_v1")
GRID = Grid(
    ("kumar", "GlaS", "BCSS"),
    MODELS,
    ("frozen", "lora"),
    categories={"kumar": "nuclear", "GlaS": "gland", "BCSS": "tissue"},
    names={"models": {"uni_v1": "UNI"}, "datasets": {"kumar": "Kumar"}},
)


def row(dataset: str, model: str, strategy: str, metric: str, value: float) -> dict:
    """A tidy row with a CI of +-0.01 around `value`."""
    return {
        "dataset": dataset,
        "model": model,
        "strategy": strategy,
        "metric": metric,
        "class": pd.NA,
        "point": value,
        "boot_mean": value,
        "ci_lower": value - 0.01,
        "ci_upper": value + 0.01,
        "n_images": 3 if dataset == "GlaS" else 14,
    }


def table() -> pd.DataFrame:
    """Kumar: UNI best by pixels, phikon best by PQ; GlaS: virchow the lowest Hausdorff."""
    rows = []
    pixel = {"uni_v1": 0.80, "phikon": 0.75, "virchow_v1": 0.70}
    pq = {"uni_v1": 0.40, "phikon": 0.55, "virchow_v1": 0.30}
    for strategy in ("frozen", "lora"):
        for model in MODELS:
            rows.append(row("kumar", model, strategy, "Mean_Dice", pixel[model]))
            rows.append(row("kumar", model, strategy, "PQ", pq[model]))
            for metric in ("DQ", "SQ", "AJI", "Nucleus_F1"):
                rows.append(row("kumar", model, strategy, metric, 0.5))
            rows.append(row("GlaS", model, strategy, "Mean_Dice", pixel[model]))
            rows.append(row("GlaS", model, strategy, "Object_F1", pixel[model]))
            rows.append(row("GlaS", model, strategy, "Object_Dice", pixel[model]))
            hausdorff = {"uni_v1": 30.0, "phikon": 20.0, "virchow_v1": 10.0}[model]
            rows.append(row("GlaS", model, strategy, "Object_Hausdorff", hausdorff))
            rows.append(row("BCSS", model, strategy, "Mean_Dice", pixel[model]))
    return pd.DataFrame(rows).astype({"class": "Int64"})


def test_object_tables_per_cell_sorted_with_the_lowest_hausdorff_best(tmp_path: Path) -> None:
    written = object_tables(table(), GRID, tmp_path)
    stems = sorted({p.relative_to(tmp_path).with_suffix("").as_posix() for p in written})
    assert stems == ["GlaS/frozen", "GlaS/lora", "kumar/frozen", "kumar/lora"]  # no BCSS
    kumar = pd.read_csv(tmp_path / "kumar/lora.csv")
    assert list(kumar["model"]) == ["phikon", "uni_v1", "virchow_v1"]  # by PQ, not Mean Dice
    assert {"PQ", "AJI", "Nucleus_F1", "PQ_ci_lower"} <= set(kumar.columns)
    assert "Object_Dice" not in kumar.columns
    glas = (tmp_path / "GlaS/frozen.md").read_text()
    line = next(x for x in glas.splitlines() if x.startswith("| virchow"))
    assert "**10.00 [9.99, 10.01]**" in line  # the lowest Hausdorff is the best
    assert "**0.800" in next(x for x in glas.splitlines() if x.startswith("| UNI"))
    assert "lower is better" in glas
    assert "| UNI\u2021 |" in glas and "unreliable (n = 3 test images)" in glas  # small split
    kumar_md = (tmp_path / "kumar/lora.md").read_text()
    assert "\u2021" not in kumar_md  # 14 test images: unmarked
    assert (tmp_path / "GlaS/frozen.tex").read_text().startswith("\\begin{table}")


def test_the_table_kind_writes_a_folder_and_nothing_for_a_table_without_objects(tmp_path):
    pixels_only = table()[lambda t: t["metric"] == "Mean_Dice"]
    assert write_report_table("objects", tmp_path / "objects", pixels_only, GRID) == []
    assert (tmp_path / "objects").is_dir()


def test_block_ranks_average_pixel_and_object_ranks_over_blocks() -> None:
    ranks = block_ranks(table(), GRID).set_index("model")
    # Kumar: pixel ranks UNI 1, phikon 2, virchow 3; PQ ranks phikon 1, UNI 2, virchow 3.
    # GlaS: object F1 follows Mean Dice; BCSS has no object metrics. Four blocks each.
    assert ranks.loc["uni_v1", "pixel_rank"] == 1.0
    assert ranks.loc["uni_v1", "object_rank"] == pytest.approx((2 + 2 + 1 + 1) / 4)
    assert ranks.loc["phikon", "object_rank"] == pytest.approx((1 + 1 + 2 + 2) / 4)
    assert ranks.loc["virchow_v1", "pixel_rank"] == ranks.loc["virchow_v1", "object_rank"] == 3
    assert set(ranks["blocks"]) == {4}


def test_rank_shift_without_two_ranked_models_says_why() -> None:
    with pytest.raises(ValueError, match="no \\(dataset, strategy\\) block with object metrics"):
        block_ranks(table()[lambda t: t["metric"] == "Mean_Dice"], GRID)
    one_model = table()[lambda t: t["model"] == "uni_v1"]
    fig = build_rank_shift(one_model, GRID)
    assert "not applicable" in fig.texts[0].get_text() and not fig.get_axes()
    assert len(build_rank_shift(table(), GRID).get_axes()) == 1
