"""CPM-17 (Vu et al. 2019; the HoVer-Net repackaging) -> samples, as the paper's `CPM17.py` does.

Raw layout (Google Drive folder `cpm17`): `cpm17/{train,test}/{Images/*.png, Labels/*.mat}`,
names like `image_00` (repeated in train and test); the converter also accepts the split folders
directly in the raw folder or two levels down.

Recipe: image -> RGB (alpha dropped); mask = `inst_map != 0` -> 1 (0 background, 1 nucleus). The
two folders are pooled and numbered by one running index in the authors' order: train then test,
each in plain string order of its image names (png/jpg/jpeg/tif/tiff), giving
`cpm17_train_sample_000000` ... `cpm17_test_sample_000063`. Official split: train -> "train",
test -> "test". Group: `<folder>_<stem>` (one group per image; the release gives no patient and
reuses stems across folders).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample
from densebench.data.converters._common import nucleus_samples

CONVERTER_VERSION = 1
FOLDERS = (("train", "train"), ("test", "test"))
NAME = "cpm17_{folder}_sample_{index:06d}"


def group(folder: str, image_path: Path) -> str:
    """One group per image, `<folder>_<stem>`: the release reuses stems across folders."""
    return f"{folder}_{image_path.stem}"


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CPM-17 samples, train before test, in the authors' numbering."""
    archive = "the Google Drive folder 'cpm17'"
    yield from nucleus_samples(raw_dir, card, "train", archive, FOLDERS, name=NAME, group=group)
