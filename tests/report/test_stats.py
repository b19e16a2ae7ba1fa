"""Tests for densebench.report.stats (Friedman/Nemenyi over models, its CD diagram) and .paired
(the paired bootstrap).

Known answers: scipy.stats.friedmanchisquare on the same matrix, a hand-computed Friedman
statistic with ties, Demšar's (2006) Table 5a q_0.05 values and his CD formula, and the
committed published files (tests/fixtures/published/) read directly from their JSON.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from densebench.evaluate.bootstrap import score_run
from densebench.evaluate.confusion import write_confusion
from densebench.report import paired, stats
from densebench.report.figures.cd_diagram import build_cd_diagram
from densebench.report.formats import latex_escape
from densebench.report.grid import Grid
from densebench.report.published import import_published
from tests.conftest import FIXTURES, REPO

PUBLISHED = FIXTURES / "published"

# Demšar 2006, Table 5(a): critical values q_0.05 of the two-tailed Nemenyi test (3 decimals,
# not all rounded the same way: 2.343 for 2.3437, 2.949 for 2.9483).
DEMSAR_Q05 = {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 6: 2.850, 7: 2.949, 8: 3.031, 10: 3.164}


@pytest.fixture(scope="module")
def paper_grid(registries) -> Grid:
    """The paper grid (config/config.yaml) with the registries' display names."""
    from densebench.config import load_config

    cfg = load_config(REPO / "config/config.yaml")
    names = {
        axis: {k: registries.axis(axis)[k]["display_name"] for k in cfg[axis]}
        for axis in ("models", "datasets", "strategies")
    }
    return Grid(cfg["datasets"], cfg["models"], cfg["strategies"], names=names)


def _published_path(registries, strategy: str):
    """The committed published file of a strategy (its registry's ``published`` stem)."""
    return PUBLISHED / f"{registries.strategies[strategy]['published']}.json"


@pytest.fixture(scope="module")
def published(registries, paper_grid) -> pd.DataFrame:
    """The tidy table of the five committed published files."""
    parts = [import_published(_published_path(registries, s), s) for s in paper_grid.strategies]
    return pd.concat(parts, ignore_index=True)


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


def _matrix_table(matrix: np.ndarray, models: list[str]) -> tuple[pd.DataFrame, Grid]:
    """A table and grid with one strategy, one dataset per row of ``matrix`` (blocks x models)."""
    datasets = [f"D{i}" for i in range(matrix.shape[0])]
    values = {
        (d, "s", m): float(matrix[i, j])
        for i, d in enumerate(datasets)
        for j, m in enumerate(models)
    }
    return _cells(values), Grid(datasets, models, ["s"])


# ---- Friedman -------------------------------------------------------------------------------


def test_statistic_equals_scipy_on_a_random_matrix():
    rng = np.random.default_rng(3)
    matrix = rng.uniform(0.3, 0.9, size=(12, 5)).round(2)  # rounding makes some ties
    table, grid = _matrix_table(matrix, ["a", "b", "c", "d", "e"])
    result = stats.friedman_test(table, grid)
    expected = sps.friedmanchisquare(*matrix.T)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert (result.k, result.n_blocks, result.dropped_blocks) == (5, 12, 0)


def test_hand_computed_friedman_with_ties():
    # 3 blocks x 4 models; ranks (1 = best): [1, 2.5, 2.5, 4], [1.5, 1.5, 3, 4], [2, 3, 1, 4].
    matrix = np.array([[0.9, 0.8, 0.8, 0.7], [0.9, 0.9, 0.7, 0.6], [0.8, 0.7, 0.9, 0.6]])
    table, grid = _matrix_table(matrix, ["A", "B", "C", "D"])
    ranks = stats.block_ranks(matrix)
    assert ranks.tolist() == [[1, 2.5, 2.5, 4], [1.5, 1.5, 3, 4], [2, 3, 1, 4]]
    result = stats.friedman_test(table, grid)
    # Rank sums 4.5, 7, 6.5, 12: 12 / (3*4*5) * 255.5 - 3*3*5 = 6.1; two ties of 2 give
    # C = 1 - 12 / (3*4*15) = 14/15, so chi2_F = 6.1 * 15/14 = 91.5 / 14.
    chi2 = 91.5 / 14
    assert result.statistic == pytest.approx(chi2, rel=1e-12)
    # chi-square sf with 3 df: erfc(sqrt(x/2)) + sqrt(2x/pi) exp(-x/2).
    p = math.erfc(math.sqrt(chi2 / 2)) + math.sqrt(2 * chi2 / math.pi) * math.exp(-chi2 / 2)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.iman_davenport == pytest.approx(2 * chi2 / (9 - chi2), rel=1e-12)
    assert result.iman_davenport_df == (3, 6)
    assert result.iman_davenport_p == pytest.approx(sps.f.sf(2 * chi2 / (9 - chi2), 3, 6))
    assert result.average_ranks == {"A": 1.5, "C": 13 / 6, "B": 7 / 3, "D": 4.0}
    assert list(result.average_ranks) == ["A", "C", "B", "D"]  # best first


@pytest.mark.parametrize(("k", "q"), sorted(DEMSAR_Q05.items()))
def test_nemenyi_q_is_demsar_table(k, q):
    assert stats.nemenyi_q(k) == pytest.approx(q, abs=1e-3)  # the table has 3 decimals


def test_cd_for_four_models_and_ten_blocks_is_the_textbook_value():
    assert stats.critical_difference(4, 10) == pytest.approx(2.569 * math.sqrt(20 / 60), rel=2e-4)
    rng = np.random.default_rng(0)
    table, grid = _matrix_table(rng.uniform(size=(10, 4)), ["a", "b", "c", "d"])
    result = stats.friedman_test(table, grid)
    assert result.cd == pytest.approx(1.4832, abs=1e-4)
    assert result.alpha == 0.05


def test_cliques_of_a_hand_made_rank_vector():
    ranks = {"A": 1.0, "B": 1.5, "C": 2.9, "D": 3.0, "E": 4.8}
    # from A: B (0.5) but not C (1.9); from B: C (1.4), not D (1.5 = CD is significant);
    # from C: D; D alone is inside (C, D); E is 1.8 from D: a clique alone.
    assert stats.cliques(ranks, 1.5) == (("A", "B"), ("B", "C"), ("C", "D"), ("E",))
    assert stats.cliques(ranks, 10.0) == (("A", "B", "C", "D", "E"),)
    assert stats.cliques(ranks, 0.1) == tuple((m,) for m in ranks)


def test_groups_and_behind_best_follow_the_cliques():
    matrix = np.array([[0.9, 0.8, 0.7, 0.1]] * 10)  # identical blocks: ranks 1, 2, 3, 4
    table, grid = _matrix_table(matrix, ["a", "b", "c", "d"])
    result = stats.friedman_test(table, grid)  # CD = 1.483
    assert result.cliques == (("a", "b"), ("b", "c"), ("c", "d"))
    frame = stats.friedman_table(result, grid).set_index("model")
    assert frame["groups"].to_dict() == {"a": "a", "b": "ab", "c": "bc", "d": "c"}
    assert frame["behind_best"].to_dict() == {"a": False, "b": False, "c": True, "d": True}
    assert frame["diff_to_best"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert result.iman_davenport == math.inf and result.iman_davenport_p == 0.0


def test_incomplete_blocks_are_dropped_and_counted():
    values = {
        (d, s, m): 0.5 + 0.1 * j for d in "DE" for s in ("s1", "s2") for j, m in enumerate("abc")
    }
    del values[("D", "s2", "b")]
    values[("E", "s1", "zz")] = 0.99  # outside the grid: no effect
    table = _cells(values)
    grid = Grid(["D", "E", "F"], ["a", "b", "c"], ["s1", "s2"])
    result = stats.friedman_test(table, grid)
    assert (result.n_blocks, result.dropped_blocks) == (3, 1)
    assert result.incomplete == (("D", "s2"),)
    assert "1 incomplete block(s) dropped" in stats.friedman_summary(result)


def test_not_applicable_reasons(tmp_path):
    one = Grid(["D"], ["a"], ["s"])
    table = _cells({("D", "s", "a"): 0.5, ("D", "s", "b"): 0.4})
    assert "at least 2 models" in stats.friedman_applicable(table, one)
    gappy = Grid(["D"], ["a", "c"], ["s"])
    assert "no (dataset, strategy) block" in stats.friedman_applicable(table, gappy)
    with pytest.raises(ValueError, match="every one of the 2 models"):
        stats.friedman_test(table, gappy)
    # the report still renders: the files and the diagram say why
    paths = stats.write_friedman(table, one, tmp_path)
    assert (
        "Not applicable: " in paths[1].read_text() and "at least 2 models" in paths[1].read_text()
    )
    fig = build_cd_diagram(table, one)
    assert any("at least 2 models" in t.get_text() for t in fig.texts)
    assert stats.friedman_applicable(table, Grid(["D"], ["a", "b"], ["s"])) is None


def test_published_files_all_blocks_equal_scipy(published, paper_grid, registries):
    result = stats.friedman_test(published, paper_grid)
    assert (result.k, result.n_blocks, result.dropped_blocks) == (17, 90, 0)
    # Independently from the JSON: one row per (strategy, dataset), one column per model.
    rows = []
    for strategy in paper_grid.strategies:
        data = json.loads(_published_path(registries, strategy).read_text(encoding="utf-8"))
        for dataset in paper_grid.datasets:
            rows.append([data[dataset][m]["Mean_Dice"]["mean"] for m in paper_grid.models])
    matrix = np.array(rows)
    assert matrix.shape == (90, 17)
    expected = sps.friedmanchisquare(*matrix.T)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)
    # No ties in the published Mean_Dice: the average ranks are the site's (protocol §6).
    assert round(result.average_ranks["hoptimus_0"], 2) == 4.08
    assert result.best == "hoptimus_0"
    assert result.cd == pytest.approx(stats.nemenyi_q(17) * math.sqrt(17 * 18 / 540))


def test_cd_diagram_of_the_published_table_labels_every_model(published, paper_grid):
    fig = build_cd_diagram(published, paper_grid)
    labels = [t for t in fig.axes[0].texts if (t.get_gid() or "").startswith("model:")]
    assert sorted(t.get_gid() for t in labels) == sorted(f"model:{m}" for m in paper_grid.models)
    texts = [t.get_text() for t in labels]
    assert any(t.startswith("H-Optimus-0 (4.08)") for t in texts)
    assert fig.get_size_inches()[0] == pytest.approx(7.0)


def test_write_friedman_files(tmp_path):
    matrix = np.array([[0.9, 0.8, 0.7], [0.8, 0.9, 0.7], [0.9, 0.7, 0.8], [0.9, 0.8, 0.6]])
    table, grid = _matrix_table(matrix, ["a_1", "b", "c"])
    grid = Grid(grid.datasets, grid.models, grid.strategies, names={"models": {"a_1": "A&B_1%"}})
    paths = stats.write_friedman(table, grid, tmp_path)
    assert [p.name for p in paths] == list(stats.FRIEDMAN_FILES)
    csv = pd.read_csv(tmp_path / "friedman.csv")
    assert csv["model"].tolist() == ["a_1", "b", "c"]
    assert csv["model_name"].tolist() == ["A&B_1%", "b", "c"]
    assert csv["n_blocks"].tolist() == [4] * 3
    md = (tmp_path / "friedman.md").read_text()
    assert "chi2_F = " in md and "(df = 2)" in md and "N = 4" in md and "CD = " in md
    assert "| 1 | A&B_1% | 1.25 |" in md
    tex = (tmp_path / "friedman.tex").read_text()
    assert all(rule in tex for rule in (r"\toprule", r"\midrule", r"\bottomrule"))
    assert r"A\&B\_1\%" in tex
    assert latex_escape("x_{1}^2 ~ \\ #$\u2020") == (
        r"x\_\{1\}\textasciicircum{}2 \textasciitilde{} \textbackslash{} \#\$"
        r"\textsuperscript{\dag}"
    )
    from densebench.report.figures import save_figure

    figs = [tmp_path / "critical_difference.png", tmp_path / "critical_difference.pdf"]
    save_figure(build_cd_diagram(table, grid), *figs)
    assert all(p.stat().st_size for p in figs)


# ---- Paired bootstrap -----------------------------------------------------------------------

N_IMAGES, CLASSES, REPLICATES, SEED = 16, 3, 200, 7


def _matrices(seed: int) -> np.ndarray:
    """(N, C, C) per-image confusion matrices with every cell populated."""
    rng = np.random.default_rng(seed)
    m = rng.integers(5, 40, size=(N_IMAGES, CLASSES, CLASSES))
    m[:, np.arange(CLASSES), np.arange(CLASSES)] += 200
    return m.astype(np.int64)


def _better(m: np.ndarray) -> np.ndarray:
    """A strictly better copy: in every image one off-diagonal pixel of each row becomes TP."""
    out = m.copy()
    for c in range(CLASSES):
        other = (c + 1) % CLASSES
        out[:, c, other] -= 1
        out[:, c, c] += 1
    return out


def _write(tmp_path, model: str, strategy: str, matrices: np.ndarray, ids=None):
    path = tmp_path / f"{model}__{strategy}.npz"
    ids = ids if ids is not None else [f"img{i:02d}" for i in range(len(matrices))]
    keys = {"dataset": "D", "model": model, "strategy": strategy}
    write_confusion(path, matrices, ids, [f"c{c}" for c in range(CLASSES)], keys)
    return path


def test_replicate_mean_is_the_boot_mean_of_score_run(tmp_path):
    path = _write(tmp_path, "a", "s", _matrices(1))
    for metric in ("Mean_Dice", "mIoU"):
        ids, values = paired.replicate_values(path, REPLICATES, SEED, metric)
        assert values.shape == (REPLICATES,) and list(ids) == [f"img{i:02d}" for i in range(16)]
        scored = score_run(path, {"dataset": "D"}, REPLICATES, SEED)
        row = scored[(scored["metric"] == metric) & scored["class"].isna()].iloc[0]
        assert float(np.mean(values)) == row["boot_mean"]
    _, standard = paired.replicate_values(path, REPLICATES, SEED, definitions="standard")
    scored = score_run(path, {"dataset": "D"}, REPLICATES, SEED, definitions="standard")
    assert (
        float(np.mean(standard)) == scored.loc[scored["metric"] == "Mean_Dice", "boot_mean"].iloc[0]
    )


def test_a_run_against_itself_differs_by_zero(tmp_path):
    m = _matrices(1)
    runs = {("a", "s"): _write(tmp_path, "a", "s", m), ("b", "s"): _write(tmp_path, "b", "s", m)}
    frame = paired.paired_bootstrap(runs, "D", REPLICATES, SEED)
    row = frame.iloc[0]
    assert (row.comparison, row.a_model, row.b_model) == ("models", "a", "b")
    assert (row.mean_diff, row.ci_lower, row.ci_upper, row.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert not row.significant
    assert (row.n_images, row.replicates, row.seed) == (N_IMAGES, REPLICATES, SEED)


def test_a_strictly_better_copy_has_a_positive_interval(tmp_path):
    m = _matrices(2)
    runs = {
        ("a", "s1"): _write(tmp_path, "a", "s1", _better(m)),
        ("b", "s1"): _write(tmp_path, "b", "s1", m),
        ("a", "s2"): _write(tmp_path, "a", "s2", m),
        ("b", "s2"): _write(tmp_path, "b", "s2", _matrices(3)),
    }
    frame = paired.paired_bootstrap(runs, "D", REPLICATES, SEED)
    assert list(frame.columns) == list(paired.PAIRED_COLUMNS)
    pairs = list(
        zip(
            frame.comparison,
            frame.a_model,
            frame.a_strategy,
            frame.b_model,
            frame.b_strategy,
            strict=True,
        )
    )
    assert pairs == [
        ("models", "a", "s1", "b", "s1"),
        ("models", "a", "s2", "b", "s2"),
        ("strategies", "a", "s1", "a", "s2"),
        ("strategies", "b", "s1", "b", "s2"),
    ]
    for row in frame.iloc[[0, 2]].itertuples():  # the better copy (a, s1) against m
        assert row.ci_lower > 0 and row.mean_diff > 0 and row.significant
        assert row.p_value == 0.0  # no replicate where the copy is not better
    # Listed first, the worse run is a: the difference a - b is negative.
    worse_first = {k: runs[k] for k in [("b", "s1"), ("a", "s1")]}
    flipped = paired.paired_bootstrap(worse_first, "D", REPLICATES, SEED).iloc[0]
    assert flipped.a_model == "b" and flipped.ci_upper < 0 and flipped.significant
    grid = Grid(["D"], ["a", "b"], ["s1", "s2"])
    ordered = paired.paired_bootstrap(worse_first, "D", REPLICATES, SEED, grid=grid)
    assert ordered.iloc[0].a_model == "a"  # a grid orders the pairs


def test_mismatched_sample_ids_raise_naming_both_files(tmp_path):
    m = _matrices(1)
    a = _write(tmp_path, "a", "s", m)
    ids = [f"img{i:02d}" for i in range(N_IMAGES)][::-1]
    b = _write(tmp_path, "b", "s", m, ids=ids)
    with pytest.raises(ValueError, match=r"b__s\.npz and .*a__s\.npz"):
        paired.paired_bootstrap({("a", "s"): a, ("b", "s"): b}, "D", REPLICATES, SEED)
    short = _write(tmp_path, "c", "s", m[:-1])
    with pytest.raises(ValueError, match="same test images"):
        paired.paired_bootstrap({("a", "s"): a, ("c", "s"): short}, "D", REPLICATES, SEED)
    with pytest.raises(ValueError, match="given as"):
        paired.paired_bootstrap({("x", "s"): a}, "D", REPLICATES, SEED)


def test_holm_adjustment():
    assert paired.holm([0.01, 0.04, 0.03, math.nan]).tolist()[:3] == pytest.approx(
        [0.03, 0.06, 0.06]
    )
    assert math.isnan(paired.holm([0.01, math.nan])[1])


def test_files_and_write_paired(tmp_path):
    m = _matrices(4)
    paths = [
        _write(tmp_path, "a", "s1", _better(m)),
        _write(tmp_path, "b", "s1", m),
        _write(tmp_path, "a", "s2", m),
    ]
    grid = Grid(["D"], ["a", "b"], ["s1", "s2"], names={"models": {"a": "Model|A"}})
    frame = paired.paired_bootstrap_files(paths, REPLICATES, SEED, grid=grid)
    assert len(frame) == 2 and set(frame.dataset) == {"D"}
    csv, md = paired.write_paired(frame, grid, tmp_path / "paired.csv", tmp_path / "paired.md")
    written = pd.read_csv(csv)
    assert {"a_model", "a_model_name", "b_strategy_name", "dataset_name"} <= set(written.columns)
    assert written["a_model_name"].tolist() == ["Model|A", "Model|A"]
    text = md.read_text()
    assert "### Models within each strategy" in text and "### Strategies within each model" in text
    assert "Model\\|A" in text
