"""Tests for densebench.report.products: the one table of the report's figures.

Every kind is drawn from a tiny hand-made table (2 demo models, 1 dataset, 2 strategies) through
the table itself (its builder path and ``render_figure``), so an entry whose builder moved or
whose options do not fit fails here, not in a workflow run.
"""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from densebench.report import products
from densebench.report.products import (
    FIGURE_KINDS,
    FIGURES,
    figure_kind_pattern,
    figure_names,
    figure_product,
    render_figure,
    strategy_of,
)
from tests.conftest import REPO
from tests.report.test_figures import DEMO_STRATEGIES, demo_rows, make_grid

SIX = (
    "figure3",
    "figure4",
    "heatmap",
    "dataset_sota",
    "average_rank",
    "critical_difference",
    "rank_uncertainty",
    "rank_shift",
)
PIXEL_KINDS = tuple(k for k in SIX if not FIGURES[k].objects)
"""The kinds drawn from pixel metrics alone (rank_shift needs object metrics:
tests/report/test_object_tables.py)."""


@pytest.fixture(scope="module")
def demo_grid(registries):
    """The demo grid (config/demo.yaml) with names, categories and model sizes."""
    return make_grid(registries, "config/demo.yaml")


def test_the_six_kinds_once() -> None:
    assert FIGURE_KINDS == SIX == tuple(FIGURES)
    assert (REPO / "workflow/report" / products.CAPTION).is_file()
    assert [k for k, p in FIGURES.items() if p.sizes] == ["figure4"]
    categories = {"Figures", "Leaderboard", "Statistical tests", "Object metrics"}
    assert {p.category for p in FIGURES.values()} == categories
    assert [k for k, p in FIGURES.items() if p.objects] == ["rank_shift"]


@pytest.mark.parametrize("kind", PIXEL_KINDS)
def test_every_kind_builds_from_a_small_table(kind, demo_grid) -> None:
    table = demo_rows()
    fig = FIGURES[kind].build()(table, demo_grid.within(table))
    assert isinstance(fig, Figure) and fig.get_axes()


@pytest.mark.parametrize("name", [*(k for k in PIXEL_KINDS if k != "heatmap"), "heatmap_lora"])
def test_render_figure_writes_png_and_pdf(tmp_path, name, demo_grid) -> None:
    table = demo_rows()
    png, pdf = tmp_path / f"{name}.png", tmp_path / f"{name}.pdf"
    render_figure(name, table, demo_grid.within(table), png, pdf)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_per_strategy_names_and_labels(demo_grid) -> None:
    names = figure_names(DEMO_STRATEGIES)
    assert names == [
        "figure3",
        "figure4",
        *(f"heatmap_{s}" for s in DEMO_STRATEGIES),
        "dataset_sota",
        "average_rank",
        "critical_difference",
        "rank_uncertainty",
        "rank_shift",
    ]
    assert figure_names(DEMO_STRATEGIES, objects=False) == names[:-1]  # a source without them
    assert strategy_of("heatmap_cnn_adapter") == "cnn_adapter" and strategy_of("figure3") is None
    assert figure_product("heatmap_lora") is FIGURES["heatmap"]
    assert FIGURES["heatmap"].labels("heatmap_lora") == {"figure": "heat map", "strategy": "lora"}
    assert FIGURES["figure3"].cli_options({"report": {"metric": "mIoU"}}) == "--metric mIoU"
    assert set(figure_kind_pattern(DEMO_STRATEGIES).split("|")) == set(names)


@pytest.mark.parametrize("name", ["figure9", "heatmap", "heat_map_lora"])
def test_unknown_kind_lists_the_valid_ones(tmp_path, name, demo_grid) -> None:
    if name == "heatmap":  # the bare per-strategy kind draws the grid's first strategy
        assert figure_product(name) is FIGURES["heatmap"]
        return
    with pytest.raises(ValueError, match=rf"unknown figure '{name}': one of figure3, .*heatmap_"):
        render_figure(name, demo_rows(), demo_grid, tmp_path / "x.png", tmp_path / "x.pdf")
    assert not (tmp_path / "x.png").exists()


TABLES = ("dataset_sota", "average_rank", "strategy_comparison", "friedman", "per_strategy")


@pytest.mark.parametrize("kind", TABLES)
def test_every_table_kind_writes_from_a_small_table(tmp_path, kind, demo_grid) -> None:
    table = demo_rows()
    out = tmp_path / kind
    paths = products.write_report_table(kind, out, table, demo_grid.within(table))
    assert paths and all(p.stat().st_size for p in paths)
    assert {p.suffix for p in paths} == {".csv", ".md", ".tex"}


def test_cards_and_table_errors(tmp_path, registries, demo_grid) -> None:
    records = {m: registries.models[m] for m in demo_grid.models}
    paths = products.write_report_table("model_cards", tmp_path / "model_cards", records=records)
    assert [p.name for p in paths] == ["model_cards.csv", "model_cards.md", "model_cards.tex"]
    with pytest.raises(ValueError, match="unknown table 'sota': one of dataset_sota, "):
        products.write_report_table("sota", tmp_path / "x", demo_rows(), demo_grid)
    with pytest.raises(ValueError, match="pass the registry records"):
        products.write_report_table("dataset_cards", tmp_path / "x")
    with pytest.raises(ValueError, match="stem must end in 'friedman'"):
        products.write_report_table("friedman", tmp_path / "x", demo_rows(), demo_grid)
