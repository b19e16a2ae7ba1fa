"""CRAG converter: `{train,valid}/Images/*.png` + `Annotation/*.png` (gland ids) -> samples.

Recipe (the authors' `CRAG.py`): every annotated pixel is gland, `mask = (annotation > 0)` -> 1,
background 0. The CRAG v2 release (MILD-Net, Warwick TIA) unpacks to
`CRAG/{train,valid}/{Images,Annotation,Overlay}`; some copies call the test folder `test` and the
label folder `Annotations`, both are accepted. Sample id = the original file stem (`train_12`,
`test_3`), which is what the authors' script keeps and their split list (`CRAG.json`) uses.
Official split: train -> "train", valid/test -> "test". CRAG publishes no patient or slide ids,
so every image is its own group.

`foreground`, `find_root`, `files`, `subdirs` and `required_class` are shared with the other
binary-mask converters (GlaS, RINGS, COSAS24, EBHI).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    _open_array,
    check_shapes,
    class_index,
    conversion_error,
    dataset_label,
    natural_key,
    read_rgb,
    redownload_remedy,
    relative,
)

CONVERTER_VERSION = 1
SPLIT_DIRS = {"train": "train", "valid": "test", "test": "test"}
LABEL_DIRS = ("Annotation", "Annotations")


def foreground(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Boolean mask of a label image's non-zero pixels (any colour channel; alpha ignored)."""
    arr = np.asarray(_open_array(path, dataset, raw_dir, mode=None))
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1]  # drop the alpha channel of LA / RGBA labels
    if arr.ndim == 3:
        return np.any(arr > 0, axis=2)
    if arr.ndim != 2:
        raise conversion_error(
            dataset, path, f"label image has shape {arr.shape}", redownload_remedy(raw_dir)
        )
    return arr > 0


def _visible(path: Path) -> bool:
    """False for hidden entries and macOS archive debris (`.x`, `._x`, `__MACOSX`)."""
    return not path.name.startswith(".") and path.name != "__MACOSX"


def files(folder: Path, suffixes: tuple[str, ...] = (".png",)) -> list[Path]:
    """Visible files of a folder with one of the (lower-case) suffixes, in natural order."""
    if not folder.is_dir():
        return []
    found = (p for p in folder.iterdir() if p.is_file() and _visible(p))
    return sorted(
        (p for p in found if p.suffix.lower() in suffixes), key=lambda p: natural_key(p.name)
    )


def subdirs(folder: Path) -> list[Path]:
    """Visible sub-folders of a folder, in natural order."""
    found = (p for p in folder.iterdir() if p.is_dir() and _visible(p))
    return sorted(found, key=lambda p: natural_key(p.name))


def find_root(raw_dir: Path, is_root: Callable[[Path], bool], depth: int = 3) -> Path | None:
    """First folder (breadth first, natural order) at most `depth` levels below raw_dir."""
    level = [Path(raw_dir)]
    for _ in range(depth + 1):
        for folder in level:
            if is_root(folder):
                return folder
        level = [child for folder in level for child in subdirs(folder)]
    return None


def required_class(card: dict, name: str, dataset: str, raw_dir: Path) -> int:
    """Index of a class the converter paints; raise if the card lacks it."""
    index = class_index(card, name)
    if index is None:
        raise conversion_error(
            dataset,
            raw_dir,
            f"the dataset card's classes {card.get('classes')} have no class {name!r}",
            "fix the classes of the dataset card",
        )
    return index


def _has_split(folder: Path) -> bool:
    """Whether a folder holds CRAG split folders (train/Images, valid/Images or test/Images)."""
    return any((folder / d / "Images").is_dir() for d in SPLIT_DIRS)


def _label_path(split_dir: Path, name: str) -> Path:
    """The annotation file of an image (Annotation/ or Annotations/, same file name)."""
    for label_dir in LABEL_DIRS:
        if (split_dir / label_dir / name).is_file():
            return split_dir / label_dir / name
    return split_dir / LABEL_DIRS[0] / name


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CRAG samples, train before test, in natural file order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = find_root(raw_dir, _has_split)
    if root is None:
        raise conversion_error(
            dataset,
            raw_dir,
            "no train/Images or valid/Images folder",
            "unpack the CRAG v2 archive here so that CRAG/train/Images and CRAG/valid/Images exist",
        )
    gland = required_class(card, "gland", dataset, raw_dir)
    for split_dir, split in SPLIT_DIRS.items():
        for image_path in files(root / split_dir / "Images"):
            label_path = _label_path(root / split_dir, image_path.name)
            if not label_path.is_file():
                raise conversion_error(
                    dataset,
                    image_path,
                    f"image has no annotation file {relative(label_path, raw_dir)}",
                    "restore the missing annotation (re-download the raw data) or remove the image",
                )
            image = read_rgb(image_path, dataset, raw_dir)
            fg = foreground(label_path, dataset, raw_dir)
            check_shapes(image, fg, dataset, label_path)
            yield Sample(
                sample_id=image_path.stem,
                image=image,
                mask=np.where(fg, gland, 0).astype(np.uint8),
                source_file=relative(image_path, raw_dir),
                group_id=image_path.stem,
                official_split=split,
            )
