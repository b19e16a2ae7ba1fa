"""Import of the published results (the paper's per-strategy JSON) as tidy rows (protocol §6).

The JSON maps dataset -> model -> metric -> {mean, ci_lower, ci_upper}, the 8 headline
``METRICS`` only. Rows get source "published" and the schema of
``densebench.report.aggregate`` (``boot_mean`` = the published mean; no point value, standard
deviation or counts), so they combine with the reproduced rows in one table.

Datasets and models keep their names: the published ones (``PUBLISHED_DATASETS``,
``PUBLISHED_MODELS``) are our registry keys. The way back, a source written as these files, is
``densebench.report.published_export``.

The files come from the authors' repository at a pinned commit (``PUBLISHED_URL``), each checked
against the sha256 its strategy record pins (``published_sha256`` in config/strategies.yaml).
``fetch_published`` downloads one (resumable, verified, atomic rename: a mismatch leaves no file);
``check_published`` verifies one before it is read, downloaded or dropped by hand alike.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from densebench.data.download import ChecksumError, fetch, sha256sum
from densebench.evaluate.metrics import METRICS
from densebench.report.aggregate import COLUMNS, empty_table, tidy

if TYPE_CHECKING:
    import pandas as pd

PUBLISHED_COMMIT = "4889b1e9abf179d25cc3d8a5902a60fda82a5c93"
PUBLISHED_URL = (
    "https://raw.githubusercontent.com/M4A1TasteGood/PFM-DenseBench/{commit}/Data/{stem}.json"
)
"""Where the published results live (reference/protocol.md §6), at ``PUBLISHED_COMMIT``."""
PUBLISHED_DATASETS: tuple[str, ...] = (
    "BCSS", "COSAS24", "CRAG", "CoCaHis", "CoNIC2022", "CoNSeP", "EBHI", "GlaS", "Janowczyk",
    "Lizard", "NuCLS", "PanNuke", "RINGS", "TNBC", "WSSS4LUAD", "cpm15", "cpm17", "kumar",
)  # fmt: skip
PUBLISHED_MODELS: tuple[str, ...] = (
    "PathOrchestra", "conch_v1_5", "conch_v1", "gigapath", "hibou_l", "hoptimus_0",
    "hoptimus_1", "kaiko-vitl14", "lunit_vits8", "midnight12k", "musk", "phikon", "phikon_v2",
    "uni_v1", "uni_v2", "virchow_v1", "virchow_v2",
)  # fmt: skip
"""The names of the published files (each holds these 18 datasets x 17 models). They are the
keys of our registries as well (config/datasets.yaml, config/models.yaml), so the import maps
no name and the export (``densebench.report.published_export``) keeps them."""


def published_url(stem: str, commit: str = PUBLISHED_COMMIT) -> str:
    """URL of the published results file ``Data/<stem>.json`` at a commit."""
    return PUBLISHED_URL.format(commit=commit, stem=stem)


def _mismatch(path: Path, got: str, expected: str, origin: str) -> ChecksumError:
    """The error of a published file whose sha256 is not the pinned one."""
    return ChecksumError(
        f"{path} ({origin}): sha256 {got} but {expected} was expected (published_sha256 of its "
        f"strategy in config/strategies.yaml); remedy: delete {path} and rerun to download it "
        f"again, or drop by hand the file of commit {PUBLISHED_COMMIT} (Data/{Path(path).name})"
    )


def check_published(path: Path, sha256: str) -> None:
    """Raise ChecksumError naming the file, both checksums and the remedy when they differ."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: published results file missing; run `snakemake report` with internet "
            f"access or drop {published_url(path.stem)} there by hand"
        )
    got = sha256sum(path)
    if got != sha256:
        raise _mismatch(path, got, sha256, "published results file")


def fetch_published(stem: str, sha256: str, dest: Path, url: str | None = None) -> Path:
    """Download ``Data/<stem>.json`` (or ``url``) to dest, verified; a mismatch leaves no file.

    The download (``densebench.data.download.fetch``) resumes from a hidden partial file beside
    dest and takes dest's name only once its sha256 is the pinned one.
    """
    url = url or published_url(stem)
    try:
        return fetch(url, Path(dest), sha256)
    except ChecksumError as err:
        origin = f"downloaded from {url}; nothing was kept"
        raise _mismatch(Path(dest), err.got, sha256, origin) from err


def import_published(json_path: Path, strategy: str) -> pd.DataFrame:
    """Import a published dataset -> model -> metric -> {mean, ci_*} JSON as tidy rows."""
    import pandas as pd

    json_path = Path(json_path)
    with json_path.open(encoding="utf-8") as fh:
        data = json.load(fh)
    rows = []
    nan = math.nan
    for dataset, models in data.items():
        for model, metrics in models.items():
            missing = [name for name in METRICS if name not in metrics]
            if missing:
                raise ValueError(f"{json_path}: {dataset}/{model} lacks metric(s) {missing}")
            for name, stats in metrics.items():
                if name not in METRICS:
                    raise ValueError(f"{json_path}: {dataset}/{model}: unknown metric {name!r}")
                try:
                    mean, lower, upper = (stats[k] for k in ("mean", "ci_lower", "ci_upper"))
                except (KeyError, TypeError) as err:
                    raise ValueError(
                        f"{json_path}: {dataset}/{model}/{name} lacks mean/ci_lower/ci_upper"
                    ) from err
                rows.append(
                    {
                        "dataset": dataset,
                        "model": model,
                        "strategy": strategy,
                        "metric": name,
                        "class": pd.NA,
                        "class_name": pd.NA,
                        "point": nan,
                        "boot_mean": mean,
                        "ci_lower": lower,
                        "ci_upper": upper,
                        "boot_std": nan,
                        "n_images": pd.NA,
                        "replicates": pd.NA,
                        "seed": pd.NA,
                        "source": "published",
                    }
                )
    if not rows:
        return empty_table()
    return tidy(pd.DataFrame(rows, columns=list(COLUMNS)))
