"""Tests for densebench.report.figures and .style: the figures from a tidy table and a Grid.

Two tables: the published one of the paper grid (tests/fixtures/published, 17 models x 18
datasets x 5 strategies) and a tiny hand-made reproduced one (2 demo models, 1 dataset, 2
strategies). Expected values come from the fixture JSON read here directly, or from the ranking
module's tables, never from the figures' own output.
"""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.container import BarContainer
from matplotlib.text import Text

from densebench.report import style
from densebench.report.aggregate import COLUMNS
from densebench.report.figures import save_figure
from densebench.report.figures.bars import build_average_rank, build_dataset_sota
from densebench.report.figures.boxes import build_figure3
from densebench.report.figures.heatmap import build_heatmap, category_order
from densebench.report.figures.scaling import build_figure4, scaling_points, spearman
from densebench.report.grid import MARK, Grid
from densebench.report.products import FIGURES, render_figure
from densebench.report.published import import_published
from densebench.report.ranking import CATEGORIES, average_rank, dataset_sota
from tests.conftest import FIXTURES, REPO

PUBLISHED = FIXTURES / "published"
DEMO_MODELS = ("demo_vit_p8", "demo_vit_p14_reg4")
DEMO_STRATEGIES = ("frozen", "lora")
KINDS = ("figure3", "figure4", "heatmap", "dataset_sota", "average_rank")


def make_grid(registries, config: str, **extra) -> Grid:
    """The grid of a config with the registries' names, categories and sizes."""
    from densebench.config import load_config

    cfg = load_config(REPO / config)
    names = {
        axis: {k: registries.axis(axis)[k]["display_name"] for k in cfg[axis]}
        for axis in ("models", "datasets", "strategies")
    }
    return Grid(
        cfg["datasets"],
        cfg["models"],
        cfg["strategies"],
        categories={d: registries.datasets[d]["category"] for d in cfg["datasets"]},
        names=names,
        params_m={m: float(registries.models[m]["params_m"]) for m in cfg["models"]},
        **extra,
    )


@pytest.fixture(scope="module")
def paper_grid(registries) -> Grid:
    """The paper grid (config/config.yaml)."""
    return make_grid(registries, "config/config.yaml")


@pytest.fixture(scope="module")
def demo_grid(registries) -> Grid:
    """The demo grid (config/demo.yaml: 3 datasets, 3 models, 5 strategies)."""
    return make_grid(registries, "config/demo.yaml")


@pytest.fixture(scope="module")
def published(registries, paper_grid) -> pd.DataFrame:
    """The tidy table of the five committed published files."""
    parts = [
        import_published(PUBLISHED / f"{registries.strategies[s]['published']}.json", s)
        for s in paper_grid.strategies
    ]
    return pd.concat(parts, ignore_index=True)


def demo_rows(dataset: str = "demo_nuclei", source: str = "reproduced") -> pd.DataFrame:
    """A tiny reproduced table: 2 models x 1 dataset x 2 strategies, Mean_Dice and mIoU."""
    rows = []
    for i, model in enumerate(DEMO_MODELS):
        for j, strategy in enumerate(DEMO_STRATEGIES):
            for metric, base in (("Mean_Dice", 0.40), ("mIoU", 0.30)):
                mean = base + 0.06 * i + 0.03 * j
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "strategy": strategy,
                        "metric": metric,
                        "point": mean,
                        "boot_mean": mean,
                        "ci_lower": mean - 0.04,
                        "ci_upper": mean + 0.03,
                        "boot_std": 0.02,
                        "n_images": 4,
                        "replicates": 1000,
                        "seed": 42,
                        "source": source,
                    }
                )
    return pd.DataFrame(rows, columns=list(COLUMNS))


@pytest.fixture(scope="module")
def tables(published, paper_grid, demo_grid) -> dict[str, tuple[pd.DataFrame, Grid]]:
    """The two tables every builder must draw, each with its grid."""
    return {"published": (published, paper_grid), "demo": (demo_rows(), demo_grid)}


def json_means(stem: str, metric: str = "Mean_Dice") -> dict[str, dict[str, float]]:
    """dataset -> model -> published mean, read straight from a fixture file."""
    data = json.loads((PUBLISHED / f"{stem}.json").read_text())
    return {d: {m: v[metric]["mean"] for m, v in models.items()} for d, models in data.items()}


def all_texts(fig) -> list[Text]:
    """Every visible non-empty text of a drawn figure."""
    fig.canvas.draw()
    return [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]


def note(fig) -> str:
    """The figure's foot note (its supxlabel), empty when it has none."""
    return fig._supxlabel.get_text() if fig._supxlabel is not None else ""


# --- every builder, both tables ----------------------------------------------------------------

EXPECTED_AXES = {
    ("figure3", "published"): 18,
    ("figure3", "demo"): 1,
    ("figure4", "published"): 1,
    ("figure4", "demo"): 1,
    ("heatmap", "published"): 2,  # the map and its colour bar
    ("heatmap", "demo"): 2,
    ("dataset_sota", "published"): 1,
    ("dataset_sota", "demo"): 1,
    ("average_rank", "published"): 1,
    ("average_rank", "demo"): 1,
}


@pytest.mark.parametrize("which", ["published", "demo"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_builder_draws_both_tables(tables, kind, which) -> None:
    table, grid = tables[which]
    fig = FIGURES[kind].build()(table, grid)
    assert len(fig.get_axes()) == EXPECTED_AXES[kind, which]
    width = fig.get_figwidth()
    assert width in (style.SINGLE_COLUMN_IN, style.DOUBLE_COLUMN_IN)
    assert fig.dpi == style.DPI


def test_fonts_readable_at_print_size(tables) -> None:
    table, grid = tables["published"]
    for kind in KINDS:
        fig = FIGURES[kind].build()(table, grid)
        sizes = {t.get_text(): t.get_fontsize() for t in all_texts(fig)}
        small = {text: size for text, size in sizes.items() if size < style.MIN_FONT_PT}
        assert not small, f"{kind}: text below {style.MIN_FONT_PT} pt: {small}"


# --- styles ------------------------------------------------------------------------------------


def test_style_palettes(paper_grid) -> None:
    colours = style.strategy_colours(paper_grid)
    assert list(colours) == list(paper_grid.strategies)
    assert len(set(colours.values())) == 5
    assert set(colours.values()) <= set(style.OKABE_ITO.values())
    styles = style.model_styles(paper_grid)
    assert list(styles) == list(paper_grid.models)
    assert len(set(styles.values())) == len(paper_grid.models)  # 17 distinct (colour, marker)
    many = [style.model_style(i) for i in range(56)]
    assert len(set(many)) == 56
    assert {c for c, _ in many} <= set(style.OKABE_ITO.values())


def test_model_colours_agree_across_figures_and_subsets(published, paper_grid) -> None:
    styles = style.model_styles(paper_grid)
    subset_models = ["musk", "hoptimus_0", "uni_v1"]
    subset = published[
        published["model"].isin(subset_models) & published["dataset"].isin(["GlaS", "BCSS"])
    ]
    # figure3 of the whole table: its legend
    legend = build_figure3(published, paper_grid).legends[0]
    by_name = {
        t.get_text(): (to_rgba(h.get_markerfacecolor()), h.get_marker())
        for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)
    }
    # figure3 of the subset: its legend has only the subset, same styles
    small = build_figure3(subset, paper_grid).legends[0]
    assert [t.get_text() for t in small.get_texts()] == [
        paper_grid.name("models", m) for m in paper_grid.models if m in subset_models
    ]
    for t, h in zip(small.get_texts(), small.legend_handles, strict=True):
        assert (to_rgba(h.get_markerfacecolor()), h.get_marker()) == by_name[t.get_text()]
    # average-rank bars of the subset: the same colours
    fig = build_average_rank(subset, paper_grid)
    ax = fig.get_axes()[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    for name, bar in zip(names, ax.containers[0], strict=True):
        assert to_rgba(bar.get_facecolor()) == by_name[name][0]
    for model in paper_grid.models:
        colour, marker = styles[model]
        assert by_name[paper_grid.name("models", model)] == (to_rgba(colour), marker)


# --- figure3 -----------------------------------------------------------------------------------


def test_figure3_panels_boxes_and_points(published, paper_grid) -> None:
    fig = build_figure3(published, paper_grid)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == [
        paper_grid.name("datasets", d) for d in paper_grid.datasets
    ]
    ax = axes[paper_grid.datasets.index("GlaS")]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [paper_grid.name("strategies", s) for s in paper_grid.strategies]
    ys = sorted(y for c in ax.collections for _, y in c.get_offsets())
    expected = sorted(
        v for stem in ("frozen", "lora", "dora", "cnn", "transformer")
        for v in json_means(stem)["GlaS"].values()
    )  # fmt: skip
    assert ys == pytest.approx(expected)
    assert len(fig.legends[0].get_texts()) == 17
    assert MARK not in note(fig)


# --- figure4 -----------------------------------------------------------------------------------


def test_spearman_is_scipy_on_the_published_frozen_means(published, paper_grid, registries) -> None:
    from scipy.stats import spearmanr

    means = json_means("frozen")
    models = sorted({m for per_model in means.values() for m in per_model})
    by_hand = {m: statistics.fmean(means[d][m] for d in means) for m in models}
    sizes = [float(registries.models[m]["params_m"]) for m in models]
    expected = spearmanr(sizes, [by_hand[m] for m in models])

    points = scaling_points(published, paper_grid)
    assert list(points.columns) == ["model", "params_m", "mean", "n_datasets"]
    assert list(points["model"]) == list(paper_grid.models)
    assert (points["n_datasets"] == 18).all()
    got = dict(zip(points["model"], points["mean"], strict=True))
    assert got == pytest.approx(by_hand)
    rho, p = spearman(points)
    assert rho == pytest.approx(expected.statistic)
    assert p == pytest.approx(expected.pvalue)
    assert round(got["hoptimus_0"], 3) == 0.679 and round(got["musk"], 3) == 0.567
    fig = build_figure4(published, paper_grid)
    ax = fig.get_axes()[0]
    assert ax.get_xscale() == "log"
    assert f"{expected.statistic:.2f}" in ax.get_title()
    assert f"{expected.pvalue:.2g}" in ax.get_title()
    assert sorted(t.get_text() for t in ax.texts) == sorted(
        paper_grid.name("models", m) for m in models
    )


def test_figure4_skips_models_without_size(published, paper_grid) -> None:
    sizes = {m: v for m, v in paper_grid.params_m.items() if m not in ("musk", "phikon")}
    grid = Grid(
        paper_grid.datasets,
        paper_grid.models,
        paper_grid.strategies,
        paper_grid.categories,
        paper_grid.names,
        sizes,
    )
    points = scaling_points(published, grid, strategy="lora")
    assert len(points) == 15 and not {"musk", "phikon"} & set(points["model"])
    fig = build_figure4(published, grid, strategy="lora")
    assert "MUSK" in note(fig) and "Phikon" in note(fig) and "skipped" in note(fig)
    assert len(fig.get_axes()[0].texts) == 15


def test_spearman_needs_three_points(demo_grid) -> None:
    points = scaling_points(demo_rows(), demo_grid)
    assert len(points) == 2
    assert all(math.isnan(v) for v in spearman(points))
    assert "n/a" in build_figure4(demo_rows(), demo_grid).get_axes()[0].get_title()


# --- heat map ----------------------------------------------------------------------------------


def heat_cells(fig, grid: Grid) -> dict[tuple[str, str], str]:
    """(model name, dataset name) -> annotation text of a heat map."""
    ax = fig.get_axes()[0]
    rows = [t.get_text() for t in ax.get_yticklabels()]
    cols = [t.get_text() for t in ax.get_xticklabels()]
    out = {}
    for text in ax.texts:
        x, y = text.get_position()
        out[rows[math.floor(y)], cols[math.floor(x)]] = text.get_text()  # centres at i + 0.5
    return out


def test_heatmap_cells_are_the_published_values(published, paper_grid) -> None:
    fig = build_heatmap(published, paper_grid, strategy="lora")
    cells = heat_cells(fig, paper_grid)
    means = json_means("lora")
    assert len(cells) == 17 * 18
    for dataset, per_model in means.items():
        for model, mean in per_model.items():
            key = (paper_grid.name("models", model), paper_grid.name("datasets", dataset))
            assert cells[key] == f"{mean:.2f}"
    ax = fig.get_axes()[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        paper_grid.name("models", m) for m in paper_grid.models
    ]
    names = {paper_grid.name("datasets", d): d for d in paper_grid.datasets}
    order = [names[t.get_text()] for t in ax.get_xticklabels()]
    ranks = [CATEGORIES.index(paper_grid.categories[d]) for d in order]
    assert ranks == sorted(ranks)  # grouped nuclear, gland, tissue
    assert order == category_order(paper_grid, paper_grid.datasets)
    (mesh,) = fig.get_axes()[0].collections  # seaborn's heat map: one QuadMesh
    assert mesh.get_cmap().name == style.SEQUENTIAL_CMAP


def test_heatmap_missing_cells_are_blank_and_hatched(published, paper_grid) -> None:
    drop = (published["strategy"] == "dora") & (
        ((published["model"] == "musk") & (published["dataset"] == "GlaS"))
        | ((published["model"] == "uni_v1") & published["dataset"].isin(["BCSS", "TNBC"]))
    )
    fig = build_heatmap(published[~drop], paper_grid, strategy="dora")
    cells = heat_cells(fig, paper_grid)
    assert len(cells) == 17 * 18 - 3
    assert ("MUSK", "GlaS") not in cells and ("UNI", "TNBC") not in cells
    ax = fig.get_axes()[0]
    assert ax.patch.get_hatch() and "hatched" in note(fig)


# --- bar charts --------------------------------------------------------------------------------


def test_dataset_sota_bars_follow_the_ranking_table(published, paper_grid) -> None:
    sota = dataset_sota(published, paper_grid)
    fig = build_dataset_sota(published, paper_grid)
    ax = fig.get_axes()[0]
    (container,) = [c for c in ax.containers if isinstance(c, BarContainer)]
    bars = list(container)
    assert [b.get_width() for b in bars] == pytest.approx(list(sota["mean"]))
    tops = [b.get_y() for b in bars]
    assert ax.yaxis_inverted() and tops == sorted(tops)  # first row drawn at the top
    assert [t.get_text() for t in ax.get_yticklabels()] == list(sota["dataset_name"])
    colours = style.strategy_colours(paper_grid)
    assert [to_rgba(b.get_facecolor()) for b in bars] == [
        to_rgba(colours[s]) for s in sota["strategy"]
    ]
    (right,) = ax.child_axes
    assert [t.get_text() for t in right.get_yticklabels()] == list(sota["model_name"])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        paper_grid.name("strategies", s) for s in paper_grid.strategies
    ]
    # the whiskers are the CIs
    (lines,) = container.errorbar.lines[2]
    segments = lines.get_segments()
    assert [seg[0][0] for seg in segments] == pytest.approx(list(sota["ci_lower"]))
    assert [seg[1][0] for seg in segments] == pytest.approx(list(sota["ci_upper"]))


def test_average_rank_bars_best_first(published, paper_grid) -> None:
    ranks = average_rank(published, paper_grid)
    fig = build_average_rank(published, paper_grid)
    ax = fig.get_axes()[0]
    bars = list(ax.containers[0])
    assert [b.get_width() for b in bars] == pytest.approx(list(ranks["overall"]))
    assert list(ranks["overall"]) == sorted(ranks["overall"])
    assert ax.yaxis_inverted()
    assert [t.get_text() for t in ax.get_yticklabels()][:2] == ["H-Optimus-0", "H-Optimus-1"]
    styles = style.model_styles(paper_grid)
    assert [to_rgba(b.get_facecolor()) for b in bars] == [
        to_rgba(styles[m][0]) for m in ranks["model"]
    ]
    assert "90" in note(fig)


# --- marked models (merged table) --------------------------------------------------------------


def test_marked_models_have_a_dagger_an_edge_and_a_note(published, paper_grid, registries) -> None:
    ours = demo_rows(dataset="GlaS")
    merged = pd.concat([published, ours], ignore_index=True)
    demo = make_grid(registries, "config/demo.yaml")
    grid = Grid(
        paper_grid.datasets,
        [*paper_grid.models, *DEMO_MODELS],
        paper_grid.strategies,
        paper_grid.categories,
        {**paper_grid.names, "models": {**paper_grid.names["models"], **demo.names["models"]}},
        {**paper_grid.params_m, **demo.params_m},
    )
    ours_names = {demo.name("models", m) + MARK for m in DEMO_MODELS}
    fig = build_figure3(merged, grid)
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert ours_names <= labels and sum(MARK in label for label in labels) == 2
    assert style.MARKED_NOTE in note(fig)
    fig = build_average_rank(merged, grid)
    ax = fig.get_axes()[0]
    names = [t.get_text() for t in ax.get_yticklabels()]
    for name, bar in zip(names, ax.containers[0], strict=True):
        assert bool(bar.get_hatch()) == (name in ours_names)
    fig = build_figure4(merged, grid)
    ax = fig.get_axes()[0]
    edges = {tuple(c.get_edgecolor()[0]) for c in ax.collections}
    assert to_rgba("black") in edges and style.MARKED_NOTE in note(fig)
    # no mark when the winning bars are all published
    assert style.MARKED_NOTE not in note(build_dataset_sota(merged, grid))
    assert style.MARKED_NOTE not in note(build_average_rank(published, paper_grid))


# --- files -------------------------------------------------------------------------------------


def test_save_figure_is_byte_identical(tmp_path, published, paper_grid) -> None:
    first = (tmp_path / "a" / "sota.png", tmp_path / "a" / "sota.pdf")
    second = (tmp_path / "b" / "sota.png", tmp_path / "b" / "sota.pdf")
    save_figure(build_dataset_sota(published, paper_grid), *first)
    save_figure(build_dataset_sota(published, paper_grid), *second)
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    png, pdf = (p.read_bytes() for p in first)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in png
    assert pdf[:5] == b"%PDF-" and b"CreationDate" not in pdf and b"ModDate" not in pdf
    assert sorted(p.name for p in first[0].parent.iterdir()) == ["sota.pdf", "sota.png"]


def test_render_figure_writes_both_files(tmp_path, demo_grid) -> None:
    render_figure("heatmap_lora", demo_rows(), demo_grid, tmp_path / "h.png", tmp_path / "h.pdf")
    render_figure("figure3", demo_rows(), demo_grid, tmp_path / "f.png", tmp_path / "f.pdf")
    for name in ("h.png", "h.pdf", "f.png", "f.pdf"):
        assert (tmp_path / name).stat().st_size > 0


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_no_mean_dice_rows(kind, demo_grid) -> None:
    table = demo_rows()
    with pytest.raises(ValueError, match=f"{kind}: no Mean_Dice rows"):
        FIGURES[kind].build()(table[table["metric"] != "Mean_Dice"], demo_grid)


def test_figure_errors_name_what_is_missing(demo_grid, paper_grid) -> None:
    table = demo_rows()
    lora_only = table[table["strategy"] == "lora"]
    with pytest.raises(ValueError, match="figure4: no frozen cells of Mean_Dice"):
        build_figure4(lora_only, demo_grid)
    with pytest.raises(ValueError, match="heatmap: no dora cells of Mean_Dice"):
        build_heatmap(table, demo_grid, strategy="dora")
    with pytest.raises(ValueError, match="strategy 'full' is not in the grid"):
        build_heatmap(table, demo_grid, strategy="full")
    no_sizes = Grid(demo_grid.datasets, demo_grid.models, demo_grid.strategies)
    with pytest.raises(ValueError, match=r"figure4: no model .* has params_m"):
        build_figure4(table, no_sizes)
    with pytest.raises(ValueError, match="figure3: metric 'Dice' is not a headline metric"):
        build_figure3(table, demo_grid, metric="Dice")
    with pytest.raises(ValueError, match="no Mean_Dice rows"):  # cells outside the grid
        build_figure3(table, paper_grid)
