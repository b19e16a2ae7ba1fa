"""Tests for densebench.report.aggregate and .published: concatenation, validation, sorting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from densebench.atomic import write_table
from densebench.evaluate.bootstrap import score_run
from densebench.evaluate.metrics import CLASS_METRICS, METRICS
from densebench.report.aggregate import COLUMNS, aggregate
from densebench.report.published import import_published
from tests.conftest import FIXTURES

PER_RUN = len(METRICS) + len(CLASS_METRICS) * 3  # 8 headline + 5 per class x 3 classes


@pytest.fixture(scope="module")
def published_frozen() -> Path:
    """An excerpt of the published frozen-strategy results (2 datasets x 3 models)."""
    return FIXTURES / "published_excerpt.json"


def _run_csv(tmp_path: Path, dataset: str, model: str, strategy: str, seed: int = 0) -> Path:
    """Score a small random confusion stack and write its per-run metrics CSV."""
    rng = np.random.default_rng(seed)
    matrices = rng.integers(0, 100, size=(6, 3, 3)).astype(np.int64)
    npz = tmp_path / f"{dataset}_{model}_{strategy}.npz"
    np.savez(
        npz,
        matrices=matrices,
        sample_ids=np.array([f"s{i}" for i in range(6)]),
        classes=np.array(["a", "b", "c"]),
    )
    keys = {"dataset": dataset, "model": model, "strategy": strategy}
    df = score_run(npz, keys, replicates=20, seed=42)
    path = tmp_path / "runs" / dataset / strategy / model / "metrics.csv"
    write_table(df, path)
    return path


def test_aggregate_concatenates_and_sorts(tmp_path: Path) -> None:
    paths = [
        _run_csv(tmp_path, "kumar", "uni_v1", "lora", 1),
        _run_csv(tmp_path, "BCSS", "uni_v1", "lora", 2),
        _run_csv(tmp_path, "BCSS", "hoptimus_0", "lora", 3),
        _run_csv(tmp_path, "BCSS", "uni_v1", "frozen", 4),
    ]
    table = aggregate(paths)
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 4 * PER_RUN
    assert set(table["source"]) == {"reproduced"}
    order = list(
        dict.fromkeys(zip(table["dataset"], table["strategy"], table["model"], strict=True))
    )
    assert order == [
        ("BCSS", "frozen", "uni_v1"),
        ("BCSS", "lora", "hoptimus_0"),
        ("BCSS", "lora", "uni_v1"),
        ("kumar", "lora", "uni_v1"),
    ]
    for _, group in table.groupby(["dataset", "strategy", "model"], sort=False):
        # published order, not alphabetical; then per class index the per-class metrics
        assert list(group["metric"]) == [*METRICS, *CLASS_METRICS * 3]
        assert group["class"].iloc[: len(METRICS)].isna().all()
        assert group["class"].iloc[len(METRICS) :].tolist() == [0] * 5 + [1] * 5 + [2] * 5
        assert (
            group["class_name"].iloc[len(METRICS) :].tolist() == ["a"] * 5 + ["b"] * 5 + ["c"] * 5
        )
    assert str(table["class"].dtype) == "Int64"
    first = pd.read_csv(paths[1])
    got = table[(table["dataset"] == "BCSS") & (table["model"] == "uni_v1")]
    got = got[got["strategy"] == "lora"]
    assert got["boot_mean"].tolist() == first["boot_mean"].tolist()
    assert got["n_images"].tolist() == [6] * PER_RUN


def test_aggregate_rejects_duplicates_across_files(tmp_path: Path) -> None:
    a = _run_csv(tmp_path, "BCSS", "uni_v1", "lora", 1)
    b = tmp_path / "copy.csv"
    b.write_text(a.read_text())
    with pytest.raises(ValueError, match=r"copy\.csv.*duplicate.*BCSS"):
        aggregate([a, b])


def test_aggregate_rejects_duplicates_within_file(tmp_path: Path) -> None:
    a = _run_csv(tmp_path, "BCSS", "uni_v1", "lora", 1)
    df = pd.read_csv(a)
    twice = tmp_path / "twice.csv"
    pd.concat([df, df.iloc[:1]]).to_csv(twice, index=False)
    with pytest.raises(ValueError, match=r"twice\.csv.*duplicate"):
        aggregate([twice])


def test_aggregate_missing_column_names_the_file(tmp_path: Path) -> None:
    a = _run_csv(tmp_path, "BCSS", "uni_v1", "lora", 1)
    bad = tmp_path / "no_ci.csv"
    pd.read_csv(a).drop(columns=["ci_upper"]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"no_ci\.csv.*ci_upper"):
        aggregate([a, bad])


def test_aggregate_unknown_metric(tmp_path: Path) -> None:
    a = _run_csv(tmp_path, "BCSS", "uni_v1", "lora", 1)
    bad = tmp_path / "odd.csv"
    pd.read_csv(a).replace({"metric": {"mIoU": "IoU"}}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"odd\.csv.*IoU"):
        aggregate([bad])


def test_aggregate_per_class_validation(tmp_path: Path) -> None:
    a = _run_csv(tmp_path, "BCSS", "uni_v1", "lora", 1)
    df = pd.read_csv(a)
    cases = {
        "dup.csv": (pd.concat([df, df.iloc[[10]]]), r"dup\.csv.*duplicate.*'Precision', 0\)"),
        "noclass.csv": (df.assign(**{"class": df["class"].where(df["metric"] != "Dice")}), "Dice"),
        "headclass.csv": (df.assign(**{"class": df["class"].fillna(0)}), "mIoU"),
    }
    for name, (frame, message) in cases.items():
        frame.to_csv(tmp_path / name, index=False)
        with pytest.raises(ValueError, match=message):
            aggregate([tmp_path / name])


def test_aggregate_accepts_headline_only_tables(tmp_path: Path) -> None:
    """A per-run table scored before the per-class rows existed: headline rows, no class columns."""
    a = _run_csv(tmp_path, "BCSS", "uni_v1", "lora", 1)
    df = pd.read_csv(a)
    old = tmp_path / "old.csv"
    df[df["class"].isna()].drop(columns=["class", "class_name"]).to_csv(old, index=False)
    table = aggregate([old])
    assert list(table.columns) == list(COLUMNS)
    assert list(table["metric"]) == list(METRICS) and table["class"].isna().all()


def test_aggregate_empty() -> None:
    table = aggregate([])
    assert table.empty and list(table.columns) == list(COLUMNS)


def test_import_published_reference_file(published_frozen: Path) -> None:
    table = import_published(published_frozen, "frozen")
    assert list(table.columns) == list(COLUMNS)
    assert len(table) == 6 * len(METRICS)
    assert table[["dataset", "model"]].drop_duplicates().shape[0] == 6
    assert table["dataset"].nunique() == 2 and table["model"].nunique() == 3
    assert set(table["strategy"]) == {"frozen"} and set(table["source"]) == {"published"}
    assert not table[["boot_mean", "ci_lower", "ci_upper"]].isna().any().any()
    assert table[["point", "boot_std", "n_images", "replicates", "seed"]].isna().all().all()
    assert table[["class", "class_name"]].isna().all().all()  # headline rows only
    assert (
        (table["ci_lower"] <= table["boot_mean"]) & (table["boot_mean"] <= table["ci_upper"])
    ).all()
    raw = json.loads(published_frozen.read_text())
    row = table[(table["dataset"] == "GlaS") & (table["model"] == "uni_v1")]
    assert list(row["metric"]) == list(METRICS)
    assert row["boot_mean"].tolist() == [raw["GlaS"]["uni_v1"][m]["mean"] for m in METRICS]
    # Mean_Recall equals Mean_Accuracy in every published cell (protocol §5)
    wide = table.pivot(index=["dataset", "model"], columns="metric", values="boot_mean")
    assert (wide["Mean_Recall"] == wide["Mean_Accuracy"]).all()
    assert list(table["dataset"].iloc[[0, -1]]) == ["GlaS", "TNBC"]


def test_import_published_combines_with_reproduced(tmp_path: Path, published_frozen: Path) -> None:
    a = _run_csv(tmp_path, "BCSS", "uni_v1", "frozen", 1)
    both = pd.concat(
        [aggregate([a]), import_published(published_frozen, "frozen")], ignore_index=True
    )
    assert list(both.columns) == list(COLUMNS)
    assert set(both["source"]) == {"reproduced", "published"}
    assert str(both["class"].dtype) == "Int64"
    assert (both["source"] == "published").sum() == 6 * len(METRICS)
    assert (both["source"] == "reproduced").sum() == PER_RUN


def test_import_published_rejects_missing_metric(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    cell = {m: {"mean": 0.5, "ci_lower": 0.4, "ci_upper": 0.6} for m in METRICS[:-1]}
    path.write_text(json.dumps({"BCSS": {"uni_v1": cell}}))
    with pytest.raises(ValueError, match=r"broken\.json.*Mean_F1"):
        import_published(path, "lora")
