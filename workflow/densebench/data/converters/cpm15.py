"""CPM-15 (Vu et al. 2019; the HoVer-Net repackaging) -> samples, as the paper's `CPM15.py` does.

Raw layout (Google Drive folder `cpm15`): `cpm15/{Images/*.png, Labels/*.mat}`, names like
`image_00`; the converter also accepts `Images`/`Labels` directly in the raw folder or two levels
down.

Recipe: image -> RGB (alpha dropped); mask = `inst_map != 0` -> 1 (0 background, 1 nucleus).
Images (png/jpg/jpeg/tif/tiff, as the authors' filter) are numbered in plain string order of their
names: `cpm15_semantic_sample_000000` ... `cpm15_semantic_sample_000014`, the stems of the
published split list. No official split. Group: the file stem (the release gives no patient).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample
from densebench.data.converters._common import nucleus_samples

CONVERTER_VERSION = 1
NAME = "cpm15_semantic_sample_{index:06d}"


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CPM-15 samples in the authors' numbering."""
    archive = "the Google Drive folder 'cpm15'"
    yield from nucleus_samples(raw_dir, card, "Images", archive, (("", None),), name=NAME)
