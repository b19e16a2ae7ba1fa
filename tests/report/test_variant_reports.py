"""Products of variant runs and of the UNet baseline (densebench.report.variants), on
hand-made scores with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from densebench.report.aggregate import COLUMNS, tidy
from densebench.report.grid import Grid
from densebench.report.variants import (
    baseline_table,
    build_baseline_figure,
    build_input_size,
    read_variant_scores,
    seed_spread,
    write_seed_spread,
)


def _rows(values: dict[tuple[str, str, str, str], float]) -> list[dict]:
    return [
        {"dataset": d, "model": m, "strategy": s, "variant": v, "metric": "Mean_Dice",
         "class": pd.NA, "class_name": pd.NA, "point": x, "boot_mean": x, "ci_lower": x - 0.05,
         "ci_upper": x + 0.05, "boot_std": 0.02, "n_images": 9, "replicates": 100, "seed": 42}
        for (d, m, s, v), x in values.items()
    ]  # fmt: skip


def scores(tmp_path, values) -> pd.DataFrame:
    """Scores as `densebench score --variants` writes them, read back."""
    path = tmp_path / "scores.csv"
    pd.DataFrame(_rows(values)).to_csv(path, index=False)
    return read_variant_scores(path)


GRID = Grid(["D1", "D2"], ["a", "b"], ["frozen", "lora"], names={"models": {"u": "UNet"}})


def test_seed_spread_puts_the_seeds_sd_beside_the_cells_own_ci(tmp_path):
    table = scores(tmp_path, {
        ("D1", "a", "frozen", ""): 0.6, ("D1", "a", "frozen", "seed7"): 0.5,
        ("D1", "a", "frozen", "seed13"): 0.7, ("D1", "b", "frozen", ""): 0.4,
        ("D1", "a", "frozen", "resize512"): 0.9,  # another analysis' run: not a seed
    })  # fmt: skip
    spread = seed_spread(table, GRID)
    a = spread[spread["model"] == "a"].iloc[0]
    assert a["seeds"] == 3 and a["boot_mean"] == 0.6
    assert a["seeds_sd"] == pytest.approx(0.1) and a["seeds_mean"] == pytest.approx(0.6)
    assert (a["seeds_min"], a["seeds_max"]) == (0.5, 0.7)
    assert a["ci_width"] == pytest.approx(0.1) and a["seeds_range"] == pytest.approx(0.2)
    b = spread[spread["model"] == "b"].iloc[0]
    assert b["seeds"] == 1 and math.isnan(b["seeds_sd"])
    paths = write_seed_spread(table, GRID, tmp_path / "seed_spread")
    assert "0.600 [0.550, 0.650]" in paths[1].read_text() and "| n/a |" in paths[1].read_text()


def test_seed_spread_needs_the_cells_own_run(tmp_path):
    table = scores(tmp_path, {("D1", "a", "frozen", "seed7"): 0.5})
    with pytest.raises(ValueError, match=r"no run of train\.seed for D1/a/frozen"):
        seed_spread(table, GRID)


def test_scores_without_variants_are_refused_with_the_remedy(tmp_path):
    path = tmp_path / "plain.csv"
    pd.DataFrame(_rows({("D1", "a", "frozen", ""): 0.5})).drop(columns="variant").to_csv(path)
    with pytest.raises(ValueError, match="score --variants"):
        read_variant_scores(path)


def test_input_size_figure_has_a_panel_per_dataset_with_sizes_as_ticks(tmp_path):
    values = {("D1", "a", "frozen", f"resize{s}"): 0.5 + s / 1e4 for s in (256, 1024, 4096)}
    values |= {("D2", "b", "frozen", "resize512"): 0.3, ("D2", "b", "frozen", ""): 0.1}
    fig = build_input_size(scores(tmp_path, values), GRID)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["D1", "D2"]
    assert [t.get_text() for t in panels[0].get_xticklabels()] == ["256", "1024", "4096"]
    line = panels[0].get_lines()[0]
    assert list(line.get_xdata()) == [256, 1024, 4096]  # the cell's own run is not drawn


def _pfms(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    rows = [{k: v for k, v in r.items() if k != "variant"} | {"source": "published"}
            for r in _rows({(*key, ""): x for key, x in values.items()})]  # fmt: skip
    return tidy(pd.DataFrame(rows, columns=list(COLUMNS)))


def test_baseline_table_counts_the_pfms_it_beats(tmp_path):
    pfms = _pfms({("D1", "a", "frozen"): 0.5, ("D1", "b", "frozen"): 0.7,
                  ("D1", "a", "lora"): 0.8, ("D2", "a", "frozen"): 0.2})  # fmt: skip
    unet = scores(tmp_path, {("D1", "u", "full", ""): 0.6, ("D2", "u", "full", ""): 0.3})
    table = baseline_table(unet, pfms, GRID).set_index("dataset")
    assert table.loc["D1", "frozen_best"] == 0.7 and table.loc["D1", "frozen_best_model"] == "b"
    assert table.loc["D1", "frozen_median"] == pytest.approx(0.6)
    assert table.loc["D1", "frozen_beaten"] == 1 and table.loc["D1", "lora_beaten"] == 0
    assert table.loc["D2", "frozen_beaten"] == 1 and table.loc["D2", "lora_pfms"] == 0
    fig = build_baseline_figure(unet, pfms, GRID.within(pfms))
    d1 = next(ax for ax in fig.axes if ax.get_title() == "D1")
    dashed = [line for line in d1.get_lines() if line.get_linestyle() == "--"]
    assert [line.get_ydata()[0] for line in dashed] == [0.6]
