"""Tests for densebench.report.tables and .figures: per-strategy tables and Figure 3."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import COLUMNS, sort_table
from densebench.report.figures import FIG3_DPI, FIG3_SIZE_IN, build_figure3, figure3
from densebench.report.tables import strategy_tables

DATASETS = ("GlaS", "BCSS", "kumar")
STRATEGIES = ("frozen", "lora", "cnn_adapter")
MODELS = ("uni_v1", "hoptimus_0", "virchow_v1", "phikon")
NAMES = {
    "models": {"uni_v1": "UNI", "hoptimus_0": "H-Optimus-0"},
    "datasets": {"kumar": "Kumar"},
    "strategies": {"cnn_adapter": "CNN adapter", "lora": "LoRA"},
}


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


def _cell_value(table: pd.DataFrame, dataset: str, strategy: str, model: str, metric: str):
    sel = (
        (table["dataset"] == dataset)
        & (table["strategy"] == strategy)
        & (table["model"] == model)
        & (table["metric"] == metric)
    )
    return table.loc[sel].iloc[0]


def test_strategy_tables_files_rows_and_order(tmp_path: Path) -> None:
    table = make_table()
    paths = strategy_tables(table, tmp_path / "tables", NAMES)
    assert len(paths) == 2 * len(DATASETS) * len(STRATEGIES)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    csv = tmp_path / "tables" / "BCSS" / "lora.csv"
    assert csv in paths and csv.with_suffix(".md") in paths
    wide = pd.read_csv(csv)
    expected_cols = ["model", "model_name"]
    for metric in METRICS:
        expected_cols += [metric, f"{metric}_ci_lower", f"{metric}_ci_upper"]
    assert list(wide.columns) == expected_cols
    assert sorted(wide["model"]) == sorted(MODELS)
    dice = wide["Mean_Dice"].to_numpy()
    assert (np.diff(dice) < 0).all()  # sorted by Mean_Dice, descending
    part = table[(table.dataset == "BCSS") & (table.strategy == "lora")]
    part = part[part.metric == "Mean_Dice"].sort_values("boot_mean", ascending=False)
    assert wide["model"].tolist() == part["model"].tolist()
    assert wide["Mean_Dice"].tolist() == part["boot_mean"].tolist()
    assert set(wide["model_name"]) == {"UNI", "H-Optimus-0", "virchow_v1", "phikon"}
    assert sorted(p.name for p in (tmp_path / "tables" / "BCSS").iterdir()) == sorted(
        f"{s}.{ext}" for s in STRATEGIES for ext in ("csv", "md")
    )


def test_strategy_tables_markdown(tmp_path: Path) -> None:
    table = make_table()
    strategy_tables(table, tmp_path, NAMES)
    text = (tmp_path / "kumar" / "cnn_adapter.md").read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# ") and "Kumar" in lines[0] and "CNN adapter" in lines[0]
    header = [c.strip() for c in lines[2].strip("|").split("|")]
    assert header == ["Model", *METRICS]
    row = _cell_value(table, "kumar", "cnn_adapter", "uni_v1", "mIoU")
    cell = f"{row.boot_mean:.3f} [{row.ci_lower:.3f}, {row.ci_upper:.3f}]"
    uni_line = next(line for line in lines if line.startswith("| UNI |"))
    assert [c.strip() for c in uni_line.strip("|").split("|")][1] == cell
    body = [line for line in lines[4:] if line.startswith("|")]
    assert len(body) == len(MODELS)


def test_markdown_cell_format_exact(tmp_path: Path) -> None:
    table = make_table()
    sel = (table.dataset == "GlaS") & (table.strategy == "frozen") & (table.model == "phikon")
    table.loc[sel & (table.metric == "Mean_Dice"), ["boot_mean", "ci_lower", "ci_upper"]] = [
        0.8124,
        0.78149,
        0.8426,
    ]
    strategy_tables(table, tmp_path)
    text = (tmp_path / "GlaS" / "frozen.md").read_text()
    assert "0.812 [0.781, 0.843]" in text
    assert "| phikon |" in text  # no display names: falls back to the key


def test_strategy_tables_rejects_mixed_sources(tmp_path: Path) -> None:
    table = make_table()
    mixed = pd.concat([table, table.assign(source="published")], ignore_index=True)
    with pytest.raises(ValueError, match="duplicate"):
        strategy_tables(mixed, tmp_path)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_figure3_files(tmp_path: Path) -> None:
    table = make_table()
    png, pdf = tmp_path / "fig" / "figure3.png", tmp_path / "fig" / "figure3.pdf"
    figure3(table, png, pdf, strategy_order=["frozen", "lora", "cnn_adapter"], display_names=NAMES)
    assert png.stat().st_size > 0 and pdf.stat().st_size > 0
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert _png_size(png) == (
        round(FIG3_SIZE_IN[0] * FIG3_DPI),
        round(FIG3_SIZE_IN[1] * FIG3_DPI),
    )
    assert sorted(p.name for p in png.parent.iterdir()) == ["figure3.pdf", "figure3.png"]
    # deterministic output
    png2, pdf2 = tmp_path / "again.png", tmp_path / "again.pdf"
    figure3(
        table, png2, pdf2, strategy_order=["frozen", "lora", "cnn_adapter"], display_names=NAMES
    )
    assert png.read_bytes() == png2.read_bytes()
    assert pdf.read_bytes() == pdf2.read_bytes()


def test_figure3_axes_per_dataset() -> None:
    table = make_table()
    fig = build_figure3(table, strategy_order=["lora", "frozen"], display_names=NAMES)
    axes = fig.get_axes()
    assert len(axes) == len(DATASETS)
    assert sorted(ax.get_title() for ax in axes) == sorted(["GlaS", "BCSS", "Kumar"])
    ax = next(a for a in axes if a.get_title() == "BCSS")
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["LoRA", "frozen", "CNN adapter"]  # unlisted strategy appended
    # one jittered point per model and strategy, at the model values
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert len(offsets) == len(MODELS) * len(STRATEGIES)
    part = table[(table.dataset == "BCSS") & (table.metric == "Mean_Dice")]
    assert sorted(offsets[:, 1]) == sorted(part["boot_mean"])
    assert np.abs(offsets[:, 0] - np.round(offsets[:, 0])).max() <= 0.15


def test_figure3_many_datasets_grid() -> None:
    rows = []
    for i in range(8):
        for strategy in ("frozen", "lora"):
            for model in MODELS:
                rows.append(
                    {"dataset": f"d{i}", "model": model, "strategy": strategy,
                     "metric": "Mean_Dice", "boot_mean": 0.5 + 0.01 * i}
                )  # fmt: skip
    fig = build_figure3(pd.DataFrame(rows))
    assert len(fig.get_axes()) == 8


def test_figure3_unknown_metric() -> None:
    with pytest.raises(ValueError, match="no rows"):
        build_figure3(make_table(), metric="Dice")


def with_class_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The table plus per-class rows (class 0 and 1 of every cell), as `densebench score` writes."""
    from densebench.evaluate.metrics import CLASS_METRICS

    head = table[table["metric"] == "mIoU"]
    extra = [
        head.assign(metric=name, **{"class": k, "class_name": f"c{k}", "boot_mean": 0.01 * k})
        for k in (0, 1)
        for name in CLASS_METRICS
    ]
    return sort_table(pd.concat([table, *extra], ignore_index=True))


def test_reports_use_only_headline_metrics(tmp_path: Path) -> None:
    table = make_table()
    full = with_class_rows(table)
    assert len(full) > len(table) and full["class"].notna().any()
    csv = tmp_path / "results.csv"
    full.to_csv(csv, index=False)
    read = pd.read_csv(csv)  # as `densebench tables` / `figure3` read it
    plain = strategy_tables(table, tmp_path / "plain", NAMES)
    mixed = strategy_tables(read, tmp_path / "mixed", NAMES)
    assert [p.relative_to(tmp_path / "mixed") for p in mixed] == [
        p.relative_to(tmp_path / "plain") for p in plain
    ]
    for a, b in zip(plain, mixed, strict=True):
        assert a.read_bytes() == b.read_bytes()
    png, pdf = tmp_path / "a.png", tmp_path / "a.pdf"
    figure3(table, png, pdf, display_names=NAMES)
    png2, pdf2 = tmp_path / "b.png", tmp_path / "b.pdf"
    figure3(read, png2, pdf2, display_names=NAMES)
    assert png.read_bytes() == png2.read_bytes()
    with pytest.raises(ValueError, match="headline metric"):
        build_figure3(full, metric="IoU")
