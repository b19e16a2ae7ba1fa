"""NuCLS converter: `rgb/<fov>.png` + `mask/<fov>.png` (+ `train_test_splits/`) -> samples.

Recipe (the paper's `data/preprocess_datasets/NuCLS.py`): the mask is channel 0 of the 3-channel
mask PNG (the class code; channels 1 x 2 encode instance ids and are dropped), with the FOV code
253 and the `unlabeled` code 99 set to 0, as uint8: 0 background/outside the FOV, 1 tumor,
2 fibroblast, 3 lymphocyte, 4 plasma_cell, 5 macrophage, 6 mitotic_figure, 7 vascular_endothelium,
8 myoepithelium, 9 apoptotic_body, 10 neutrophil, 11 ductal_epithelium, 12 eosinophil
(`configs/nucleus_GTcodes.csv` of the NuCLS repo). Any other code raises. The image is the
`rgb/` PNG of the same name as RGB (alpha dropped).

Instances: the object id of a pixel is the product of the mask's channels 1 and 2 (the
release's encoding); one nucleus per (id, class) on the classed pixels (unlabeled nuclei, code
99, are background in the mask and so no nucleus), renumbered 1..K. A single-channel mask
carries none.

Sample ids are the original file stems, as the authors keep them
(`Data/NuCLS/images/TCGA-AC-A2BK-DX1_id-5ea40a4dddda5f839898d7d9_left-18233_top-10627_bottom-
10908_right-18521.png`). The group is the TCGA patient (`TCGA-<site>-<participant>`). The
official split is fold 1 of the release's five hospital-wise folds
(`train_test_splits/fold_1_{train,test}.csv`, column `slide_name`); without that folder there is
none. Which of the five folds counts as "official" is our choice (the paper ignores them).

The dataset folder (holding `rgb/` and `mask/`) may be the raw folder or sit up to two levels
below it (e.g. `NuCLS_dataset/`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    _open_array,
    check_classes,
    conversion_error,
    dataset_label,
    relative,
    require_mask,
    to_mask,
)
from densebench.data.converters._common import (
    Labels,
    folders_below,
    natural_sorted,
    nucleus_instances,
    pair_sample,
    tcga_case,
)

CONVERTER_VERSION = 1
FOV_CODE, UNLABELED_CODE = 253, 99
OFFICIAL_FOLD = 1


def _root(raw_dir: Path, dataset: str) -> Path:
    """The dataset folder: the one of raw_dir and the folders two levels below with rgb/, mask/."""
    found = [d for d in folders_below(raw_dir) if (d / "rgb").is_dir() and (d / "mask").is_dir()]
    if len(found) != 1:
        where = ", ".join(relative(d, raw_dir) for d in found)
        problem = f"several folders ({where})" if found else "no folder"
        raise conversion_error(
            dataset,
            raw_dir,
            f"{problem} with rgb/ and mask/ in the raw folder or two levels below it",
            "unpack the NuCLS corrected single-rater dataset (rgb/, mask/, csv/, "
            "visualization/, train_test_splits/) into the raw folder, and only that one",
        )
    return found[0]


def _fold_slides(root: Path, dataset: str) -> dict[str, str] | None:
    """Slide name -> 'train'/'test' of the official fold, or None without train_test_splits/."""
    folder = root / "train_test_splits"
    paths = {s: folder / f"fold_{OFFICIAL_FOLD}_{s}.csv" for s in ("train", "test")}
    if not any(p.is_file() for p in paths.values()):
        return None
    slides: dict[str, str] = {}
    for split, path in paths.items():
        if not path.is_file():
            raise conversion_error(
                dataset, path, "file is missing", "restore train_test_splits/ of the release"
            )
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        if rows and "slide_name" not in rows[0]:
            raise conversion_error(
                dataset, path, "has no column 'slide_name'", "use the NuCLS release's split files"
            )
        for row in rows:
            slide = row["slide_name"].strip()
            if slides.get(slide, split) != split:
                raise conversion_error(
                    dataset, path, f"slide {slide} is in both train and test", "fix the file"
                )
            slides[slide] = split
    return slides


def nucls_mask(codes: np.ndarray) -> np.ndarray:
    """The paper's NuCLS mask from the class-code channel: FOV 253 and unlabeled 99 -> 0."""
    codes = np.asarray(codes)
    return np.where((codes == FOV_CODE) | (codes == UNLABELED_CODE), 0, codes)


def _mask(path: Path, dataset: str, raw_dir: Path, num_classes: int) -> Labels:
    """Channel 0 of a NuCLS mask PNG in the paper's encoding, refusing unknown codes, with the
    nuclei of channels 1 x 2 (none for a single-channel mask)."""
    array = _open_array(path, dataset, raw_dir, mode=None)
    codes = array[..., 0] if array.ndim == 3 else array
    mask = to_mask(nucls_mask(codes), dataset, path)
    problem = f"class codes {{bad}} are not NuCLS codes 0..{{last}}, {UNLABELED_CODE} or {FOV_CODE}"
    remedy = "use the mask PNGs of the NuCLS release (channel 0 = class code)"
    mask = check_classes(mask, num_classes, dataset, path, problem, remedy)
    if array.ndim != 3 or array.shape[2] < 3:
        return Labels(mask)
    ids = array[..., 1].astype(np.int64) * array[..., 2].astype(np.int64)
    return Labels(mask, nucleus_instances(ids, mask, 0))


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield NuCLS FOVs in natural file-name order."""
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = _root(raw_dir, dataset)
    slides = _fold_slides(root, dataset)
    read_mask = partial(_mask, num_classes=len(card["classes"]))
    for image_path in natural_sorted((root / "rgb").glob("*.png")):
        mask_path = root / "mask" / image_path.name
        require_mask(image_path, mask_path, dataset, raw_dir)
        slide = image_path.stem.split("_")[0]
        yield pair_sample(
            image_path,
            mask_path,
            dataset,
            raw_dir,
            read_mask,
            group_id=tcga_case(image_path.stem, slide),
            official_split=slides.get(slide) if slides is not None else None,
        )
