"""Tests for densebench.report.rank_uncertainty: rank intervals and P(first) of the leaderboard.

Known answers on hand-made tables (a model best everywhere, two identical models, a construction
where keeping a dataset's strategy blocks together changes the answer), agreement with a
straightforward loop over the replicates written here for both schemes, and a run on the
committed published files (tests/fixtures/published/).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densebench.evaluate.bootstrap import bootstrap_indices
from densebench.evaluate.confusion import write_confusion
from densebench.report.grid import Grid
from densebench.report.published import import_published
from densebench.report.rank_uncertainty import (
    UNCERTAINTY_COLUMNS,
    choose_scheme,
    confusion_map,
    dataset_seed,
    leaderboard_blocks,
    rank_uncertainty,
    replicate_average_ranks,
    tie_ranks,
    write_rank_uncertainty,
)
from densebench.report.ranking import average_rank
from tests.conftest import FIXTURES

PUBLISHED = FIXTURES / "published"


def cells(values: dict[tuple[str, str, str], float], source: str = "reproduced") -> pd.DataFrame:
    """A hand-made tidy table of Mean_Dice headline rows: (dataset, strategy, model) -> mean."""
    return pd.DataFrame(
        [
            {
                "dataset": d,
                "strategy": s,
                "model": m,
                "metric": "Mean_Dice",
                "class": pd.NA,
                "boot_mean": v,
                "ci_lower": v - 0.01,
                "ci_upper": v + 0.01,
                "source": source,
            }
            for (d, s, m), v in values.items()
        ]
    )


def grid_of(datasets, models, strategies) -> Grid:
    return Grid(list(datasets), list(models), list(strategies), {d: "tissue" for d in datasets})


# ---- straightforward implementations, one replicate at a time ----------------------------------


def loop_ranks(block: dict[str, float]) -> dict[str, float]:
    """Ranks of one block (1 = highest), ties averaged, by counting."""
    out = {}
    for m, v in block.items():
        higher = sum(1 for w in block.values() if w > v)
        ties = sum(1 for w in block.values() if w == v)
        out[m] = 1 + higher + (ties - 1) / 2
    return out


def loop_average(blocks: list[dict[str, float]]) -> dict[str, float]:
    """Average rank of each model over a list of blocks (a block may repeat)."""
    sums: dict[str, list[float]] = {}
    for block in blocks:
        for m, r in loop_ranks(block).items():
            sums.setdefault(m, []).append(r)
    return {m: sum(r) / len(r) for m, r in sums.items()}


def loop_first(average: dict[str, float]) -> dict[str, float]:
    best = min(average.values())
    tied = [m for m, a in average.items() if abs(a - best) < 1e-9]
    return {m: (1 / len(tied) if m in tied else 0.0) for m in average}


def dice(matrix: np.ndarray) -> float:
    """The paper's Mean Dice of one summed confusion matrix, by hand."""
    tp = np.diag(matrix).astype(float)
    fp, fn = matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp
    valid = tp + fp + fn > 0
    values = 2 * tp / (2 * tp + fp + fn + 1e-8)
    return float(values[valid].mean()) if valid.any() else 0.0


# ---- ranks, known answers ------------------------------------------------------------------------


def test_tie_ranks_average_the_tied_positions_and_skip_missing():
    got = tie_ranks(np.array([[0.9, 0.5, 0.5, np.nan], [0.1, 0.2, 0.3, 0.4]]))
    np.testing.assert_array_equal(got[0, :3], [1.0, 2.5, 2.5])
    assert np.isnan(got[0, 3])
    np.testing.assert_array_equal(got[1], [4.0, 3.0, 2.0, 1.0])


@pytest.mark.parametrize("scheme", ["dataset", "image"])
def test_a_model_best_in_every_block_is_always_first(tmp_path, scheme):
    datasets, models, strategies = ["D1", "D2", "D3"], ["a", "b", "c"], ["s1", "s2"]
    rng = np.random.default_rng(0)
    values, files = {}, {}
    for d in datasets:
        for s in strategies:
            for i, m in enumerate(models):
                # a predicts perfectly (Dice 1 in every replicate); b and c confuse some pixels
                noise = 0 if m == "a" else 5 + i
                per_image = perfect_and_noisy(rng, 6, noise)
                files[(d, m, s)] = write_run(tmp_path, d, m, s, per_image)
                values[(d, s, m)] = dice(per_image.sum(axis=0))
    table = cells(values)
    grid = grid_of(datasets, models, strategies)
    result = rank_uncertainty(table, grid, 200, 7, confusions=files, scheme=scheme)
    assert result.scheme == scheme
    top = result.frame.iloc[0]
    assert top["model"] == "a" and top["p_first"] == 1.0
    assert (top["rank_lower"], top["rank_upper"]) == (1.0, 1.0)
    assert (top["position"], top["position_lower"], top["position_upper"]) == (1, 1, 1)
    assert result.frame["p_first"].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("scheme", ["dataset", "image"])
def test_two_identical_models_split_first_place(tmp_path, scheme):
    datasets, models, strategies = ["D1", "D2"], ["twin1", "twin2", "worse"], ["s1", "s2"]
    rng = np.random.default_rng(1)
    values, files = {}, {}
    for d in datasets:
        for s in strategies:
            good = perfect_and_noisy(rng, 8, 2)
            for m in models:
                per_image = good if m != "worse" else perfect_and_noisy(rng, 8, 40)
                files[(d, m, s)] = write_run(tmp_path, d, m, s, per_image)
                values[(d, s, m)] = dice(per_image.sum(axis=0))
    result = rank_uncertainty(
        cells(values),
        grid_of(datasets, models, strategies),
        100,
        3,
        confusions=files,
        scheme=scheme,
    )
    frame = result.frame.set_index("model")
    assert frame.loc["twin1", "p_first"] == frame.loc["twin2", "p_first"] == 0.5
    assert frame.loc["worse", "p_first"] == 0.0
    assert frame.loc["twin1", "average_rank"] == frame.loc["twin2", "average_rank"] == 1.5
    # a shared place: both first on the leaderboard in every replicate
    assert frame.loc["twin1", ["position", "position_lower", "position_upper"]].tolist() == [
        1,
        1,
        1,
    ]


def test_dataset_level_keeps_a_datasets_strategy_blocks_together():
    """D1: a wins both strategies; D2: b wins both. Drawing whole datasets, a's average rank is
    1 (D1 twice), 1.5 (one of each) or 2 (D2 twice), never 1.25 or 1.75, which drawing the four
    blocks independently would give; over many replicates P(first) of each is 1/2."""
    table = cells(
        {
            ("D1", "s1", "a"): 0.9,
            ("D1", "s2", "a"): 0.8,
            ("D1", "s1", "b"): 0.5,
            ("D1", "s2", "b"): 0.4,
            ("D2", "s1", "a"): 0.3,
            ("D2", "s2", "a"): 0.2,
            ("D2", "s1", "b"): 0.6,
            ("D2", "s2", "b"): 0.7,
        },
        source="published",
    )
    grid = grid_of(["D1", "D2"], ["a", "b"], ["s1", "s2"])
    blocks = leaderboard_blocks(table, grid)
    reps = replicate_average_ranks(blocks, "dataset", 4000, 11)
    assert set(np.unique(reps[:, 0])) == {1.0, 1.5, 2.0}
    shares = {v: float(np.mean(reps[:, 0] == v)) for v in (1.0, 1.5, 2.0)}
    assert shares == pytest.approx({1.0: 0.25, 1.5: 0.5, 2.0: 0.25}, abs=0.03)
    result = rank_uncertainty(table, grid, 4000, 11).frame.set_index("model")
    assert result.loc["a", "p_first"] == pytest.approx(0.5, abs=0.03)
    assert result.loc["a", "p_first"] + result.loc["b", "p_first"] == pytest.approx(1.0)
    assert (result.loc["a", "rank_lower"], result.loc["a", "rank_upper"]) == (1.0, 2.0)


# ---- agreement with a loop over the replicates -----------------------------------------------


def test_dataset_level_agrees_with_a_loop_over_the_replicates():
    rng = np.random.default_rng(5)
    datasets, models, strategies = ["A", "B", "C", "D"], ["m1", "m2", "m3", "m4"], ["s1", "s2"]
    values = {
        (d, s, m): float(rng.random())
        for d in datasets
        for s in strategies
        for m in models
        if not (d == "C" and m == "m4")  # a missing cell: m4 not run on C
    }
    values.pop(("D", "s2", "m1"))
    table = cells(values, source="published")
    grid = grid_of(datasets, models, strategies)
    replicates, seed = 300, 9
    result = rank_uncertainty(table, grid, replicates, seed)
    assert result.scheme == "dataset"

    draws = bootstrap_indices(len(datasets), replicates, seed)
    averages, firsts = [], []
    for row in draws:
        blocks = [
            {m: values[(datasets[i], s, m)] for m in models if (datasets[i], s, m) in values}
            for i in row
            for s in strategies
        ]
        average = loop_average(blocks)
        averages.append([average.get(m, np.nan) for m in models])
        firsts.append([loop_first(average).get(m, 0.0) for m in models])
    check_summary(result, models, np.array(averages), np.array(firsts))
    point = loop_average(
        [
            {m: values[(d, s, m)] for m in models if (d, s, m) in values}
            for d in datasets
            for s in strategies
        ]
    )
    got = result.frame.set_index("model")["average_rank"]
    assert {m: got[m] for m in models} == pytest.approx(point)


def test_image_level_agrees_with_a_loop_over_the_replicates(tmp_path):
    rng = np.random.default_rng(8)
    datasets, models, strategies = ["A", "B"], ["m1", "m2", "m3"], ["s1", "s2"]
    sizes = {"A": 5, "B": 7}
    stacks, files, values = {}, {}, {}
    for d in datasets:
        for s in strategies:
            for m in models:
                stack = rng.integers(0, 50, size=(sizes[d], 3, 3))
                stacks[(d, m, s)] = stack
                files[(d, m, s)] = write_run(tmp_path, d, m, s, stack)
                values[(d, s, m)] = dice(stack.sum(axis=0))
    table = cells(values)
    grid = grid_of(datasets, models, strategies)
    replicates, seed = 150, 4
    result = rank_uncertainty(table, grid, replicates, seed, confusions=files)
    assert result.scheme == "image"

    draws = {d: bootstrap_indices(sizes[d], replicates, dataset_seed(seed, d)) for d in datasets}
    averages, firsts = [], []
    for b in range(replicates):
        blocks = [
            {m: dice(stacks[(d, m, s)][draws[d][b]].sum(axis=0)) for m in models}
            for d in datasets
            for s in strategies
        ]
        average = loop_average(blocks)
        averages.append([average[m] for m in models])
        firsts.append([loop_first(average)[m] for m in models])
    check_summary(result, models, np.array(averages), np.array(firsts))
    # every dataset its own stream, shared by its runs
    assert dataset_seed(seed, "A") != dataset_seed(seed, "B")


def check_summary(result, models, averages: np.ndarray, firsts: np.ndarray) -> None:
    """The result's intervals and P(first) against replicate average ranks computed by loop."""
    frame = result.frame.set_index("model")
    for j, m in enumerate(models):
        defined = averages[:, j][~np.isnan(averages[:, j])]
        lower, upper = np.percentile(defined, [2.5, 97.5])
        assert frame.loc[m, "rank_lower"] == pytest.approx(lower), m
        assert frame.loc[m, "rank_upper"] == pytest.approx(upper), m
        assert frame.loc[m, "p_first"] == pytest.approx(firsts[:, j].mean()), m
        assert frame.loc[m, "defined"] == defined.size
        positions = [
            1 + sum(1 for a in row if not np.isnan(a) and a < row[j] - 1e-9)
            for row in averages
            if not np.isnan(row[j])
        ]
        assert frame.loc[m, "position_lower"] == np.percentile(positions, 2.5, method="lower")
        assert frame.loc[m, "position_upper"] == np.percentile(positions, 97.5, method="higher")


# ---- the scheme, and bad input ---------------------------------------------------------------


def test_the_scheme_follows_the_files_and_says_why(tmp_path):
    grid = grid_of(["D"], ["a", "b"], ["s"])
    ours = cells({("D", "s", "a"): 0.5, ("D", "s", "b"): 0.6})
    published = cells({("D", "s", "a"): 0.5, ("D", "s", "b"): 0.6}, source="published")
    merged = pd.concat([cells({("D", "s", "a"): 0.5}, "published"), cells({("D", "s", "b"): 0.6})])
    file_b = {("D", "b", "s"): tmp_path / "b.npz"}
    scheme, why = choose_scheme(published, grid, {})
    assert scheme == "dataset" and "means and CIs only" in why
    scheme, why = choose_scheme(merged, grid, file_b)
    assert scheme == "dataset" and "1 of the 2 cells are published" in why
    both = {**file_b, ("D", "a", "s"): tmp_path / "a.npz"}
    assert choose_scheme(ours, grid, both)[0] == "image"
    assert choose_scheme(ours, grid, both, "dataset")[0] == "dataset"
    with pytest.raises(ValueError, match=r"results/runs/D/a/s/confusion.npz"):
        choose_scheme(ours, grid, file_b)  # one of our runs lacks its file
    with pytest.raises(ValueError, match="without a confusion file"):
        choose_scheme(merged, grid, file_b, "image")
    with pytest.raises(ValueError, match="scheme 'boot'"):
        choose_scheme(ours, grid, both, "boot")


def test_runs_of_a_dataset_on_other_test_images_are_refused(tmp_path):
    rng = np.random.default_rng(2)
    a = write_run(tmp_path, "D", "a", "s", rng.integers(0, 9, size=(4, 2, 2)))
    b = write_run(tmp_path, "D", "b", "s", rng.integers(0, 9, size=(5, 2, 2)))
    table = cells({("D", "s", "a"): 0.5, ("D", "s", "b"): 0.6})
    with pytest.raises(ValueError, match=r"do not hold the same test images of D"):
        rank_uncertainty(
            table,
            grid_of(["D"], ["a", "b"], ["s"]),
            10,
            0,
            confusions={("D", "a", "s"): a, ("D", "b", "s"): b},
        )
    assert confusion_map([a, b]) == {("D", "a", "s"): a, ("D", "b", "s"): b}
    with pytest.raises(ValueError, match="two confusion files of run"):
        confusion_map([a, a])


# ---- the published files ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def published(registries) -> tuple[pd.DataFrame, Grid]:
    """The committed published files' tidy table and the paper grid."""
    from densebench.config import load_config
    from tests.conftest import REPO

    cfg = load_config(REPO / "config/config.yaml")
    names = {
        axis: {k: registries.axis(axis)[k]["display_name"] for k in cfg[axis]}
        for axis in ("models", "datasets", "strategies")
    }
    categories = {d: registries.datasets[d]["category"] for d in cfg["datasets"]}
    grid = Grid(cfg["datasets"], cfg["models"], cfg["strategies"], categories, names)
    parts = [
        import_published(PUBLISHED / f"{registries.strategies[s]['published']}.json", s)
        for s in grid.strategies
    ]
    return pd.concat(parts, ignore_index=True), grid


def test_published_leaderboard_in_seconds(published, tmp_path):
    table, grid = published
    start = time.perf_counter()
    paths = write_rank_uncertainty(table, grid, tmp_path / "rank_uncertainty", 1000, 42)
    seconds = time.perf_counter() - start
    assert seconds < 10, f"took {seconds:.1f} s"
    frame = pd.read_csv(paths[0])
    assert list(frame.columns) == list(UNCERTAINTY_COLUMNS)
    assert set(frame["scheme"]) == {"dataset"} and set(frame["n_blocks"]) == {90}
    assert set(frame["n_datasets"]) == {18} and set(frame["defined"]) == {1000}
    # the point values are the leaderboard's (the published Mean Dice has no ties)
    leaderboard = average_rank(table, grid).set_index("model")["overall"]
    assert frame.set_index("model")["average_rank"].to_dict() == pytest.approx(
        leaderboard.to_dict()
    )
    assert list(frame["model"]) == list(leaderboard.index)
    assert frame["p_first"].sum() == pytest.approx(1.0)
    assert (frame["rank_lower"] <= frame["rank_upper"]).all()
    assert (frame["position_lower"] <= frame["position_upper"]).all()
    md = paths[1].read_text()
    assert "Dataset-level bootstrap, 1000 bootstrap replicates (seed 42)" in md
    assert "not independent" in md and "means and CIs only" in md
    assert "\\caption{Rank uncertainty" in paths[2].read_text()
    again = rank_uncertainty(table, grid, 1000, 42).frame
    pd.testing.assert_frame_equal(again, frame, check_dtype=False)  # deterministic


def test_the_figure_draws_from_the_table(published, tmp_path):
    from matplotlib.figure import Figure

    from densebench.report.products import figure_tables, render_figure

    table, grid = published
    paths = write_rank_uncertainty(table, grid, tmp_path / "rank_uncertainty", 200, 1)
    tables = figure_tables("rank_uncertainty", [paths[0]])
    from densebench.report.figures.rank_intervals import build_rank_uncertainty

    fig = build_rank_uncertainty(table, grid, **tables)
    assert isinstance(fig, Figure)
    labels = [t.get_text() for t in fig.get_axes()[0].get_yticklabels()]
    assert labels[0] == "H-Optimus-0" and len(labels) == 17
    png, pdf = tmp_path / "r.png", tmp_path / "r.pdf"
    render_figure("rank_uncertainty", table, grid, png, pdf, **tables)
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="not a table it is drawn from"):
        figure_tables("rank_uncertainty", [tmp_path / "friedman.csv"])


def test_cli_writes_the_table(published, tmp_path, capsys):
    import json

    from densebench.atomic import write_table
    from densebench.cli import main
    from densebench.plan import grid_record

    table, grid = published
    write_table(table, tmp_path / "results.csv")
    stem = tmp_path / "tables/rank_uncertainty"
    args = ["rank-uncertainty", "--table", str(tmp_path / "results.csv")]
    args += ["--grid", json.dumps(grid_record(grid)), "--replicates", "50", "--out", str(stem)]
    assert main(args) == 0
    assert pd.read_csv(stem.with_suffix(".csv"))["replicates"].eq(50).all()


# ---- helpers -----------------------------------------------------------------------------------


def perfect_and_noisy(rng: np.random.Generator, n: int, noise: int) -> np.ndarray:
    """(n, 2, 2) per-image matrices: 100-ish correct pixels per class, ``noise`` confused."""
    stack = np.zeros((n, 2, 2), dtype=np.int64)
    stack[:, 0, 0] = rng.integers(80, 120, size=n)
    stack[:, 1, 1] = rng.integers(80, 120, size=n)
    stack[:, 0, 1] = noise
    stack[:, 1, 0] = noise // 2
    return stack


def write_run(root: Path, dataset: str, model: str, strategy: str, stack: np.ndarray) -> Path:
    """A run's confusion file with its run keys."""
    path = root / dataset / model / strategy / "confusion.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = [f"img{i}" for i in range(len(stack))]
    classes = [f"c{i}" for i in range(stack.shape[1])]
    keys = {"dataset": dataset, "model": model, "strategy": strategy}
    write_confusion(path, stack, ids, classes, keys)
    return path


def test_the_product_table_writes_it_and_names_the_remedy(published, tmp_path):
    from densebench.report import products

    assert "rank_uncertainty" in products.TABLE_KINDS
    assert "rank_uncertainty" not in products.SOURCE_TABLE_KINDS  # its own command
    assert products.FIGURES["rank_uncertainty"].tables == ("rank_uncertainty",)
    table, grid = published
    paths = products.write_report_table("rank_uncertainty", tmp_path / "ru", table, grid)
    assert [p.suffix for p in paths] == [".csv", ".md", ".tex"]
    ours = cells({("D", "s", "a"): 0.5, ("D", "s", "b"): 0.6})
    with pytest.raises(ValueError, match="resample whole datasets"):
        products.write_report_table(
            "rank_uncertainty", tmp_path / "x", ours, grid_of("D", "ab", "s")
        )


def test_a_model_on_one_dataset_has_a_rank_only_where_that_dataset_is_drawn():
    """merged: a new model of ours on its own dataset beside published models elsewhere."""
    values = {("P1", "s", "a"): 0.7, ("P1", "s", "b"): 0.6, ("P2", "s", "a"): 0.5}
    values |= {("P2", "s", "b"): 0.8, ("OURS", "s", "new"): 0.9, ("OURS", "s", "a"): 0.1}
    table = cells(values, source="published")
    table.loc[table["model"] == "new", "source"] = "reproduced"
    grid = grid_of(["P1", "P2", "OURS"], ["a", "b", "new"], ["s"])
    ours = {("OURS", "new", "s"): Path("results/runs/OURS/new/s/confusion.npz")}  # not read
    result = rank_uncertainty(table, grid, 500, 3, confusions=ours)
    assert result.scheme == "dataset" and "5 of the 6 cells are published" in result.reason
    result = result.frame.set_index("model")
    draws = bootstrap_indices(3, 500, 3)
    ours_drawn = (draws == 2).any(axis=1)  # OURS is the third dataset
    assert result.loc["new", "defined"] == ours_drawn.sum() < 500
    assert result.loc["b", "defined"] == (draws < 2).any(axis=1).sum() < 500  # b: P1, P2 only
    assert result.loc["a", "defined"] == 500
    assert result.loc["new", "source"] == "reproduced" and result.loc["new", "blocks"] == 1
    assert result["p_first"].sum() == pytest.approx(1.0)
