"""Tests for densebench.report.tables: per-(dataset, strategy), per-class, strategy comparison
and card tables in CSV, Markdown and LaTeX, with the best value bold and the second underlined."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densebench.evaluate.metrics import CLASS_METRICS, METRICS
from densebench.report.aggregate import COLUMNS, sort_table
from densebench.report.formats import emphasis, latex_escape
from densebench.report.grid import Grid
from densebench.report.published import import_published
from densebench.report.sources import read_tidy
from densebench.report.tables import (
    class_tables,
    strategy_comparison,
    strategy_tables,
    write_cards,
    write_strategy_comparison,
)
from tests.conftest import FIXTURES

DATASETS = ("GlaS", "BCSS", "kumar")
STRATEGIES = ("frozen", "lora", "cnn_adapter")
MODELS = ("uni_v1", "hoptimus_0", "virchow_v1", "phikon")
GRID = Grid(
    DATASETS,
    MODELS,
    STRATEGIES,
    categories={"GlaS": "gland", "BCSS": "tissue", "kumar": "nuclear"},
    names={
        "models": {"uni_v1": "UNI", "hoptimus_0": "H-Optimus-0"},
        "datasets": {"kumar": "Kumar"},
        "strategies": {"cnn_adapter": "CNN adapter", "lora": "LoRA"},
    },
)


def make_table(seed: int = 0) -> pd.DataFrame:
    """Synthetic tidy table: every dataset x strategy x model x metric, distinct values."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in DATASETS:
        for strategy in STRATEGIES:
            for model in MODELS:
                for metric in METRICS:
                    mean = float(rng.uniform(0.2, 0.9))
                    rows.append(
                        {
                            "dataset": dataset,
                            "model": model,
                            "strategy": strategy,
                            "metric": metric,
                            "point": mean,
                            "boot_mean": mean,
                            "ci_lower": mean - 0.03,
                            "ci_upper": mean + 0.031,
                            "boot_std": 0.01,
                            "n_images": 10,
                            "replicates": 1000,
                            "seed": 42,
                            "source": "reproduced",
                        }
                    )
    return sort_table(pd.DataFrame(rows, columns=list(COLUMNS)))


def with_class_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The table plus per-class rows (class 0 and 1 of every cell), as `densebench score` writes."""
    head = table[table["metric"] == "mIoU"]
    extra = [
        head.assign(
            metric=name,
            **{"class": k, "class_name": f"c{k}", "boot_mean": head["boot_mean"] * (k + 1) / 3},
        )
        for k in (0, 1)
        for name in CLASS_METRICS
    ]
    return sort_table(pd.concat([table, *extra], ignore_index=True))


def md_cells(line: str) -> list[str]:
    """The cells of a Markdown table row."""
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_emphasis_ranks_unrounded_values_and_shares_ties():
    assert emphasis([0.8124, 0.8126, float("nan"), 0.5]) == ["second", "best", "", ""]
    assert emphasis([0.9, 0.9, 0.1]) == ["best", "best", "second"]
    assert emphasis([float("nan")]) == [""]


def test_latex_escape():
    assert latex_escape("a_b & 50% #1 {x}") == r"a\_b \& 50\% \#1 \{x\}"


def test_strategy_tables_files_rows_order_and_marks(tmp_path: Path) -> None:
    table = make_table()
    paths = strategy_tables(table, GRID, tmp_path)
    assert len(paths) == 3 * len(DATASETS) * len(STRATEGIES)
    wide = pd.read_csv(tmp_path / "BCSS" / "lora.csv")
    expected = ["model", "model_name"]
    for metric in METRICS:
        expected += [metric, f"{metric}_ci_lower", f"{metric}_ci_upper"]
    assert list(wide.columns) == [*expected, "n_images", "unreliable"]
    part = table[(table.dataset == "BCSS") & (table.strategy == "lora")]
    dice = part[part.metric == "Mean_Dice"].sort_values("boot_mean", ascending=False)
    assert wide["model"].tolist() == dice["model"].tolist()  # by Mean_Dice, descending
    assert wide["Mean_Dice"].tolist() == dice["boot_mean"].tolist()
    lines = (tmp_path / "BCSS" / "lora.md").read_text().splitlines()
    assert lines[0] == "# BCSS — LoRA"
    assert md_cells(lines[2]) == ["Model", *METRICS]
    body = [md_cells(line) for line in lines[4 : 4 + len(MODELS)]]
    miou = part[part.metric == "mIoU"].set_index("model")
    best, second = miou["boot_mean"].sort_values(ascending=False).index[:2]
    column = 1 + METRICS.index("mIoU")
    by_name = {row[0]: row[column] for row in body}
    name = {m: GRID.name("models", m) for m in MODELS}
    cell = miou.loc[best]
    assert by_name[name[best]] == (
        f"**{cell.boot_mean:.3f} [{cell.ci_lower:.3f}, {cell.ci_upper:.3f}]**"
    )
    assert by_name[name[second]].startswith("<u>") and by_name[name[second]].endswith("</u>")
    others = [v for k, v in by_name.items() if k not in (name[best], name[second])]
    assert not any(v.startswith(("**", "<u>")) for v in others)
    tex = (tmp_path / "BCSS" / "lora.tex").read_text()
    assert tex.count("\\toprule") == tex.count("\\bottomrule") == 1
    assert tex.count("\\textbf{") == len(METRICS) and tex.count("\\underline{") == len(METRICS)
    assert "H-Optimus-0" in tex and "virchow\\_v1" in tex


def test_only_grid_cells_and_headline_rows_enter(tmp_path: Path) -> None:
    table = with_class_rows(make_table())
    csv = tmp_path / "results.csv"
    table.to_csv(csv, index=False)
    small = Grid(["GlaS"], ["uni_v1", "phikon"], ["frozen"], {"GlaS": "gland"})
    paths = strategy_tables(read_tidy(csv), small, tmp_path / "out")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in paths] == [
        "GlaS/frozen.csv",
        "GlaS/frozen.md",
        "GlaS/frozen.tex",
    ]
    assert sorted(pd.read_csv(paths[0])["model"]) == ["phikon", "uni_v1"]


def test_class_tables_show_dice_per_class(tmp_path: Path) -> None:
    table = with_class_rows(make_table())
    paths = class_tables(table, GRID, tmp_path)
    assert len(paths) == 3 * len(DATASETS) * len(STRATEGIES)
    long = pd.read_csv(tmp_path / "kumar" / "frozen.csv")
    assert set(long["metric"]) == set(CLASS_METRICS) and set(long["class"]) == {0, 1}
    lines = (tmp_path / "kumar" / "frozen.md").read_text().splitlines()
    assert md_cells(lines[2]) == ["Model", "c0", "c1"]
    rows = table[
        (table.dataset == "kumar") & (table.strategy == "frozen") & (table.metric == "Dice")
    ]
    uni = rows[(rows.model == "uni_v1") & (rows["class"] == 1)].iloc[0]
    uni_line = next(md_cells(line) for line in lines if line.startswith("| UNI"))
    assert uni_line[2].strip("*<u>/").startswith(f"{uni.boot_mean:.3f} [")
    assert class_tables(make_table(), GRID, tmp_path / "none") == []  # published: no classes


def test_strategy_comparison_counts_and_means() -> None:
    table = make_table()
    frame = strategy_comparison(table, GRID).set_index("strategy")
    dice = table[table.metric == "Mean_Dice"]
    for strategy in STRATEGIES:
        part = dice[dice.strategy == strategy]
        assert frame.loc[strategy, "overall"] == pytest.approx(part.boot_mean.mean())
        gland = part[part.dataset == "GlaS"].boot_mean.mean()
        assert frame.loc[strategy, "gland"] == pytest.approx(gland)
    winners = dice.loc[dice.groupby(["dataset", "model"])["boot_mean"].idxmax(), "strategy"]
    assert frame["best_count"].to_dict() == {s: int((winners == s).sum()) for s in STRATEGIES}
    assert frame["best_count"].sum() == len(DATASETS) * len(MODELS)
    assert frame["best_share"].sum() == pytest.approx(1.0)


def test_strategy_comparison_on_the_published_files(tmp_path: Path, registries) -> None:
    strategies = ["frozen", "lora", "dora", "cnn_adapter", "transformer_adapter"]
    parts = [
        import_published(
            FIXTURES / "published" / f"{registries.strategies[s]['published']}.json", s
        )
        for s in strategies
    ]
    table = pd.concat(parts, ignore_index=True)
    datasets = sorted(set(table["dataset"]))
    grid = Grid(
        datasets,
        sorted(set(table["model"])),
        strategies,
        {d: registries.datasets[d]["category"] for d in datasets},
    )
    paths = write_strategy_comparison(table, grid, tmp_path / "strategy_comparison")
    frame = pd.read_csv(paths[0]).set_index("strategy")
    # independently: the mean of every published frozen Mean_Dice mean in the JSON
    data = json.loads((FIXTURES / "published/frozen.json").read_text())
    means = [m["Mean_Dice"]["mean"] for models in data.values() for m in models.values()]
    assert frame.loc["frozen", "overall"] == pytest.approx(np.mean(means))
    assert frame.loc["frozen", "cells"] == len(means) == 18 * 17
    # the site's method comparison and the protocol's strategy x category means (§6)
    overall = {"cnn_adapter": 0.7010, "dora": 0.6733, "lora": 0.6692, "frozen": 0.6590}
    assert {s: round(frame.loc[s, "overall"], 4) for s in overall} == overall
    assert round(frame.loc["transformer_adapter", "overall"], 4) == 0.6573
    nuclear = [round(frame.loc[s, "nuclear"], 3) for s in strategies]
    assert nuclear == [0.592, 0.615, 0.617, 0.656, 0.593]
    wins = {"frozen": 12, "lora": 44, "dora": 63, "cnn_adapter": 180, "transformer_adapter": 7}
    assert frame["best_count"].to_dict() == wins


def test_cards_from_registry_records(tmp_path: Path, registries) -> None:
    records = {m: registries.models[m] for m in ("uni_v1", "hoptimus_0")}
    paths = write_cards(records, "models", tmp_path / "model_cards")
    frame = pd.read_csv(paths[0]).set_index("key")
    assert frame.loc["uni_v1", "params_m"] == registries.models["uni_v1"]["params_m"]
    assert frame.loc["hoptimus_0", "display_name"] == "H-Optimus-0"
    datasets = {d: registries.datasets[d] for d in ("GlaS", "PanNuke")}
    paths = write_cards(datasets, "datasets", tmp_path / "dataset_cards")
    frame = pd.read_csv(paths[0]).set_index("key")
    assert frame.loc["PanNuke", "num_classes"] == len(registries.datasets["PanNuke"]["classes"])
    md = paths[1].read_text()
    assert "| GlaS | gland |" in md and "Table B1" in md
