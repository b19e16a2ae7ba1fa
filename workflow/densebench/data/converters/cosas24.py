"""COSAS24 converter: `COSAS24-TrainingSet/<task>/<domain>/{image,mask}/*.png` -> samples.

Layout: task1 holds the organs (colorectum, pancreas, stomach), task2 the scanners (kfbio-400,
3d-1000, teksqray-600p), 60 labelled images each; only this training set has masks. The
authors' `COSAS24.py` copies every `image/` and `mask/` file of every `<task>/<domain>` folder
to `<task>_<domain>_<file name>` — so sample id = `<task>_<domain>_<stem>`
(`task1_stomach_3a13f2a2d8bc`), exactly the names in their `COSAS24.json`. The mask has the
image's file name.

Mask: 0 background, 1 adenocarcinoma, from `mask > 0` (any colour channel; alpha ignored). The
authors copy the masks unchanged; masks stored as 0/255 (participants report some are, and some
are 3-channel) would then be read as 255 = ignore by their loader, so this binarisation is a
deliberate, documented correction (datasets.md). No official split (the test sets are hidden),
no patient ids: every image is its own group (its file stem).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from densebench.data.converters import Sample, require_mask
from densebench.data.converters._common import (
    class_painter,
    files,
    pair_sample,
    release_root,
    subdirs,
)

CONVERTER_VERSION = 1


def _domains(root: Path) -> list[Path]:
    """Every `<task>/<domain>` folder that has an `image/` folder, in natural order."""
    return [d for task in subdirs(root) for d in subdirs(task) if (d / "image").is_dir()]


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield COSAS24 samples by task, domain and natural file order."""
    raw_dir, dataset, root = release_root(
        raw_dir,
        card,
        lambda folder: bool(_domains(folder)),
        "no <task>/<domain>/image folder",
        "unpack the COSAS24 training archive here so that "
        "COSAS24-TrainingSet/task1/colorectum/image exists",
        depth=2,
    )
    tumour = class_painter(card, "adenocarcinoma", dataset, raw_dir)
    for domain in _domains(root):
        prefix = f"{domain.parent.name}_{domain.name}"
        for image_path in files(domain / "image"):
            mask_path = domain / "mask" / image_path.name
            require_mask(image_path, mask_path, dataset, raw_dir)
            sample_id = f"{prefix}_{image_path.stem}"
            yield pair_sample(image_path, mask_path, dataset, raw_dir, tumour, sample_id=sample_id)
