"""CoNSeP (Graham et al. 2019, the HoVer-Net release) -> samples, as the paper's `CoNSeP.py` does.

Raw layout (release archive `consep.zip`): `CoNSeP/{Train,Test}/{Images/*.png, Labels/*.mat,
Overlay/}`; the converter also accepts the `Train`/`Test` folders one or two levels deeper or
directly in the raw folder.

Recipe: image -> RGB (alpha dropped); mask = the label's `type_map` as is (0 background + the 7 raw
types, no merging), values outside 0..7 refused. Instances: the label's `inst_map`, one nucleus
per (id, type) on the typed pixels (`_common.nucleus_instances`; none where a label file has no
`inst_map`). Train and Test are pooled and numbered by one
running index in the authors' order: Train then Test, each folder in plain string order of its
file names (their `sorted(os.listdir(...))`, so `train_10` precedes `train_2`), giving
`consep_Train_sample_000000` ... `consep_Test_sample_000040`, the stems of the authors' published
split list. Official split: Train -> "train", Test -> "test". Group: the file stem (`train_1`);
the release does not say which of its 16 patients a tile comes from.

The `<split>/{Images,Labels}` layout, one `.mat` per image and one running sample index are
shared with the other HoVer-Net-style releases (kumar, cpm15, cpm17): `_common.hovernet_samples`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    check_classes,
    dataset_label,
    load_mat_key,
    redownload_remedy,
    to_mask,
)
from densebench.data.converters._common import Labels, hovernet_root, hovernet_samples, mat_nuclei

CONVERTER_VERSION = 1
FOLDERS = (("Train", "train"), ("Test", "test"))
NAME = "consep_{folder}_sample_{index:06d}"


def type_map_mask(label_path: Path, dataset: str, raw_dir: Path, num_classes: int) -> np.ndarray:
    """The `type_map` of a label file as a uint8 mask, refusing values outside the classes."""
    mask = to_mask(load_mat_key(label_path, "type_map", dataset, raw_dir), dataset, label_path)
    problem = "type_map holds values {bad} outside the classes 0..{last}"
    remedy = redownload_remedy(raw_dir)
    return check_classes(mask, num_classes, dataset, label_path, problem, remedy)


def type_map_labels(label_path: Path, dataset: str, raw_dir: Path, num_classes: int) -> Labels:
    """`type_map_mask` and the nuclei of the label's `inst_map` (`mat_nuclei`)."""
    mask = type_map_mask(label_path, dataset, raw_dir, num_classes)
    return Labels(mask, mat_nuclei(label_path, mask, dataset, raw_dir))


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CoNSeP samples, Train before Test, in the authors' numbering."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = hovernet_root(raw_dir, "Train", dataset, "consep.zip")
    num_classes = len(card["classes"])
    yield from hovernet_samples(
        raw_dir,
        dataset,
        root,
        FOLDERS,
        suffixes=(".png",),
        name=NAME,
        read_mask=partial(type_map_labels, num_classes=num_classes),
        group=lambda _folder, image_path: image_path.stem,
    )
