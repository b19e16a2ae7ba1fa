"""Tests for densebench.report.ranking: the site's best-per-dataset and average-rank tables.

Expected values are the paper's, as reference/protocol.md §6 lists them, computed here from the
committed published files (tests/fixtures/published/, SOURCE.md).
"""

from __future__ import annotations

import pandas as pd
import pytest

from densebench.report.published import import_published
from densebench.report.ranking import Grid, average_rank, dataset_sota, write_summaries
from tests.conftest import FIXTURES

PUBLISHED = FIXTURES / "published"

# protocol.md §6, "Per-dataset best": dataset, best mean, CI, model, strategy (registry keys).
PROTOCOL_SOTA = [
    ("GlaS", 0.9496, 0.938, 0.960, "hoptimus_1", "dora"),
    ("RINGS", 0.9484, 0.940, 0.956, "hoptimus_1", "lora"),
    ("CRAG", 0.9446, 0.925, 0.961, "hoptimus_0", "dora"),
    ("CoCaHis", 0.9277, 0.914, 0.939, "conch_v1_5", "cnn_adapter"),
    ("cpm17", 0.9120, 0.900, 0.926, "hoptimus_1", "cnn_adapter"),
    ("cpm15", 0.8970, 0.860, 0.940, "virchow_v1", "cnn_adapter"),
    ("TNBC", 0.8866, 0.861, 0.907, "hoptimus_1", "lora"),
    ("kumar", 0.8835, 0.882, 0.884, "hibou_l", "cnn_adapter"),
    ("COSAS24", 0.8702, 0.831, 0.907, "hoptimus_1", "dora"),
    ("WSSS4LUAD", 0.7285, 0.581, 0.797, "hibou_l", "cnn_adapter"),
    ("Janowczyk", 0.7170, 0.678, 0.756, "kaiko-vitl14", "cnn_adapter"),
    ("PanNuke", 0.6468, 0.639, 0.654, "hoptimus_1", "dora"),
    ("CoNIC2022", 0.6463, 0.636, 0.656, "uni_v1", "cnn_adapter"),
    ("CoNSeP", 0.5421, 0.363, 0.695, "hoptimus_1", "lora"),
    ("EBHI", 0.5004, 0.484, 0.513, "virchow_v1", "lora"),
    ("Lizard", 0.4481, 0.388, 0.505, "hoptimus_1", "cnn_adapter"),
    ("BCSS", 0.3684, 0.318, 0.432, "hoptimus_1", "dora"),
    ("NuCLS", 0.3514, 0.318, 0.419, "hoptimus_0", "cnn_adapter"),
]
# protocol.md §6, "Average-rank leaderboard": the top 5 (overall average rank).
PROTOCOL_TOP5 = [
    ("hoptimus_0", 4.08),
    ("hoptimus_1", 4.36),
    ("uni_v2", 5.03),
    ("virchow_v1", 6.46),
    ("kaiko-vitl14", 7.64),
]
# A few full rows of that leaderboard: frozen, LoRA, DoRA, CNN, Trans, Nuclear, Gland, Tissue.
PROTOCOL_ROWS = {
    "hoptimus_0": (4.33, 2.44, 2.67, 7.00, 3.94, 3.04, 4.73, 5.30),
    "lunit_vits8": (6.78, 7.22, 7.61, 10.67, 6.28, 4.91, 14.60, 8.47),
    "musk": (16.83, 16.83, 16.89, 13.50, 17.00, 16.31, 16.80, 15.77),
}
# protocol.md §6 categories (Janowczyk counted as Tissue, as the authors' code does).
PROTOCOL_CATEGORIES = {
    "nuclear": {
        "CoNIC2022",
        "CoNSeP",
        "cpm15",
        "cpm17",
        "kumar",
        "Lizard",
        "NuCLS",
        "PanNuke",
        "TNBC",
    },
    "gland": {"GlaS", "CRAG", "RINGS"},
    "tissue": {"BCSS", "CoCaHis", "COSAS24", "EBHI", "WSSS4LUAD", "Janowczyk"},
}


@pytest.fixture(scope="module")
def paper_grid(registries) -> Grid:
    """The paper grid (config/config.yaml) with the registries' names and categories."""
    from densebench.config import load_config
    from tests.conftest import REPO

    cfg = load_config(REPO / "config/config.yaml")
    names = {
        axis: {k: registries.axis(axis)[k]["display_name"] for k in cfg[axis]}
        for axis in ("models", "datasets", "strategies")
    }
    categories = {d: registries.datasets[d]["category"] for d in cfg["datasets"]}
    return Grid(cfg["datasets"], cfg["models"], cfg["strategies"], categories, names)


@pytest.fixture(scope="module")
def published(registries, paper_grid) -> pd.DataFrame:
    """The tidy table of the five committed published files."""
    parts = [
        import_published(PUBLISHED / f"{registries.strategies[s]['published']}.json", s)
        for s in paper_grid.strategies
    ]
    return pd.concat(parts, ignore_index=True)


def test_registry_categories_match_the_protocol(paper_grid):
    got = {c: {d for d, k in paper_grid.categories.items() if k == c} for c in PROTOCOL_CATEGORIES}
    assert got == PROTOCOL_CATEGORIES


def test_dataset_sota_is_the_protocol_table(published, paper_grid):
    sota = dataset_sota(published, paper_grid)
    got = [
        (
            r.dataset,
            round(r.mean, 4),
            round(r.ci_lower, 3),
            round(r.ci_upper, 3),
            r.model,
            r.strategy,
        )
        for r in sota.itertuples()
    ]
    assert got == PROTOCOL_SOTA  # sorted by best mean, descending
    glas = sota.set_index("dataset").loc["GlaS"]
    assert (glas.model_name, glas.strategy_name, glas.category) == ("H-Optimus-1", "DoRA", "gland")
    nucls = sota.set_index("dataset").loc["NuCLS"]
    assert (nucls.model_name, nucls.strategy_name) == ("H-Optimus-0", "CNN adapter")


def test_average_rank_leaderboard_is_the_protocol_one(published, paper_grid):
    ranks = average_rank(published, paper_grid)
    top5 = [(r.model, round(r.overall, 2)) for r in ranks.head(5).itertuples()]
    assert top5 == PROTOCOL_TOP5
    assert set(ranks["comparisons"]) == {90}
    by_model = ranks.set_index("model")
    columns = [*paper_grid.strategies, "nuclear", "gland", "tissue"]
    for model, expected in PROTOCOL_ROWS.items():
        got = tuple(round(float(by_model.loc[model, c]), 2) for c in columns)
        assert got == expected, model
    assert by_model.loc["hoptimus_0", "model_name"] == "H-Optimus-0"


def _cells(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """A hand-made tidy table of Mean_Dice headline rows: (dataset, strategy, model) -> mean."""
    rows = [
        {
            "dataset": d,
            "strategy": s,
            "model": m,
            "metric": "Mean_Dice",
            "class": pd.NA,
            "boot_mean": v,
            "ci_lower": v - 0.01,
            "ci_upper": v + 0.01,
            "source": "reproduced",
        }
        for (d, s, m), v in values.items()
    ]
    return pd.DataFrame(rows)


def test_sota_tie_goes_to_the_first_strategy_then_model_in_grid_order():
    grid = Grid(["D"], ["m1", "m2"], ["s1", "s2"], {"D": "gland"})
    table = _cells(
        {
            ("D", "s2", "m1"): 0.9,
            ("D", "s1", "m2"): 0.9,
            ("D", "s1", "m1"): 0.5,
            ("D", "s2", "m2"): 0.9,
        }
    )
    best = dataset_sota(table, grid).iloc[0]
    assert (best.strategy, best.model) == ("s1", "m2")  # s1 comes before s2 in the grid
    reordered = Grid(["D"], ["m2", "m1"], ["s2", "s1"], {"D": "gland"})
    best = dataset_sota(table, reordered).iloc[0]
    assert (best.strategy, best.model) == ("s2", "m2")


def test_ranks_by_position_with_ties_in_model_order():
    grid = Grid(["D", "E"], ["a", "b", "c"], ["s"], {"D": "nuclear", "E": "tissue"})
    table = _cells(
        {
            ("D", "s", "a"): 0.5,
            ("D", "s", "b"): 0.5,
            ("D", "s", "c"): 0.9,
            ("E", "s", "a"): 0.1,
            ("E", "s", "b"): 0.3,
            ("E", "s", "c"): 0.2,
        }
    )
    ranks = average_rank(table, grid).set_index("model")
    # D: c=1, a=2, b=3 (tie a/b by position); E: b=1, c=2, a=3
    assert ranks["overall"].to_dict() == {"c": 1.5, "a": 2.5, "b": 2.0}
    assert ranks["nuclear"].to_dict() == {"c": 1.0, "a": 2.0, "b": 3.0}
    assert ranks["tissue"].to_dict() == {"c": 2.0, "a": 3.0, "b": 1.0}
    assert ranks["gland"].isna().all()
    assert list(ranks.index) == ["c", "b", "a"]  # best average rank first


def test_cells_outside_the_grid_are_ignored():
    grid = Grid(["D"], ["a"], ["s"], {"D": "gland"})
    table = _cells({("D", "s", "a"): 0.5, ("D", "s", "zz"): 0.99, ("D", "other", "a"): 0.99})
    assert dataset_sota(table, grid).iloc[0]["mean"] == 0.5


def test_merged_table_ranks_a_new_model_beside_the_published_ones(tmp_path, published, paper_grid):
    from dataclasses import replace

    from densebench.report.sources import merged_table

    # our runs: a copy of UNI's published cells as a new model "mine" (+0.5: best everywhere)
    # and a rerun of UNI itself (halved), which must not replace the published UNI cells
    uni = published[published["model"] == "uni_v1"]
    mine = uni.assign(model="mine", boot_mean=uni["boot_mean"] + 0.5, source="reproduced")
    rerun = uni.assign(boot_mean=uni["boot_mean"] * 0.5, source="reproduced")
    merged = merged_table(pd.concat([mine, rerun]), published)
    grid = replace(paper_grid, models=[*paper_grid.models, "mine"]).within(merged)
    assert grid.marked == {"mine"} and grid.name("models", "mine") == "mine\u2020"
    paths = write_summaries(merged, grid, tmp_path)
    assert sorted(p.name for p in paths) == sorted(
        f"{n}.{e}" for n in ("average_rank", "dataset_sota") for e in ("csv", "md", "tex")
    )
    sota = pd.read_csv(tmp_path / "dataset_sota.csv")
    assert set(sota["model"]) == {"mine"} and set(sota["source"]) == {"reproduced"}
    ranks = pd.read_csv(tmp_path / "average_rank.csv").set_index("model")
    assert ranks.loc["mine", "overall"] == 1.0 and ranks.loc["mine", "comparisons"] == 90
    # the published models move down by one rank each: H-Optimus-0 is now second, 4.08 + 1
    assert round(ranks.loc["hoptimus_0", "overall"], 2) == 5.08
    assert ranks.loc["uni_v1", "source"] == "published"
    md = (tmp_path / "average_rank.md").read_text()
    assert "| 1 | mine\u2020 | **1.00** |" in md
    tex = (tmp_path / "average_rank.tex").read_text()
    assert "\\toprule" in tex and "\\textbf{1.00}" in tex and "\\underline{5.08}" in tex
