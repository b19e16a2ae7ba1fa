"""Helpers that several converters share: the one home of every cross-converter recipe.

The package (`densebench.data.converters`) holds the converter interface and the readers and
checks of a single file; this private module (not a converter: the registry skips names
starting with `_`) holds what several datasets' converters do alike:

- finding a release's folders and listing its files (`find_root`, `release_root`,
  `nested_root`, `folders_below`, `files`, `subdirs`, `natural_sorted`);
- reading an (image, label) pair into a sample and the usual label encodings (`read_pair`,
  `pair_sample`, `foreground`, `class_painter`, `code_mask`, `binary_mask`, `required_class`);
- ground-truth instances where a release carries them (`Labels`, the result of a mask reader
  that also gives them; `instance_ids`, `object_map`, `nucleus_instances`, `object_ids`,
  `component_objects`): int32 maps, 0 background, objects 1..K in a deterministic order, every
  object pixel foreground in the mask (neither the background class nor ignored);
- the naming and layout conventions of related releases: TCGA case ids (`tcga_case`), BCSS
  ground-truth codes (`check_bcss_codes`), the Warwick GlaS release (`WARWICK_IMAGE`,
  `read_grades`, `warwick_annotation`), the HoVer-Net repackagings (`hovernet_root`,
  `hovernet_samples`, `nucleus_samples`, `nucleus_labels`, `IMAGE_SUFFIXES`) and
  memory-mapped `.npy` arrays of patches (`load_npy`, `uint8_patch`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from densebench.data.converters import (
    IGNORE_INDEX,
    Sample,
    _open_array,
    check_shapes,
    class_index,
    conversion_error,
    dataset_label,
    load_mat_key,
    natural_key,
    optional_mat_key,
    read_label,
    read_rgb,
    redownload_remedy,
    relative,
    require_mask,
    to_mask,
)


class Labels(NamedTuple):
    """What one label file gives: its class mask and, where the file carries them, its
    ground-truth instances ((H, W) int32, 0 background, objects 1..K)."""

    mask: np.ndarray
    instances: np.ndarray | None = None


MaskReader = Callable[[Path, str, Path], np.ndarray | Labels]
"""Reads a label file: (path, dataset, raw_dir) -> its (H, W) mask, or its `Labels` where the
file also carries instances."""

TCGA_CASE = re.compile(r"^(TCGA-[A-Za-z0-9]{2}-[A-Za-z0-9]{4})")
MISSING_MAT = "the missing .mat file (re-download the raw data)"
"""What to restore when an image has no `.mat` label file."""
MISSING_ANNOTATION = "the missing annotation (re-download the raw data)"
"""What to restore when an image has no annotation file (`require_mask`'s `missing`)."""
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
"""The image files the authors' HoVer-Net-repackaging scripts (CPM-15, CPM-17) read."""
WARWICK_IMAGE = re.compile(r"^(train|testA|testB)_?\d+\.bmp$")
"""Image file names of the Warwick GlaS release (`train_1.bmp`, `testA_3.bmp`, ...)."""

# ---- folders and files -----------------------------------------------------------------------


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


def natural_sorted(paths: Iterable[Path]) -> list[Path]:
    """Paths in natural order of their file names ('x_2' before 'x_10')."""
    return sorted(paths, key=lambda p: natural_key(p.name))


def folders_below(raw_dir: Path) -> list[Path]:
    """raw_dir, then its sub-folders, then theirs, each level sorted."""
    children = sorted(p for p in raw_dir.glob("*") if p.is_dir())
    grandchildren = sorted(p for p in raw_dir.glob("*/*") if p.is_dir())
    return [raw_dir, *children, *grandchildren]


def find_root(raw_dir: Path, is_root: Callable[[Path], bool], depth: int = 3) -> Path | None:
    """First folder (breadth first, natural order) at most `depth` levels below raw_dir."""
    level = [Path(raw_dir)]
    for _ in range(depth + 1):
        for folder in level:
            if is_root(folder):
                return folder
        level = [child for folder in level for child in subdirs(folder)]
    return None


def release_root(
    raw_dir: Path,
    card: dict,
    is_root: Callable[[Path], bool],
    problem: str,
    remedy: str,
    depth: int = 3,
) -> tuple[Path, str, Path]:
    """A converter's start: (raw_dir as a Path, the dataset's name, `find_root`'s folder).

    Where `find_root` finds none, a ConversionError on raw_dir names the problem and its remedy.
    """
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = find_root(raw_dir, is_root, depth)
    if root is None:
        raise conversion_error(dataset, raw_dir, problem, remedy)
    return raw_dir, dataset, root


def nested_root(raw_dir: Path, name: str, unless: str | None = None) -> Path:
    """raw_dir/name where that folder exists (and raw_dir has no folder `unless`), else raw_dir."""
    nested = raw_dir / name
    if nested.is_dir() and not (unless is not None and (raw_dir / unless).is_dir()):
        return nested
    return raw_dir


# ---- labels ----------------------------------------------------------------------------------


def as_labels(read: np.ndarray | Labels) -> Labels:
    """A mask reader's result as `Labels` (a bare mask carries no instances)."""
    return read if isinstance(read, Labels) else Labels(read)


def read_pair(
    image_path: Path, label_path: Path, dataset: str, raw_dir: Path, read_mask: MaskReader
) -> tuple[np.ndarray, Labels]:
    """The RGB image and the `Labels` of its label file, checked to have the same size."""
    image = read_rgb(image_path, dataset, raw_dir)
    labels = as_labels(read_mask(label_path, dataset, raw_dir))
    check_shapes(image, labels.mask, dataset, label_path)
    if labels.instances is not None:
        check_shapes(image, labels.instances, dataset, label_path)
    return image, labels


def pair_sample(
    image_path: Path,
    label_path: Path,
    dataset: str,
    raw_dir: Path,
    read_mask: MaskReader,
    *,
    sample_id: str | None = None,
    group_id: str | None = None,
    official_split: str | None = None,
) -> Sample:
    """The Sample of an image and its label file (`read_pair`); its source file is the image.

    The sample id and the group default to the image's file stem, the official split to none;
    the instances are the reader's, if it gives them.
    """
    image, labels = read_pair(image_path, label_path, dataset, raw_dir, read_mask)
    return Sample(
        sample_id=image_path.stem if sample_id is None else sample_id,
        image=image,
        mask=labels.mask,
        source_file=relative(image_path, raw_dir),
        group_id=image_path.stem if group_id is None else group_id,
        official_split=official_split,
        instances=labels.instances,
    )


def _label_channels(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """A label image as a 2-D array or (H, W, C) colours, any alpha channel dropped."""
    arr = np.asarray(_open_array(path, dataset, raw_dir, mode=None))
    if arr.ndim == 3 and arr.shape[2] in (2, 4):
        arr = arr[..., :-1]  # drop the alpha channel of LA / RGBA labels
    if arr.ndim not in (2, 3):
        raise conversion_error(
            dataset, path, f"label image has shape {arr.shape}", redownload_remedy(raw_dir)
        )
    return arr


def _nonzero(arr: np.ndarray) -> np.ndarray:
    """Pixels of a label array with a value above 0 in any colour channel."""
    return np.any(arr > 0, axis=2) if arr.ndim == 3 else arr > 0


def _colour_ids(arr: np.ndarray) -> np.ndarray:
    """One positive integer per distinct value (2-D) or colour ((H, W, C)) where `_nonzero`;
    other pixels get any value."""
    if arr.dtype.kind not in "ub":  # signed or float labels: rank the distinct values
        flat = arr.reshape(-1, 1) if arr.ndim == 2 else arr.reshape(-1, arr.shape[2])
        _, inverse = np.unique(flat, axis=0, return_inverse=True)
        return inverse.reshape(arr.shape[:2]).astype(np.int64) + 1
    if arr.ndim == 2:
        return arr.astype(np.int64)
    base = int(arr.max(initial=0)) + 1
    ids = np.zeros(arr.shape[:2], np.int64)
    for channel in range(arr.shape[2]):
        ids = ids * base + arr[..., channel].astype(np.int64)
    return ids


def foreground(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Boolean mask of a label image's non-zero pixels (any colour channel; alpha ignored)."""
    return _nonzero(_label_channels(path, dataset, raw_dir))


def object_ids(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Raw object ids of an instance-label image (int64, 0 where `foreground` is not): the
    value of a single-channel image, or the colour of a colour-coded one (one object per
    colour)."""
    arr = _label_channels(path, dataset, raw_dir)
    return np.where(_nonzero(arr), _colour_ids(arr), 0)


def class_painter(
    card: dict, name: str, dataset: str, raw_dir: Path, *, objects: bool = False
) -> MaskReader:
    """A mask reader: a label image's `foreground` -> the card's class `name`, else 0 (uint8).

    With `objects`, the label image holds instance ids (`object_ids`) and the reader gives
    `Labels` with them renumbered (`object_map`). The class must exist (`required_class`,
    checked here, before any file is read).
    """
    index = required_class(card, name, dataset, raw_dir)

    def paint(path: Path, dataset: str, raw_dir: Path) -> np.ndarray | Labels:
        arr = _label_channels(path, dataset, raw_dir)
        fg = _nonzero(arr)
        mask = np.where(fg, index, 0).astype(np.uint8)
        if not objects:
            return mask
        return Labels(mask, object_map(np.where(fg, _colour_ids(arr), 0), fg))

    return paint


def code_mask(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """A label image whose pixel values are the class indices, as a uint8 mask."""
    return to_mask(read_label(path, dataset, raw_dir), dataset, path)


def binary_mask(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """A label image binarised: `label > 0` -> 1, else 0 (uint8)."""
    return (read_label(path, dataset, raw_dir) > 0).astype("uint8")


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


# ---- instances -------------------------------------------------------------------------------


def instance_ids(values: np.ndarray, dataset: str, path: Path, raw_dir: Path) -> np.ndarray:
    """A release's raw instance map as int64, refusing a non-2-D, non-integer or negative one."""
    values = np.asarray(values)
    bad = values.ndim != 2 or values.dtype.kind not in "iubf"
    if not bad and values.size:
        bad = values.min() < 0 or (values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0))
    if bad:
        raise conversion_error(
            dataset,
            path,
            f"instance map is {values.dtype} {values.shape}, expected a 2-D map of "
            "non-negative integer ids",
            redownload_remedy(raw_dir),
        )
    return values.astype(np.int64)


def object_pixels(mask: np.ndarray, background: int | None) -> np.ndarray:
    """Pixels of a mask that may belong to an object: neither the background class nor
    ignored."""
    keep = np.asarray(mask) != IGNORE_INDEX
    return keep if background is None else keep & (np.asarray(mask) != background)


def object_map(ids: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Instance map (int32, 0 background) of raw object ids: the non-zero ids where `keep`,
    renumbered 1..K in increasing order of id."""
    ids = np.asarray(ids)
    selected = np.asarray(keep, bool) & (ids != 0)
    out = np.zeros(ids.shape, np.int32)
    if selected.any():
        _, inverse = np.unique(ids[selected], return_inverse=True)
        out[selected] = inverse.reshape(-1) + 1
    return out


def nucleus_instances(ids: np.ndarray, mask: np.ndarray, background: int | None) -> np.ndarray:
    """Nucleus instances of raw ids and the class mask: one object per (id, class) pair on the
    mask's `object_pixels` (a raw object painted with two classes becomes two, so each object
    has one class), renumbered 1..K in order of (id, class)."""
    ids, mask = np.asarray(ids, np.int64), np.asarray(mask)
    keys = ids * 256 + mask.astype(np.int64)
    return object_map(keys, object_pixels(mask, background) & (ids != 0))


def component_objects(foreground: np.ndarray) -> np.ndarray:
    """Instance map (int32) of a binary mask's 8-connected components, numbered in raster
    order: the objects of a release whose labels do not separate them."""
    from scipy import ndimage

    labels, _ = ndimage.label(np.asarray(foreground, bool), structure=np.ones((3, 3), bool))
    return labels.astype(np.int32)


# ---- release conventions ---------------------------------------------------------------------


def tcga_case(stem: str, default: str) -> str:
    """The TCGA case (`TCGA-<site>-<participant>`) a file stem starts with, else `default`."""
    case = TCGA_CASE.match(stem)
    return case.group(1) if case else default


def check_bcss_codes(root: Path, card: dict, dataset: str) -> None:
    """Raise if BCSS's meta/gtruth_codes.tsv (when present) disagrees with the card's classes."""
    path = root / "meta" / "gtruth_codes.tsv"
    if not path.is_file():
        return
    classes = list(card.get("classes", []))
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            label, code = row.get("label", "").strip(), int(row.get("GT_code", -1))
            if not (0 <= code < len(classes)) or classes[code] != label:
                raise conversion_error(
                    dataset,
                    path,
                    f"GT code {code} is {label!r} but the card's class {code} is "
                    f"{classes[code] if 0 <= code < len(classes) else 'missing'!r}",
                    "make the card's classes list the GT codes in order",
                )


def bcss_samples(
    raw_dir: Path,
    dataset: str,
    card: dict,
    root: Path,
    image_dir: Path,
    *,
    name: str,
    split: Callable[[str], str | None],
    missing: str,
) -> Iterator[Sample]:
    """BCSS-style ROIs: `image_dir/<name>.png` + `root/masks/<name>.png` of BCSS codes.

    Codes are checked against the card first; ids are `name.format(stem=...)`, groups the TCGA
    case, splits `split(stem)`; a missing mask's remedy restores `missing`.
    """
    check_bcss_codes(root, card, dataset)
    for image_path in natural_sorted(image_dir.glob("*.png")):
        mask_path = root / "masks" / image_path.name
        require_mask(image_path, mask_path, dataset, raw_dir, missing=missing)
        stem = image_path.stem
        yield pair_sample(
            image_path,
            mask_path,
            dataset,
            raw_dir,
            code_mask,
            sample_id=name.format(stem=stem),
            group_id=tcga_case(stem, stem),
            official_split=split(stem),
        )


def read_grades(path: Path, dataset: str) -> dict[str, tuple[str, str]]:
    """Map image name -> (patient id, grade) from GlaS's Grade.csv (values have leading spaces)."""
    with path.open(newline="") as fh:
        rows = [[cell.strip() for cell in row] for row in csv.reader(fh) if row]
    header = [h.lower() for h in rows[0]] if rows else []
    if "name" not in header or "patient id" not in header or "grade (glas)" not in header:
        raise conversion_error(
            dataset,
            path,
            "Grade.csv lacks the columns 'name', 'patient ID', 'grade (GlaS)'",
            "use the Grade.csv of the original Warwick_QU_Dataset release",
        )
    i_name, i_pat, i_grade = (header.index(k) for k in ("name", "patient id", "grade (glas)"))
    return {r[i_name]: (r[i_pat], r[i_grade].lower()) for r in rows[1:]}


def warwick_annotation(
    image_path: Path, grades: dict[str, tuple[str, str]] | None, grade_csv: Path, dataset: str
) -> tuple[Path, str, str | None]:
    """(`_anno.bmp`, patient, grade) of a Warwick GlaS image; (stem, None) without Grade.csv."""
    stem = image_path.stem
    anno_path = image_path.with_name(f"{stem}_anno.bmp")
    if not anno_path.is_file():
        raise conversion_error(
            dataset,
            image_path,
            f"image has no annotation file {anno_path.name}",
            "restore the missing _anno.bmp (re-download the raw data) or remove the image",
        )
    if grades is not None and stem not in grades:
        raise conversion_error(dataset, grade_csv, f"no row for {stem!r}", "add the row")
    patient, grade = grades[stem] if grades is not None else (stem, None)
    return anno_path, patient, grade


def load_npy(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Memory-map a .npy file; a missing, truncated or damaged file raises ConversionError."""
    if not path.is_file():
        raise conversion_error(dataset, path, "file is missing", redownload_remedy(raw_dir))
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise conversion_error(
            dataset, path, f"cannot read .npy array ({exc})", redownload_remedy(raw_dir)
        ) from exc


def uint8_patch(
    images: np.ndarray, index: int, path: Path, dataset: str, remedy: str, refuse_nan: bool = False
) -> np.ndarray:
    """Patch `index` of an array as contiguous uint8 (an `astype`), refusing values outside 0..255.

    With `refuse_nan`, NaN values are refused too (else `astype` decides what they become).
    """
    image = np.asarray(images[index])
    if image.dtype != np.uint8:
        low, high = (image.min(), image.max()) if image.size else (0, 0)
        if refuse_nan:
            bad, problem = not (low >= 0 and high <= 255), "outside 0..255 (or NaN)"
        else:
            bad, problem = low < 0 or high > 255, "outside 0..255"
        if bad:
            raise conversion_error(dataset, path, f"patch {index} has values {problem}", remedy)
        image = image.astype(np.uint8)
    return np.ascontiguousarray(image)


# ---- HoVer-Net repackagings (CoNSeP, Kumar, CPM-15, CPM-17) ------------------------------------


def hovernet_root(raw_dir: Path, marker: str, dataset: str, archive: str) -> Path:
    """The first of `folders_below(raw_dir)` holding the folder `marker`, or how to unpack."""
    root = next((d for d in folders_below(raw_dir) if (d / marker).is_dir()), None)
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


def inst_map(label_path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """A label's `inst_map` as int64 ids (0 background), refusing anything else."""
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
    return instance_ids(inst, dataset, label_path, raw_dir)


def mat_nuclei(
    label_path: Path, mask: np.ndarray, dataset: str, raw_dir: Path
) -> np.ndarray | None:
    """The nuclei (`nucleus_instances`, background class 0) of a label file's `inst_map` over
    its class mask; None where the file has no `inst_map`."""
    values = optional_mat_key(label_path, "inst_map", dataset, raw_dir)
    if values is None:
        return None
    ids = instance_ids(values, dataset, label_path, raw_dir)
    if ids.shape != mask.shape:
        raise conversion_error(
            dataset,
            label_path,
            f"inst_map is {ids.shape[0]}x{ids.shape[1]} but the class map is "
            f"{mask.shape[0]}x{mask.shape[1]}",
            redownload_remedy(raw_dir),
        )
    return nucleus_instances(ids, mask, 0)


def nucleus_labels(label_path: Path, dataset: str, raw_dir: Path) -> Labels:
    """Binary nucleus mask of a label's `inst_map` (`inst_map != 0` -> 1, as the authors do)
    and its nuclei (`nucleus_instances`)."""
    inst = inst_map(label_path, dataset, raw_dir)
    mask = (inst != 0).astype(np.uint8)
    return Labels(mask, nucleus_instances(inst, mask, 0))


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
            require_mask(image_path, label_path, dataset, raw_dir, "label", MISSING_MAT)
            yield pair_sample(
                image_path,
                label_path,
                dataset,
                raw_dir,
                read_mask,
                sample_id=name.format(folder=folder, index=index),
                group_id=group(folder, image_path),
                official_split=split,
            )
            index += 1


def _stem_group(_folder: str, image_path: Path) -> str:
    """One group per image: its file stem."""
    return image_path.stem


def nucleus_samples(
    raw_dir: Path,
    card: dict,
    marker: str,
    archive: str,
    folders: Sequence[tuple[str, str | None]],
    *,
    name: str,
    suffixes: Sequence[str] = IMAGE_SUFFIXES,
    group: Callable[[str, Path], str] = _stem_group,
) -> Iterator[Sample]:
    """A whole HoVer-Net repackaging with binary nucleus masks and nuclei (`nucleus_labels`).

    The root is `hovernet_root(raw_dir, marker, ...)` (`archive` names what to unpack); the
    samples are `hovernet_samples` of its `folders`, named by `name`, grouped by `group`.
    """
    raw_dir = Path(raw_dir)
    dataset = dataset_label(card, raw_dir)
    root = hovernet_root(raw_dir, marker, dataset, archive)
    yield from hovernet_samples(
        raw_dir,
        dataset,
        root,
        folders,
        suffixes=suffixes,
        name=name,
        read_mask=nucleus_labels,
        group=group,
    )
