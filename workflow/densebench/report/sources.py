"""The tidy table of one results source (config ``results_source``), the input of every product.

- ``reproduced``: this workflow's runs (results/tables/results.csv), source "reproduced".
- ``published``: the paper's five Data/<strategy>.json, each sha256-checked before it is read
  (``densebench.report.published``), source "published".
- ``merged``: the published cells, plus every cell of our runs that the paper does not have
  (a new model, dataset or strategy), each row keeping its ``source``. A cell in both keeps the
  published numbers, so the 17 models stay ranked as the paper ranks them and ours enter beside
  them by the same rules (our numbers of a published cell are in the reproduction report).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.report.aggregate import KEY_COLUMNS, empty_table, tidy
from densebench.report.published import check_published, import_published

if TYPE_CHECKING:
    import pandas as pd

SOURCES: tuple[str, ...] = ("reproduced", "published", "merged")


def read_tidy(path: Path) -> pd.DataFrame:
    """A tidy table written by ``write_table`` (the results table or a source table)."""
    import pandas as pd

    text = {col: str for col in (*KEY_COLUMNS, "metric", "class_name", "source")}
    return tidy(pd.read_csv(path, dtype=text, keep_default_na=True))


def published_table(files: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The published rows of ``{strategy: {path, sha256}}``, each file verified first."""
    import pandas as pd

    for record in files.values():
        check_published(Path(record["path"]), record["sha256"])
    parts = [import_published(Path(r["path"]), s) for s, r in files.items()]
    return tidy(pd.concat(parts, ignore_index=True)) if parts else empty_table()


def merged_table(reproduced: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Published cells plus our cells the paper lacks (the published numbers win a shared cell)."""
    import pandas as pd

    keys = list(KEY_COLUMNS)
    held = published.loc[:, keys].drop_duplicates()
    ours = reproduced.merge(held, on=keys, how="left", indicator=True)
    ours = ours[ours["_merge"] == "left_only"].drop(columns="_merge")
    return tidy(pd.concat([published, ours], ignore_index=True))


def source_table(
    source: str,
    reproduced: Path | None = None,
    published: Mapping[str, Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """The tidy table of ``source`` from the results table and/or the published files."""
    if source not in SOURCES:
        raise ValueError(f"results_source {source!r}: choose one of {list(SOURCES)}")
    needs = {"reproduced": source != "published", "published": source != "reproduced"}
    if needs["reproduced"] and reproduced is None:
        raise ValueError(f"results_source {source}: pass the results table (--reproduced)")
    if needs["published"] and not published:
        raise ValueError(f"results_source {source}: pass the published files (--published)")
    ours = read_tidy(reproduced) if needs["reproduced"] else empty_table()
    paper = published_table(published) if needs["published"] else empty_table()
    if source == "reproduced":
        return ours
    if source == "published":
        return paper
    return merged_table(ours, paper)
