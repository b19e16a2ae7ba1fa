"""CPM-15 (Vu et al. 2019; the HoVer-Net repackaging) -> samples, as the paper's `CPM15.py` does.

Two raw layouts are accepted; the first one found (the raw folder, then up to two levels down)
is converted, the HoVer-Net one first:

- the HoVer-Net repackaging (Google Drive folder `cpm15`, the card's source):
  `cpm15/{Images/*.png, Labels/*.mat}`, names like `image_00`; `Images`/`Labels` may also sit
  directly in the raw folder or two levels down;
- the MICCAI 2015 challenge's original training release: one folder of `imageNN.png` (RGBA)
  with `imageNN_mask.txt` instance labels (a first line `width height`, then one label per
  pixel, row by row: 0 background, k > 0 nucleus k); the `imageNN_poly.png` renderings and
  the README are ignored. In that release the masks of image04 and image05 are swapped (each
  has the other image's size); a mask whose size fits another image whose own mask fits this
  image is swapped back, with a warning naming both files.

Recipe: image -> RGB (alpha dropped); mask = `inst_map != 0` (or `label != 0` for the txt masks)
-> 1 (0 background, 1 nucleus); instances = the nuclei of the same instance labels, renumbered
1..K. Images of the HoVer-Net layout (png/jpg/jpeg/tif/tiff, as the
authors' filter) are numbered in plain string order of their names:
`cpm15_semantic_sample_000000` ... `cpm15_semantic_sample_000014`, the stems of the published
split list. The original release's `imageNN` is taken to be the repackaging's `image_{NN-1:02d}`
(the same 15 tiles numbered from 0 in the release's order: not checked file by file against the
Drive copy, but the release's 2,905 nuclei match the HoVer-Net paper and its smallest width and
height, 439 and 392, the authors' dataset_size_info.json), so it gets that image's sample name
and group, and the paper's split list applies. No official split. Group: the (HoVer-Net) file
stem (the release gives no patient).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densebench.data.converters import (
    Sample,
    check_shapes,
    conversion_error,
    dataset_label,
    read_rgb,
    redownload_remedy,
    relative,
    require_mask,
)
from densebench.data.converters._common import (
    Labels,
    files,
    folders_below,
    nucleus_instances,
    nucleus_samples,
)

CONVERTER_VERSION = 1
NAME = "cpm15_semantic_sample_{index:06d}"
ARCHIVE = "the Google Drive folder 'cpm15'"
ORIGINAL_IMAGE = re.compile(r"^image(\d+)\.png$", re.IGNORECASE)
"""Image files of the MICCAI 2015 release (`image01.png`; not the `_poly.png` renderings)."""
ORIGINAL_MASK = re.compile(r"^image\d+_mask\.txt$", re.IGNORECASE)
"""Mask files of the MICCAI 2015 release (`image01_mask.txt`)."""
MISSING_TXT = "the missing _mask.txt file (re-download the challenge's release)"


def convert(raw_dir: Path, card: dict) -> Iterator[Sample]:
    """Yield CPM-15 samples in the authors' numbering, from either accepted layout."""
    raw_dir = Path(raw_dir)
    folders = folders_below(raw_dir)
    if any((d / "Images").is_dir() for d in folders):
        yield from nucleus_samples(raw_dir, card, "Images", ARCHIVE, (("", None),), name=NAME)
        return
    dataset = dataset_label(card, raw_dir)
    root = next((d for d in folders if original_images(d) and _has_txt_masks(d)), None)
    if root is None:
        raise conversion_error(
            dataset,
            raw_dir,
            "no folder Images (the HoVer-Net repackaging) and no imageNN.png with "
            "imageNN_mask.txt files (the MICCAI 2015 release) in the raw folder or two levels "
            "below it",
            f"unpack {ARCHIVE} (or the challenge's training release) into {raw_dir} keeping "
            "its folders",
        )
    yield from original_samples(raw_dir, dataset, root)


# ---- the MICCAI 2015 release -----------------------------------------------------------------


def hovernet_stem(number: int) -> str:
    """The HoVer-Net repackaging's name of the release's `image{number:02d}`: numbered from 0."""
    return f"image_{number - 1:02d}"


def _has_txt_masks(folder: Path) -> bool:
    """True if a folder holds a mask file of the MICCAI 2015 release."""
    return any(ORIGINAL_MASK.match(p.name) for p in files(folder, (".txt",)))


def original_images(folder: Path) -> list[tuple[str, Path]]:
    """(HoVer-Net stem, image) of a folder's `imageNN.png`, in plain string order of the stems.

    That is the order (and so the numbering) the HoVer-Net layout of the same images gets.
    """
    found = []
    for path in files(folder, (".png",)):
        match = ORIGINAL_IMAGE.match(path.name)
        if match and int(match.group(1)) >= 1:
            found.append((hovernet_stem(int(match.group(1))), path))
    return sorted(found, key=lambda item: item[0])


def _image_size(path: Path, dataset: str, raw_dir: Path) -> tuple[int, int]:
    """(height, width) of an image from its header (the pixels are decoded later)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
    except (OSError, SyntaxError, ValueError) as exc:
        raise conversion_error(
            dataset, path, f"cannot decode image ({exc})", redownload_remedy(raw_dir)
        ) from exc
    return height, width


def _txt_remedy(raw_dir: Path) -> str:
    """What to do about a damaged mask file of the MICCAI 2015 release."""
    return (
        "restore the file from the challenge's training release (a text file: 'width height', "
        f"then width*height integer labels, one per line), or {redownload_remedy(raw_dir)}"
    )


def _txt_header(line: str, path: Path, dataset: str, raw_dir: Path) -> tuple[int, int]:
    """(height, width) from a mask file's first line `width height`."""
    fields = line.split()
    if len(fields) != 2 or not all(f.isdigit() and int(f) > 0 for f in fields):
        raise conversion_error(
            dataset,
            path,
            f"mask file starts with {line.strip()[:40]!r}, expected 'width height' "
            "(two positive integers)",
            _txt_remedy(raw_dir),
        )
    width, height = (int(f) for f in fields)
    return height, width


def _read_txt(path: Path, dataset: str, raw_dir: Path) -> str:
    """A mask file's text."""
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise conversion_error(
            dataset, path, f"cannot read mask file ({exc})", _txt_remedy(raw_dir)
        ) from exc


def txt_size(path: Path, dataset: str, raw_dir: Path) -> tuple[int, int]:
    """(height, width) of a mask file, from its header line."""
    try:
        with path.open(encoding="ascii") as fh:
            line = fh.readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise conversion_error(
            dataset, path, f"cannot read mask file ({exc})", _txt_remedy(raw_dir)
        ) from exc
    return _txt_header(line, path, dataset, raw_dir)


def txt_labels(path: Path, dataset: str, raw_dir: Path) -> Labels:
    """Binary nucleus mask of a release's instance-label txt (`label != 0` -> 1, uint8) and
    its nuclei.

    The labels follow the header row by row (x fastest), as the release's README describes.
    """
    head, _, body = _read_txt(path, dataset, raw_dir).partition("\n")
    height, width = _txt_header(head, path, dataset, raw_dir)
    try:
        labels = np.array(body.split(), dtype=np.int64)
    except (ValueError, OverflowError) as exc:
        raise conversion_error(
            dataset, path, f"mask file holds a non-integer label ({exc})", _txt_remedy(raw_dir)
        ) from exc
    if labels.size != height * width:
        raise conversion_error(
            dataset,
            path,
            f"mask file holds {labels.size} labels but its header '{width} {height}' asks for "
            f"{width}*{height} = {height * width}",
            _txt_remedy(raw_dir),
        )
    if labels.size and labels.min() < 0:
        raise conversion_error(
            dataset, path, "mask file holds negative labels", _txt_remedy(raw_dir)
        )
    inst = labels.reshape(height, width)
    mask = (inst != 0).astype(np.uint8)
    return Labels(mask, nucleus_instances(inst, mask, 0))


def paired_masks(images: list[tuple[str, Path]], dataset: str, raw_dir: Path) -> list[Path]:
    """Each image's mask file, with swapped pairs (image04/image05 of the release) repaired.

    An image whose own mask has another size takes the mask of the one other image whose size
    that mask has and whose mask has this image's size; a warning names the swap. Any other
    size mismatch raises, naming both sizes.
    """
    masks = [path.with_name(f"{path.stem}_mask.txt") for _, path in images]
    for (_, image_path), mask_path in zip(images, masks, strict=True):
        require_mask(image_path, mask_path, dataset, raw_dir, "mask", MISSING_TXT)
    image_sizes = [_image_size(path, dataset, raw_dir) for _, path in images]
    mask_sizes = [txt_size(path, dataset, raw_dir) for path in masks]
    wrong = [i for i, size in enumerate(image_sizes) if mask_sizes[i] != size]
    paired = list(masks)
    for i in wrong:
        partners = [
            j
            for j in wrong
            if j != i and mask_sizes[j] == image_sizes[i] and mask_sizes[i] == image_sizes[j]
        ]
        if len(partners) != 1:
            (h, w), (mh, mw) = image_sizes[i], mask_sizes[i]
            raise conversion_error(
                dataset,
                masks[i],
                f"mask is {mh}x{mw} but its image {images[i][1].name} is {h}x{w}, and no single "
                "other image of that size has a mask of this image's size (a swapped pair)",
                "the image and mask files do not belong together; re-download the raw data",
            )
        j = partners[0]
        paired[i] = masks[j]
        if i < j:
            warnings.warn(
                f"dataset {dataset!r}: the masks {relative(masks[i], raw_dir)} and "
                f"{relative(masks[j], raw_dir)} are swapped (each has the other image's size, "
                "a known error of the MICCAI 2015 release); repaired: each image gets the mask "
                "that fits it",
                stacklevel=2,
            )
    return paired


def original_samples(raw_dir: Path, dataset: str, root: Path) -> Iterator[Sample]:
    """Samples of the MICCAI 2015 release in `root`, named as the HoVer-Net layout names them.

    Every mask file's presence and header (and so any swap) is checked before the first sample.
    """
    images = original_images(root)
    masks = paired_masks(images, dataset, raw_dir)
    for index, ((stem, image_path), mask_path) in enumerate(zip(images, masks, strict=True)):
        image = read_rgb(image_path, dataset, raw_dir)
        mask, instances = txt_labels(mask_path, dataset, raw_dir)
        check_shapes(image, mask, dataset, mask_path)
        yield Sample(
            sample_id=NAME.format(index=index),
            image=image,
            mask=mask,
            source_file=relative(image_path, raw_dir),
            group_id=stem,
            official_split=None,
            instances=instances,
        )
