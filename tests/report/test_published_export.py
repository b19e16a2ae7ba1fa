"""Tests for densebench.report.published_export: a results source written back as the authors'
published files (Data/<stem>.json).

Round trip: the five committed published files (tests/fixtures/published/, the authors' files at
the pinned commit), imported into the published source's tidy table, written to CSV and read
back as the workflow does, export to the same five files byte for byte. Known answers: names,
order and nulls of small hand-made tables.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from densebench.atomic import write_table
from densebench.config import ROOT, load_config
from densebench.evaluate.metrics import METRICS
from densebench.plan import Plan
from densebench.report.aggregate import COLUMNS, tidy
from densebench.report.grid import Grid
from densebench.report.published import PUBLISHED_DATASETS, PUBLISHED_MODELS, import_published
from densebench.report.published_export import (
    published_document,
    published_text,
    write_published_file,
)
from densebench.report.sources import read_tidy, source_table
from tests.conftest import FIXTURES

PUBLISHED = FIXTURES / "published"
GRID = Grid(
    [],
    [],
    [],
    names={
        "datasets": {"demo_glands": "Demo glands", "GlaS": "Gland Segmentation"},
        "models": {"demo_vit_p8": "Demo ViT/8", "uni_v1": "UNI", "conch_v1": "CONCH"},
    },
    marked=frozenset({"demo_vit_p8"}),
)
"""Display names of a new dataset and model, and of published ones (which the export ignores);
a marked model (our runs in a merged table) keeps its name unmarked."""


def published_files(registries) -> dict[str, dict[str, str]]:
    """{strategy: {path, sha256}} of the committed files, as the workflow passes them."""
    return {
        s: {"path": str(PUBLISHED / f"{r['published']}.json"), "sha256": r["published_sha256"]}
        for s, r in registries.strategies.items()
        if "published_sha256" in r
    }


def cells(values: dict[tuple[str, str, str], float]) -> pd.DataFrame:
    """A tidy table of every headline metric per (dataset, model, strategy): metric i of a cell
    has mean v + i / 100, interval mean -/+ 0.01."""
    rows = [
        {
            "dataset": d,
            "model": m,
            "strategy": s,
            "metric": metric,
            "boot_mean": v + i / 100,
            "ci_lower": v + i / 100 - 0.01,
            "ci_upper": v + i / 100 + 0.01,
            "n_images": 12,
            "source": "reproduced",
        }
        for (d, m, s), v in values.items()
        for i, metric in enumerate(METRICS)
    ]
    return tidy(pd.DataFrame(rows).reindex(columns=list(COLUMNS)))


def test_the_published_files_come_back_byte_for_byte(tmp_path: Path, registries) -> None:
    files = published_files(registries)
    assert len(files) == 5
    csv = tmp_path / "results.csv"  # the source table, through its CSV as the rules pass it
    write_table(source_table("published", published=files), csv)
    table = read_tidy(csv)
    for strategy, record in files.items():
        original = Path(record["path"])
        out = write_published_file(table, strategy, tmp_path / "Data" / original.name, GRID)
        assert out.read_bytes() == original.read_bytes(), strategy
    assert sorted(p.name for p in (tmp_path / "Data").iterdir()) == sorted(
        Path(r["path"]).name for r in files.values()
    )  # atomic writes leave no temporary behind


def test_the_published_names_are_those_of_every_published_file() -> None:
    for path in sorted(PUBLISHED.glob("*.json")):
        data = json.loads(path.read_text())
        assert tuple(data) == PUBLISHED_DATASETS, path.name
        for dataset, models in data.items():
            assert tuple(models) == PUBLISHED_MODELS, (path.name, dataset)


def test_new_names_take_display_names_and_missing_values_become_null(tmp_path: Path) -> None:
    table = cells(
        {
            ("demo_glands", "demo_vit_p8", "lora"): 0.5,
            ("GlaS", "demo_vit_p8", "lora"): 0.6,
            ("GlaS", "uni_v1", "lora"): 0.7,
            ("GlaS", "uni_v1", "frozen"): 0.8,  # another strategy: not in lora's file
        }
    )
    gap = (table["dataset"] == "GlaS") & (table["model"] == "uni_v1") & (table["metric"] == "mIoU")
    table.loc[gap & (table["strategy"] == "lora"), "ci_upper"] = math.nan
    out = write_published_file(table, "lora", tmp_path / "Data" / "lora.json", GRID)
    text = out.read_text(encoding="utf-8")
    assert not text.endswith("\n") and "NaN" not in text
    document = json.loads(text)
    # code-point order: "Demo glands" < "GlaS"; "Demo ViT/8" < "uni_v1"
    assert list(document) == ["Demo glands", "GlaS"]
    assert list(document["GlaS"]) == ["Demo ViT/8", "uni_v1"]
    assert list(document["Demo glands"]) == ["Demo ViT/8"]
    uni = document["GlaS"]["uni_v1"]
    assert list(uni) == list(METRICS)
    assert uni["mIoU"] == {"mean": 0.7, "ci_lower": 0.7 - 0.01, "ci_upper": None}
    dice = METRICS.index("Mean_Dice") / 100
    assert uni["Mean_Dice"] == {
        "mean": 0.7 + dice,
        "ci_lower": 0.7 + dice - 0.01,
        "ci_upper": 0.7 + dice + 0.01,
    }
    assert '"ci_upper": null' in text
    back = import_published(out, "lora")  # the export reads back, the null as NaN
    row = back[(back["model"] == "uni_v1") & (back["metric"] == "mIoU")].iloc[0]
    assert row["boot_mean"] == 0.7 and math.isnan(row["ci_upper"])
    assert set(back["dataset"]) == {"Demo glands", "GlaS"}
    assert published_document(table, "dora", "dora", GRID) == {}  # no cells: "{}"
    assert published_text({}) == "{}"


def test_models_are_in_the_order_of_the_authors_run_names() -> None:
    models = ["uni_v1", "phikon_v2", "conch_v1", "phikon", "conch_v1_5", "PathOrchestra"]
    table = cells({("GlaS", m, "frozen"): 0.5 for m in models})
    document = published_document(table, "frozen", "frozen", GRID)
    # as in every published file: upper case first, conch_v1_5 before conch_v1, phikon first
    expected = ["PathOrchestra", "conch_v1_5", "conch_v1", "phikon", "phikon_v2", "uni_v1"]
    assert list(document["GlaS"]) == expected


def test_names_written_alike_are_an_error_naming_both() -> None:
    table = cells({("GlaS", "demo_vit_p8", "lora"): 0.5, ("GlaS", "uni_v1", "lora"): 0.6})
    clash = Grid([], [], [], names={"models": {"demo_vit_p8": "uni_v1"}})
    with pytest.raises(
        ValueError,
        match=r"'demo_vit_p8' and 'uni_v1' would both be written as 'uni_v1'.*display_name",
    ):
        published_document(table, "lora", "lora", clash)


def test_a_cell_without_every_metric_is_an_error_naming_it() -> None:
    table = cells({("GlaS", "uni_v1", "lora"): 0.5})
    table = table[table["metric"] != "Mean_F1"]
    with pytest.raises(ValueError, match=r"GlaS/uni_v1/lora lacks metric\(s\) \['Mean_F1'\]"):
        published_document(table, "lora", "lora", GRID)


def test_each_source_exports_a_file_per_strategy_it_reports(registries) -> None:
    plan = Plan(load_config(ROOT / "config/config.yaml"), registries)
    stems = ["frozen", "lora", "dora", "cnn", "transformer"]
    for source in ("reproduced", "published", "merged"):
        files = plan.report.export_files(source)
        assert files == [f"results/report/{source}/Data/{s}.json" for s in stems]
        assert set(files) <= set(plan.report.report_files(source))
    assert plan.report.strategy_of_stem("cnn") == "cnn_adapter"
    demo = Plan(load_config(ROOT / "config/demo.yaml"), registries)
    assert demo.report.export_files("reproduced") == [
        f"results/report/reproduced/Data/{s}.json" for s in stems
    ]
