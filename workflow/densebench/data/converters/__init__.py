"""Converters: a dataset's raw files -> `Sample`s (RGB image + class-index mask) in paper encoding.

Where the raw files carry object instances (nuclei, glands), a sample also holds them
(`Sample.instances`: int32, 0 background, objects 1..K, every object pixel foreground in the
mask); they are written into their own product (`densebench.data.instances`), never into the
semantic store, so adding them changes no store.

Each converter is a module of this package, named after the converter, with a generator
`convert(raw_dir, card) -> Iterator[Sample]` and an integer `CONVERTER_VERSION` (bumped whenever
its output changes); adding a converter is adding a module. Converters yield one sample at a
time, in sorted deterministic order, so a large dataset never has to sit in memory. The readers
and checks of one file live here (`read_rgb`, `read_label`, `load_mat_key`, `to_mask`,
`check_classes`, `require_mask`, ...) and raise `ConversionError` naming the dataset, the
offending file and the remedy. What several converters do alike (finding a release's folders,
pairing images with labels, shared release conventions) lives in the private module `_common`,
which is no converter (names starting with `_` are not registered).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IGNORE_INDEX = 255


class ConversionError(ValueError):
    """Raw data cannot be converted; the message names dataset, file and remedy."""


@dataclass(frozen=True)
class Sample:
    """One converted (image, mask) pair with its provenance and, where the raw files carry
    them, its ground-truth instances ((H, W) int32: 0 background, objects 1..K)."""

    sample_id: str
    image: np.ndarray
    mask: np.ndarray
    source_file: str
    group_id: str
    official_split: str | None
    instances: np.ndarray | None = None


Converter = Callable[[Path, dict], Iterator[Sample]]


def dataset_label(card: dict, raw_dir: Path) -> str:
    """Name used for a dataset in error messages."""
    return str(card.get("name") or card.get("display_name") or Path(raw_dir).name)


def redownload_remedy(raw_dir: Path) -> str:
    """Standard remedy for damaged or incomplete raw data."""
    return (
        f"delete the raw directory {raw_dir} and rerun the workflow so it is downloaded "
        "(or regenerated) again"
    )


def conversion_error(dataset: str, path: Path | str, problem: str, remedy: str) -> ConversionError:
    """Build a ConversionError: 'dataset ..., file ...: problem. Remedy: ...'."""
    return ConversionError(f"dataset {dataset!r}, file {path}: {problem}. Remedy: {remedy}.")


def natural_key(text: str) -> list[int | str]:
    """Sort key that orders 'x_2' before 'x_10'."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def relative(path: Path, raw_dir: Path) -> str:
    """Path of a raw file relative to the raw directory, POSIX style."""
    return Path(path).relative_to(raw_dir).as_posix()


def _open_array(path: Path, dataset: str, raw_dir: Path, mode: str | None):
    """Decode an image file fully (truncation surfaces here) and return it as an array."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            if mode is not None and im.mode != mode:
                im = im.convert(mode)
            return np.asarray(im)
    except FileNotFoundError:
        raise conversion_error(
            dataset, path, "file is missing", redownload_remedy(raw_dir)
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise conversion_error(
            dataset, path, f"cannot decode image ({exc})", redownload_remedy(raw_dir)
        ) from exc


def read_rgb(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB, dropping any alpha channel."""
    arr = _open_array(path, dataset, raw_dir, mode="RGB")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def read_label(path: Path, dataset: str, raw_dir: Path) -> np.ndarray:
    """Read a single-channel label image (palette indices kept as-is) as a 2-D integer array."""
    arr = _open_array(path, dataset, raw_dir, mode=None)
    if arr.ndim == 3:
        if not all(np.array_equal(arr[..., 0], arr[..., c]) for c in range(1, arr.shape[2])):
            raise conversion_error(
                dataset,
                path,
                f"label image has {arr.shape[2]} differing channels, expected one",
                "provide single-channel label images as in the dataset's original release",
            )
        arr = arr[..., 0]
    return np.asarray(arr)


def to_mask(values: np.ndarray, dataset: str, path: Path) -> np.ndarray:
    """Cast integer class values to a uint8 mask, refusing values outside 0..255."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise conversion_error(
            dataset, path, f"label has shape {values.shape}, expected 2-D", "check the raw data"
        )
    if values.size and (values.min() < 0 or values.max() > 255 or not _integral(values)):
        raise conversion_error(
            dataset,
            path,
            "label values are not integers in 0..255",
            "check that the label file is the class map of the original release",
        )
    return values.astype(np.uint8)


def check_classes(
    mask: np.ndarray, num_classes: int, dataset: str, path: Path, problem: str, remedy: str
) -> np.ndarray:
    """Return the mask, or raise if it holds values outside the classes 0..num_classes-1.

    `problem` is a template: `{bad}` becomes the offending values, `{last}` the last class.
    """
    bad = np.unique(mask[mask >= num_classes])
    if bad.size:
        problem = problem.format(bad=bad.tolist(), last=num_classes - 1)
        raise conversion_error(dataset, path, problem, remedy)
    return mask


def _integral(values: np.ndarray) -> bool:
    """True if an array holds only whole numbers."""
    return values.dtype.kind in "iub" or bool(np.all(np.mod(values, 1) == 0))


def check_shapes(image: np.ndarray, mask: np.ndarray, dataset: str, path: Path) -> None:
    """Raise if an image and its mask differ in height/width."""
    if image.shape[:2] != mask.shape[:2]:
        raise conversion_error(
            dataset,
            path,
            f"image is {image.shape[0]}x{image.shape[1]} but its label is "
            f"{mask.shape[0]}x{mask.shape[1]}",
            "the image and label files do not belong together; re-download the raw data",
        )


def optional_mat_key(path: Path, key: str, dataset: str, raw_dir: Path) -> np.ndarray | None:
    """Load one variable from a MATLAB .mat file, or None where the file has no such variable."""
    from scipy.io import loadmat

    try:
        data = loadmat(path, variable_names=[key])
    except FileNotFoundError:
        raise conversion_error(
            dataset, path, "file is missing", redownload_remedy(raw_dir)
        ) from None
    except Exception as exc:  # scipy raises many types for damaged files
        raise conversion_error(
            dataset, path, f"cannot read .mat file ({exc})", redownload_remedy(raw_dir)
        ) from exc
    return np.asarray(data[key]) if key in data else None


def load_mat_key(path: Path, key: str, dataset: str, raw_dir: Path) -> np.ndarray:
    """Load one variable from a MATLAB .mat file, with clear errors."""
    data = optional_mat_key(path, key, dataset, raw_dir)
    if data is None:
        raise conversion_error(
            dataset,
            path,
            f".mat file has no variable {key!r}",
            "use the label files of the original release (they carry this variable)",
        )
    return data


def require_mask(
    image_path: Path,
    mask_path: Path,
    dataset: str,
    raw_dir: Path,
    kind: str = "mask",
    missing: str = "the missing mask (re-download the raw data)",
) -> None:
    """Raise naming the image when its `kind` file is missing; the remedy restores `missing`."""
    if not mask_path.is_file():
        raise conversion_error(
            dataset,
            image_path,
            f"image has no {kind} file {relative(mask_path, raw_dir)}",
            f"restore {missing} or remove the image",
        )


def class_index(card: dict, name: str) -> int | None:
    """Index of a class name in the card, or None."""
    classes = list(card.get("classes", []))
    return classes.index(name) if name in classes else None


def converter_names() -> list[str]:
    """Every converter: one module per converter in this package, named after it."""
    import pkgutil

    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _module(name: str):
    """The converter module of a name; unknown names list the valid ones."""
    import importlib

    if name not in converter_names():
        valid = ", ".join(converter_names())
        raise ValueError(f"unknown converter {name!r}; valid converters: {valid}")
    return importlib.import_module(f"densebench.data.converters.{name}")


def get_converter(name: str) -> Converter:
    """Look up a converter by name (its module's `convert`)."""
    return _module(name).convert


def converter_version(name: str) -> int:
    """Version number of a converter (its module's CONVERTER_VERSION)."""
    return int(_module(name).CONVERTER_VERSION)
