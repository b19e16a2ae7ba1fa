"""Tests for densebench.report.reproduction: published cells beside ours, with a status each.

Known answers: a hand-made reproduced table whose values lie inside, overlapping or outside the
published intervals of the committed fixture tests/fixtures/published/frozen.json (SOURCE.md).
"""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import pandas as pd
import pytest

from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import COLUMNS, empty_table, tidy
from densebench.report.comparison import (
    COMPARISON_COLUMNS,
    METRIC_ORDER,
    compare,
    not_run,
    summaries,
)
from densebench.report.grid import Grid
from densebench.report.published import import_published
from densebench.report.reproduction import (
    SYMBOLS,
    reproduction_html,
    reproduction_markdown,
    write_reproduction,
)
from tests.conftest import FIXTURES

FROZEN = FIXTURES / "published" / "frozen.json"
NEW_MODEL = "my_model"
NEW_NAME = "Mine <v2> & co"
DEMO = "demo_nuclei"
# (dataset, model) of the frozen strategy -> how our Mean_Dice sits against the published one.
CHOSEN = {
    ("GlaS", "uni_v1"): "agrees",
    ("GlaS", "hoptimus_0"): "overlaps",
    ("kumar", "uni_v1"): "differs",
}


@pytest.fixture(scope="module")
def published_json() -> dict:
    """The published frozen file: dataset -> model -> metric -> {mean, ci_lower, ci_upper}."""
    return json.loads(FROZEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def published() -> pd.DataFrame:
    """The published frozen file as tidy rows."""
    return import_published(FROZEN, "frozen")


@pytest.fixture(scope="module")
def grid(registries, published_json) -> Grid:
    """The paper's datasets and models (registry names, categories), a new model and a demo set;
    the frozen strategy only."""
    datasets = [*published_json, DEMO]
    models = [*next(iter(published_json.values())), NEW_MODEL]
    names = {
        "datasets": {d: registries.datasets[d]["display_name"] for d in datasets},
        "models": {m: registries.models[m]["display_name"] for m in models if m != NEW_MODEL},
        "strategies": {"frozen": registries.strategies["frozen"]["display_name"]},
    }
    names["models"][NEW_MODEL] = NEW_NAME
    categories = {d: registries.datasets[d]["category"] for d in datasets}
    return Grid(datasets, models, ["frozen"], categories, names)


def _row(dataset: str, model: str, metric: str, mean: float, lower: float, upper: float) -> dict:
    """One reproduced headline row in the aggregate schema."""
    return {
        "dataset": dataset,
        "model": model,
        "strategy": "frozen",
        "metric": metric,
        "class": pd.NA,
        "class_name": pd.NA,
        "point": mean + 0.0005,
        "boot_mean": mean,
        "ci_lower": lower,
        "ci_upper": upper,
        "boot_std": 0.01,
        "n_images": 20,
        "replicates": 1000,
        "seed": 42,
        "source": "reproduced",
    }


def _chosen(status: str, pub: dict) -> tuple[float, float, float]:
    """Our (mean, lower, upper) placed against a published {mean, ci_lower, ci_upper}."""
    mean, upper = pub["mean"], pub["ci_upper"]
    if status == "agrees":
        return mean + 0.002, mean - 0.01, mean + 0.012
    if status == "overlaps":
        assert mean + 0.001 < upper
        return mean + 0.006, mean + 0.001, mean + 0.02
    return upper + 0.02, upper + 0.01, upper + 0.03


@pytest.fixture(scope="module")
def reproduced(published_json) -> pd.DataFrame:
    """Three published cells (Mean_Dice placed per ``CHOSEN``, the other metrics equal to the
    published ones) and two cells without a published one (a new model, a demo dataset)."""
    rows = []
    for (dataset, model), status in CHOSEN.items():
        for metric in METRICS:
            pub = published_json[dataset][model][metric]
            if metric == "Mean_Dice":
                values = _chosen(status, pub)
            else:
                values = (pub["mean"], pub["ci_lower"], pub["ci_upper"])
            rows.append(_row(dataset, model, metric, *values))
    for dataset, model in (("GlaS", NEW_MODEL), (DEMO, "uni_v1")):
        rows += [_row(dataset, model, metric, 0.5, 0.45, 0.55) for metric in METRICS]
    return tidy(pd.DataFrame(rows, columns=list(COLUMNS)))


@pytest.fixture(scope="module")
def comparison(reproduced, published, grid) -> pd.DataFrame:
    """The comparison of the hand-made table with the frozen file."""
    return compare(reproduced, published, grid)


def _cell(comparison: pd.DataFrame, dataset: str, model: str, metric: str = "Mean_Dice"):
    """The comparison row of one frozen cell."""
    sel = (
        (comparison["dataset"] == dataset)
        & (comparison["model"] == model)
        & (comparison["metric"] == metric)
    )
    assert sel.sum() == 1
    return comparison.loc[sel].iloc[0]


def test_status_and_delta_of_chosen_cells(comparison, published_json, reproduced):
    for (dataset, model), status in CHOSEN.items():
        row = _cell(comparison, dataset, model)
        pub = published_json[dataset][model]["Mean_Dice"]
        ours = _chosen(status, pub)
        assert row["status"] == status
        assert row["delta"] == pytest.approx(ours[0] - pub["mean"], abs=1e-15)
        assert row["published_mean"] == pub["mean"]
        assert (row["published_ci_lower"], row["published_ci_upper"]) == (
            pub["ci_lower"],
            pub["ci_upper"],
        )
        assert (row["boot_mean"], row["ci_lower"], row["ci_upper"]) == ours
        assert row["point"] == pytest.approx(ours[0] + 0.0005)
        assert bool(row["published_in_ci"]) is (status == "agrees")
        assert bool(row["cis_overlap"]) is (status != "differs")
        other = _cell(comparison, dataset, model, "mIoU")  # equal to the published values
        assert (other["status"], other["delta"]) == ("agrees", 0.0)


def test_cells_without_a_counterpart(comparison, published_json, grid):
    for dataset, model in (("GlaS", NEW_MODEL), (DEMO, "uni_v1")):
        row = _cell(comparison, dataset, model)
        assert row["status"] == "not published"
        assert math.isnan(row["published_mean"]) and math.isnan(row["delta"])
        assert pd.isna(row["published_in_ci"]) and pd.isna(row["cis_overlap"])
    new = _cell(comparison, "GlaS", NEW_MODEL)
    assert (new["model_name"], new["dataset_name"], new["category"]) == (NEW_NAME, "GlaS", "gland")
    row = _cell(comparison, "BCSS", "uni_v1")
    pub = published_json["BCSS"]["uni_v1"]["Mean_Dice"]
    assert (row["status"], row["published_mean"]) == ("not run", pub["mean"])
    assert math.isnan(row["boot_mean"]) and math.isnan(row["point"])


def test_every_cell_of_both_sources_is_listed(comparison, published_json):
    published_cells = sum(len(models) for models in published_json.values())
    assert published_cells == 306
    assert list(comparison.columns) == list(COMPARISON_COLUMNS)
    assert len(comparison) == (published_cells + 2) * len(METRICS)
    dice = comparison[comparison["metric"] == "Mean_Dice"]
    assert len(dice) == published_cells + 2
    assert not dice.duplicated(["dataset", "model", "strategy"]).any()
    counts = dice["status"].value_counts().to_dict()
    assert counts == {
        "not run": published_cells - len(CHOSEN),
        "not published": 2,
        "agrees": 1,
        "overlaps": 1,
        "differs": 1,
    }
    assert len(not_run(comparison)) == published_cells - len(CHOSEN)


def test_rows_follow_the_grid_order_with_the_view_metric_first(comparison, grid):
    first = comparison.iloc[: len(METRICS)]
    assert list(first["metric"]) == list(METRIC_ORDER) and METRIC_ORDER[0] == "Mean_Dice"
    assert set(first["dataset"]) == {grid.datasets[0]}
    assert set(first["model"]) == {grid.models[0]}
    datasets = list(dict.fromkeys(comparison["dataset"]))
    assert datasets == list(grid.datasets)
    glas = comparison[(comparison["dataset"] == "GlaS") & (comparison["metric"] == "Mean_Dice")]
    assert list(glas["model"]) == list(grid.models)


def test_summaries(comparison, published_json, grid):
    pub = {m: published_json["GlaS"][m]["Mean_Dice"] for m in ("uni_v1", "hoptimus_0")}
    deltas = [_chosen(CHOSEN[("GlaS", m)], p)[0] - p["mean"] for m, p in pub.items()]
    tables = summaries(comparison, grid)
    assert set(tables) == {"overall", "datasets", "models", "strategies"}
    by_dataset = tables["datasets"].set_index("dataset")
    assert list(by_dataset.index) == list(grid.datasets)
    glas = by_dataset.loc["GlaS"]
    assert (glas["agrees"], glas["overlaps"], glas["differs"]) == (1, 1, 0)
    assert (glas["not_run"], glas["not_published"], glas["cells"]) == (15, 1, 18)
    assert (glas["compared"], glas["share_agreeing"]) == (2, 0.5)
    assert glas["mean_abs_delta"] == pytest.approx(sum(map(abs, deltas)) / 2)
    assert glas["mean_delta"] == pytest.approx(sum(deltas) / 2)
    demo = by_dataset.loc[DEMO]
    assert (demo["cells"], demo["not_published"], demo["compared"]) == (1, 1, 0)
    assert math.isnan(demo["share_agreeing"]) and math.isnan(demo["mean_delta"])
    frozen = tables["strategies"].iloc[0]
    assert (frozen["strategy"], frozen["compared"]) == ("frozen", 3)
    assert frozen["share_agreeing"] == pytest.approx(1 / 3)
    models = tables["models"]
    assert list(models["model"]) == list(grid.models)
    assert models.set_index("model").loc[NEW_MODEL, "model_name"] == NEW_NAME
    overall = tables["overall"].iloc[0]
    assert (overall["cells"], overall["not_run"], overall["compared"]) == (308, 303, 3)


class _Page(HTMLParser):
    """Checks balanced tags; collects the text, the doctype and the rows of tables by id."""

    VOID = frozenset({"meta", "link", "br", "hr", "img", "input", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.decl = ""
        self.text: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.metas: list[dict] = []
        self.title = ""
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_decl(self, decl: str) -> None:
        self.decl = decl

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        if tag == "meta":
            self.metas.append(attrs)
        if tag in self.VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self._table = attrs.get("id", "")
            self.tables[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table is not None and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self.stack and self.stack[-1] == "title":
            self.title += data


def _parse(page: str) -> _Page:
    """Parse an HTML page, checking that every tag closes."""
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    return parser


def test_html_page(comparison, grid):
    page = reproduction_html(comparison, grid, "Reproduction <frozen>")
    assert page.startswith("<!doctype html>")
    parsed = _parse(page)
    assert parsed.decl.lower() == "doctype html"
    assert {"charset": "utf-8"} in parsed.metas
    assert parsed.title == "Reproduction <frozen>"
    assert "<script" not in page and "http" not in page and "<link" not in page
    text = "".join(parsed.text)
    for dataset in grid.datasets:
        assert grid.name("datasets", dataset) in text
    assert "&lt;v2&gt; &amp; co" in page and NEW_NAME in text
    cells = parsed.tables["cells-table"]
    assert len(cells) == 1 + 308  # header + one row per cell
    statuses = [row[-1] for row in cells[1:]]
    assert statuses.count(f"{SYMBOLS['agrees']} agrees") == 1
    assert statuses.count(f"{SYMBOLS['not run']} not run") == 303
    missing = parsed.tables["not-run-table"][1:]
    assert sum(int(row[2]) for row in missing) == 303
    listed = {(row[0], m) for row in missing for m in row[3].split(", ")}
    expected = {
        (r["dataset_name"], r["model_name"]) for r in not_run(comparison).to_dict("records")
    }
    assert listed == expected
    assert ("GlaS", grid.name("models", "uni_v1")) not in listed
    assert ("BCSS", grid.name("models", "uni_v1")) in listed
    assert "Cells not run (303)" in text


def _section(markdown: str, heading: str) -> list[str]:
    """The table lines (header and separator excluded) of a Markdown section."""
    lines = markdown.split("\n")
    start = lines.index(heading) + 2
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return lines[start + 2 : end]


def test_markdown_has_one_row_per_cell(comparison, grid):
    markdown = reproduction_markdown(comparison, grid, "Reproduction")
    assert markdown.startswith("# Reproduction\n")
    rows = _section(markdown, "## Cells (Mean_Dice)")
    assert len(rows) == 308
    assert sum("○ not run" in r for r in rows) == 303
    assert sum("✓ agrees" in r for r in rows) == 1
    groups = _section(markdown, "## Cells not run (303)")
    assert sum(int(r.split(" | ")[2]) for r in groups) == 303
    assert "308 cells (Mean_Dice)" in markdown
    for dataset in grid.datasets:
        assert f"| {grid.name('datasets', dataset)} |" in markdown


def test_empty_reproduced_table_gives_every_published_cell_not_run(published, grid):
    comparison = compare(empty_table(), published, grid)
    assert len(comparison) == 306 * len(METRICS)
    assert set(comparison["status"]) == {"not run"}
    assert len(not_run(comparison)) == 306
    page = reproduction_html(comparison, grid, "Nothing run")
    parsed = _parse(page)
    assert sum(int(r[2]) for r in parsed.tables["not-run-table"][1:]) == 306
    markdown = reproduction_markdown(comparison, grid, "Nothing run")
    assert "No reproduced results yet" in markdown and "No reproduced results yet" in page


def test_only_reproduced_cells_are_not_published(reproduced, grid):
    demo = reproduced[reproduced["dataset"] == DEMO]
    comparison = compare(demo, empty_table(), grid)
    assert set(comparison["status"]) == {"not published"}
    assert len(comparison) == len(METRICS)
    markdown = reproduction_markdown(comparison, grid, "Demo")
    assert "No published results" in markdown
    assert "## Cells not run (0)" in markdown
    parsed = _parse(reproduction_html(comparison, grid, "Demo"))
    assert "not-run-table" not in parsed.tables


def test_both_sources_empty_still_render(grid):
    comparison = compare(empty_table(), empty_table(), grid)
    assert comparison.empty and list(comparison.columns) == list(COMPARISON_COLUMNS)
    assert "No cells" in reproduction_markdown(comparison, grid, "Empty")
    _parse(reproduction_html(comparison, grid, "Empty"))


def test_grid_restricts_the_cells(reproduced, published, grid):
    small = Grid(["GlaS", "kumar"], grid.models, grid.strategies, grid.categories, grid.names)
    comparison = compare(reproduced, published, small)
    dice = comparison[comparison["metric"] == "Mean_Dice"]
    assert set(dice["dataset"]) == {"GlaS", "kumar"}
    assert len(dice) == 2 * 17 + 1  # the new model's GlaS cell
    assert comparison.attrs["outside_grid"] == {"reproduced": 1, "published": 16 * 17}
    assert "272 published cell(s) outside" in reproduction_markdown(comparison, small, "Two")
    unlisted = Grid(["GlaS"], [], [])  # empty axes take every name of either source
    assert set(compare(reproduced, published, unlisted)["model"]) == {
        *next(iter(json.loads(FROZEN.read_text()).values())),
        NEW_MODEL,
    }


def test_write_reproduction(tmp_path, reproduced, published, grid):
    from densebench.atomic import write_table

    csv_in = tmp_path / "results.csv"
    write_table(reproduced, csv_in)  # as the CLI reads it back
    out = [tmp_path / "r" / name for name in ("reproduction.md", "index.html", "cells.csv")]
    paths = write_reproduction(pd.read_csv(csv_in), published, grid, *out)
    assert paths == out and all(p.is_file() for p in out)
    table = pd.read_csv(out[2])
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert len(table) == 308 * len(METRICS)
    row = table[(table["dataset"] == "kumar") & (table["model"] == "uni_v1")].iloc[0]
    assert (row["dataset_name"], row["metric"], row["status"]) == ("Kumar", "Mean_Dice", "differs")
    assert not bool(row["published_in_ci"])
    _parse(out[1].read_text(encoding="utf-8"))
    assert not list(tmp_path.glob("r/.*"))  # no temporaries left


def test_a_merged_table_splits_by_source(reproduced, published, grid, comparison):
    merged = pd.concat([reproduced, published], ignore_index=True)
    both = compare(merged, merged, grid)
    pd.testing.assert_frame_equal(both, comparison)
