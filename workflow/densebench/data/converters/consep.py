"""CoNSeP (Graham et al. 2019, the HoVer-Net release) -> samples, as the paper's `CoNSeP.py` does.

Raw layout (release archive `consep.zip`): `CoNSeP/{Train,Test}/{Images/*.png, Labels/*.mat,
Overlay/}`; the converter also accepts the `Train`/`Test` folders one or two levels deeper or
directly in the raw folder.

Recipe: image -> RGB (alpha dropped); mask = the label's `type_map` as is (0 background + the 7 raw
types, no merging), values outside 0..7 refused. Train and Test are pooled and numbered by one
running index in the authors' order: Train then Test, each folder in plain string order of its
file names (their `sorted(os.listdir(...))`, so `train_10` precedes `train_2`), giving
`consep_Train_sample_000000` ... `consep_Test_sample_000040`, the stems of the authors' published
split list. Official split: Train -> "train", Test -> "test". Group: the file stem (`train_1`);
the release does not say which of its 16 patients a tile comes from.

This module also holds the helpers shared with the other HoVer-Net-style releases (kumar, cpm15,
cpm17): `<split>/{Images,Labels}` folders, one `.mat` per image, one running sample index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    check_shapes,
    conversion_error,
    dataset_label,
    load_mat_key,
    read_rgb,
    redownload_remedy,
    relative,
    to_mask,
)

CONVERTER_VERSION = 1
FOLDERS = (("Train", "train"), ("Test", "test"))
NAME = "consep_{folder}_sample_{index:06d}"

MaskReader = Callable[[Path], np.ndarray]


def find_root(raw_dir: Path, marker: str) -> Path | None:
    """First of raw_dir, its sub-folders and theirs (sorted) that holds the folder `marker`."""
    children = sorted(p for p in raw_dir.glob("*") if p.is_dir())
    grandchildren = sorted(p for p in raw_dir.glob("*/*") if p.is_dir())
    return next((d for d in [raw_dir, *children, *grandchildren] if (d / marker).is_dir()), None)


def require_root(raw_dir: Path, marker: str, dataset: str, archive: str) -> Path:
    """The dataset root holding `marker`, or a ConversionError saying how to unpack."""
    root = find_root(raw_dir, marker)
    if root is None:
        raise conversion_error(
            dataset,
            raw_dir,
            f"no folder {marker} in the raw folder or two levels below it",
            f"unpack {archive} into {raw_dir} keeping its folders",
        )
    return root


def listed_images(folder: Path, suffixes: Sequence[str]) -> list[Path]:
    """Images of a folder in plain string order of their names (the authors' `sorted`)."""
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    return sorted(found, key=lambda p: p.name)


def type_map_mask(label_path: Path, dataset: str, raw_dir: Path, num_classes: int) -> np.ndarray:
    """The `type_map` of a label file as a uint8 mask, refusing values outside the classes."""
    mask = to_mask(load_mat_key(label_path, "type_map", dataset, raw_dir), dataset, label_path)
    bad = np.unique(mask[mask >= num_classes])
    if bad.size:
        raise conversion_error(
            dataset,
            label_path,
            f"type_map holds values {bad.tolist()} outside the classes 0..{num_classes - 1}",
            redownload_remedy(raw_dir),
        )
    return mask


def foreground_mask(label_path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Binary nucleus mask of a label's `inst_map`: `inst_map != 0` -> 1, as the authors do."""
    inst = load_mat_key(label_path, "inst_map", dataset, raw_dir)
    if inst.ndim != 2 or inst.dtype.kind not in "iubf":
        raise conversion_error(
            dataset,
            label_path,
            f"inst_map is {inst.dtype} {inst.shape}, expected a 2-D integer instance map",
            redownload_remedy(raw_dir),
        )
    if inst.dtype.kind == "f" and not np.all(np.mod(inst, 1) == 0):
        raise conversion_error(
            dataset, label_path, "inst_map holds non-integer values", redownload_remedy(raw_dir)
        )
    return (inst != 0).astype(np.uint8)


def hovernet_samples(
    raw_dir: Path,
    dataset: str,
    root: Path,
    folders: Sequence[tuple[str, str | None]],
    *,
    suffixes: Sequence[str],
    name: str,
    read_mask: MaskReader,
    group: Callable[[str, Path], str],
) -> Iterator[Sample]:
    """Samples of `<folder>/Images` + `<folder>/Labels/<stem>.mat`, one running index over all."""
    index = 0
    for folder, split in folders:
        images_dir, labels_dir = root / folder / "Images", root / folder / "Labels"
        if not images_dir.is_dir():
            raise conversion_error(
                dataset, images_dir, "folder is missing", redownload_remedy(raw_dir)
            )
        for image_path in listed_images(images_dir, suffixes):
            label_path = labels_dir / f"{image_path.stem}.mat"
            if not label_path.is_file():
                raise conversion_error(
                    dataset,
                    image_path,
                    f"image has no label file {relative(label_path, raw_dir)}",
                    "restore the missing .mat file (re-download the raw data) or remove the image",
                )
            image = read_rgb(image_path, dataset, raw_dir)
            mask = read_mask(label_path)
            check_shapes(image, mask, dataset, label_path)
            yield Sample(
                sample_id=name.format(folder=folder, index=index),
                image=image,
                mask=mask,
                source_file=relative(image_path, raw_dir),
                group_id=group(folder, image_path),
                official_split=split,
            )
            index += 1


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CoNSeP samples, Train before Test, in the authors' numbering."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = require_root(raw_dir, "Train", dataset, "consep.zip")
    num_classes = len(card["classes"])
    yield from hovernet_samples(
        raw_dir,
        dataset,
        root,
        FOLDERS,
        suffixes=(".png",),
        name=NAME,
        read_mask=lambda path: type_map_mask(path, dataset, raw_dir, num_classes),
        group=lambda _folder, image_path: image_path.stem,
    )
