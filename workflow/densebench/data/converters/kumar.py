"""Kumar (Kumar et al. 2017; the HoVer-Net repackaging) -> samples, as the paper's `Kumar.py` does.

Raw layout (Google Drive folder `kumar`): `kumar/{train,test_same,test_diff}/{Images/*.tif,
Labels/*.mat, Overlay/}`, file names like `TCGA-18-5592-01Z-00-DX1`; the converter also accepts
the split folders directly in the raw folder or two levels down.

Recipe: image -> RGB (alpha dropped); mask = `inst_map != 0` -> 1 (0 background, 1 nucleus). The
three folders are pooled and numbered by one running index in the authors' order: train,
test_same, test_diff, each in plain string order of its `.tif` names, giving
`kumar_train_sample_000000` ... `kumar_test_diff_sample_000029` (the stems of the published split
list, e.g. `kumar_train_sample_000006`). Official split: train -> "train", test_same and test_diff
-> "test". Group: the TCGA patient barcode (`TCGA-18-5592`), else the file stem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample
from densebench.data.converters._common import nucleus_samples

CONVERTER_VERSION = 1
FOLDERS = (("train", "train"), ("test_same", "test"), ("test_diff", "test"))
NAME = "kumar_{folder}_sample_{index:06d}"


def patient(stem: str) -> str:
    """TCGA patient barcode (first three dash fields) of a file stem, else the stem itself."""
    parts = stem.split("-")
    return "-".join(parts[:3]) if stem.startswith("TCGA-") and len(parts) >= 3 else stem


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield Kumar samples: train, test_same, test_diff, in the authors' numbering."""
    yield from nucleus_samples(
        raw_dir,
        card,
        "test_diff",
        "the Google Drive folder 'kumar'",
        FOLDERS,
        name=NAME,
        suffixes=(".tif",),
        group=lambda _folder, image_path: patient(image_path.stem),
    )
