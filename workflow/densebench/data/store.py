"""One zarr (v3) store per dataset: validated samples written atomically, read lazily.

Layout of `resources/datasets/<dataset>.zarr`:
  images (N, Hmax, Wmax, 3) uint8, fill 0,   dims (sample, y, x, channel)
  masks  (N, Hmax, Wmax)    uint8, fill 255, dims (sample, y, x)
chunked one image per chunk (spatial tiles of at most 512 px); an image smaller than Hmax x Wmax
sits at the top-left and its true size is in the per-sample metadata: group attribute `samples`,
a list of {id, split, height, width, source_file, group_id, official_split} in store order;
under split policy "paper" each listed sample also has `list_index`, its position in its split of
the authors' list, and `indices(split)` iterates in that order (the authors' image order).

Memory: `write_store` makes a single pass over the samples (so a converter runs once), validating
each one and spilling it to a staging folder of .npy files next to the output; only once every
sample is valid and Hmax/Wmax are known does it create the arrays and copy the staged samples in.
At most one sample is in memory at a time. Everything is written under a temporary sibling name
and renamed onto the output only when complete; on failure the temporary and staging folders are
removed and the output path is left untouched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from densebench.atomic import atomic_output, remove, temp_sibling
from densebench.data.converters import IGNORE_INDEX, Sample, converter_version
from densebench.data.splits import assign_splits, paper_positions, paper_split

TILE = 1024
"""Chunk side: one chunk per image up to 1024 px (the paper's inputs), tiles beyond."""


class ValidationError(ValueError):
    """A sample or the dataset as a whole breaks the store's data contract."""


def _invalid(dataset: str, sample: Sample, problem: str, remedy: str) -> ValidationError:
    """ValidationError naming the dataset, the sample's source file, the problem and the remedy."""
    return ValidationError(
        f"dataset {dataset!r}, sample {sample.sample_id!r} (source file {sample.source_file}): "
        f"{problem}. Remedy: {remedy}."
    )


def validate_sample(sample: Sample, num_classes: int, dataset: str) -> None:
    """Raise ValidationError unless image is (H,W,3) uint8 and mask (H,W) uint8 of class ids."""
    image, mask = np.asarray(sample.image), np.asarray(sample.mask)
    fix = "fix the dataset's converter (or its dataset card)"
    if image.ndim != 3 or image.shape[2] != 3:
        raise _invalid(
            dataset, sample, f"image has shape {image.shape}, expected (H, W, 3) RGB", fix
        )
    if image.dtype != np.uint8:
        raise _invalid(dataset, sample, f"image dtype is {image.dtype}, expected uint8", fix)
    if mask.ndim != 2 or mask.dtype != np.uint8:
        raise _invalid(
            dataset, sample, f"mask is {mask.dtype} {mask.shape}, expected uint8 (H, W)", fix
        )
    if mask.shape != image.shape[:2]:
        raise _invalid(
            dataset,
            sample,
            f"mask shape {mask.shape} differs from image shape {image.shape[:2]}",
            fix,
        )
    if min(mask.shape) == 0:
        raise _invalid(dataset, sample, "image is empty", fix)
    values = np.unique(mask)
    bad = values[(values >= num_classes) & (values != IGNORE_INDEX)]
    if bad.size:
        raise _invalid(
            dataset,
            sample,
            f"mask values {bad.tolist()} are not class indices 0..{num_classes - 1} "
            f"(or {IGNORE_INDEX} = ignore)",
            "map them to the card's classes in the converter, or add the classes to the card",
        )


def _stage(samples: Iterable[Sample], card: dict, dataset: str, staging: Path) -> list[dict]:
    """Validate every sample, spill it to staging/<i>.{image,mask}.npy; return its metadata."""
    num_classes = len(card["classes"])
    meta: list[dict] = []
    seen: set[str] = set()
    for i, sample in enumerate(samples):
        validate_sample(sample, num_classes, dataset)
        if sample.sample_id in seen:
            raise _invalid(
                dataset, sample, "duplicate sample id", "make the converter's ids unique"
            )
        seen.add(sample.sample_id)
        np.save(staging / f"{i}.image.npy", sample.image)
        np.save(staging / f"{i}.mask.npy", sample.mask)
        meta.append(
            {
                "id": sample.sample_id,
                "height": int(sample.mask.shape[0]),
                "width": int(sample.mask.shape[1]),
                "source_file": sample.source_file,
                "group_id": str(sample.group_id),
                "official_split": sample.official_split,
            }
        )
    expected = card.get("num_images")
    if not meta:
        raise ValidationError(f"dataset {dataset!r}: the converter produced no samples")
    if expected is not None and len(meta) != int(expected):
        raise ValidationError(
            f"dataset {dataset!r}: converted {len(meta)} images but the dataset card says "
            f"num_images: {expected}. Remedy: check the raw data is complete (re-download it), "
            "or correct num_images in the card"
        )
    return meta


def _group_attrs(
    card: dict,
    dataset: str,
    meta: list[dict],
    policy: str,
    seed: int,
    fractions: tuple[float, float, float],
) -> dict:
    """Group attributes: provenance, classes, split settings and per-sample metadata."""
    from densebench import __version__

    name = card.get("converter")
    attrs = {
        "dataset": dataset,
        "classes": list(card["classes"]),
        "num_classes": len(card["classes"]),
        "ignore_index": IGNORE_INDEX,
        "category": card.get("category"),
        "mpp": card.get("mpp"),
        "licence": card.get("licence"),
        "converter": name,
        "converter_version": converter_version(name) if name else None,
        "split_policy": policy,
        "split_seed": int(seed),
        "split_fractions": [float(f) for f in fractions],
        "densebench_version": __version__,
        "samples": meta,
    }
    if "homepage" in card:
        attrs["homepage"] = card["homepage"]
    return attrs


def write_store(
    samples: Iterable[Sample],
    card: dict,
    dataset: str,
    out_path: Path,
    *,
    split_policy: str,
    seed: int,
    fractions: tuple[float, float, float],
    split_list: dict | None = None,
) -> None:
    """Validate samples and write them as one zarr v3 store at out_path, atomically.

    split_policy "paper" takes the splits from `split_list` (the authors' published JSON)."""
    out_path = Path(out_path)
    staging = temp_sibling(out_path, "staging")
    remove(staging)
    try:
        staging.mkdir(parents=True)
        meta = _stage(samples, card, dataset, staging)
        if split_policy == "paper":
            if split_list is None:
                raise ValueError(f"dataset {dataset}: split policy 'paper' needs the split list")
            ids = [m["id"] for m in meta]
            splits = paper_split(ids, split_list, dataset)
            for m, position in zip(meta, paper_positions(ids, split_list, dataset), strict=True):
                m["list_index"] = position
        else:
            splits = assign_splits(
                [m["group_id"] for m in meta],
                [m["official_split"] for m in meta],
                split_policy,
                fractions,
                seed,
            )
        for m, split in zip(meta, splits, strict=True):
            m["split"] = split
        with atomic_output(out_path) as tmp:
            _write_arrays(
                tmp, meta, staging, _group_attrs(card, dataset, meta, split_policy, seed, fractions)
            )
    finally:
        remove(staging)


def _write_arrays(path: Path, meta: list[dict], staging: Path, attrs: dict) -> None:
    """Create the zarr group with its image and mask arrays from the staged samples."""
    import zarr

    n = len(meta)
    hmax, wmax = max(m["height"] for m in meta), max(m["width"] for m in meta)
    tile = (min(hmax, TILE), min(wmax, TILE))
    from zarr.codecs import BloscCodec

    # LZ4 (with byte shuffle) decodes ~2.5x faster than zarr's default zstd on H&E images.
    codec = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")
    group = zarr.open_group(path, mode="w", zarr_format=3, attributes=attrs)
    images = group.create_array(
        "images",
        shape=(n, hmax, wmax, 3),
        dtype="uint8",
        chunks=(1, *tile, 3),
        compressors=codec,
        fill_value=0,
        dimension_names=("sample", "y", "x", "channel"),
    )
    masks = group.create_array(
        "masks",
        shape=(n, hmax, wmax),
        dtype="uint8",
        chunks=(1, *tile),
        compressors=codec,
        fill_value=IGNORE_INDEX,
        dimension_names=("sample", "y", "x"),
    )
    for i, m in enumerate(meta):
        h, w = m["height"], m["width"]
        images[i, :h, :w, :] = np.load(staging / f"{i}.image.npy")
        masks[i, :h, :w] = np.load(staging / f"{i}.mask.npy")


class DatasetStore:
    """Lazy, fork-safe reader of a dataset store (re-opens the zarr group in a new process)."""

    def __init__(self, path: Path | str) -> None:
        """Remember the path; nothing is opened until first access."""
        self.path = Path(path)
        self._group = None
        self._arrays: tuple | None = None
        self._attrs: dict | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        """Pickle without the open handle (for spawned DataLoader workers)."""
        return {"path": self.path, "_group": None, "_arrays": None, "_attrs": None, "_pid": None}

    def __repr__(self) -> str:
        """Short description."""
        return f"DatasetStore({str(self.path)!r})"

    def _missing(self, why: str) -> FileNotFoundError:
        """FileNotFoundError naming the path and the snakemake target that builds it."""
        name = self.path.name.removesuffix(".zarr") or "<dataset>"
        return FileNotFoundError(
            f"{self.path} is not a dataset store ({why}); build it with "
            f"`snakemake resources/datasets/{name}.zarr`"
        )

    @property
    def group(self):
        """The zarr group, opened on first use and re-opened after a fork (pid change)."""
        if self._group is None or self._pid != os.getpid():
            import zarr

            if not (self.path / "zarr.json").is_file():
                raise self._missing("no zarr.json")
            try:
                group = zarr.open_group(self.path, mode="r", zarr_format=3)
            except Exception as exc:  # zarr raises several types for non-groups
                raise self._missing(f"cannot open as a zarr group: {exc}") from exc
            attrs = group.attrs.asdict()
            if "samples" not in attrs or "images" not in group or "masks" not in group:
                raise self._missing("no images/masks arrays or samples metadata")
            self._arrays = (group["images"], group["masks"])
            self._group, self._attrs, self._pid = group, attrs, os.getpid()
        return self._group

    @property
    def attrs(self) -> dict:
        """Group attributes (a plain dict)."""
        self.group  # noqa: B018 - opens / re-opens
        assert self._attrs is not None
        return self._attrs

    @property
    def classes(self) -> list[str]:
        """Class names, index = class id."""
        return list(self.attrs["classes"])

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return int(self.attrs["num_classes"])

    @property
    def ignore_index(self) -> int:
        """Mask value that carries no label."""
        return int(self.attrs["ignore_index"])

    @property
    def samples(self) -> list[dict]:
        """Per-sample metadata in store order."""
        return list(self.attrs["samples"])

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.attrs["samples"])

    def indices(self, split: str) -> list[int]:
        """Store indices of one split ("train", "val" or "test") in iteration order.

        That is the authors' list order when every member has a `list_index` (split policy
        "paper"; see splits.paper_positions), else store order.
        """
        if split not in ("train", "val", "test"):
            raise ValueError(f"unknown split {split!r}; valid splits: train, val, test")
        samples = self.attrs["samples"]
        members = [i for i, s in enumerate(samples) if s["split"] == split]
        if members and all(samples[i].get("list_index") is not None for i in members):
            members.sort(key=lambda i: samples[i]["list_index"])
        return members

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Native-size (H, W, 3) uint8 image and (H, W) uint8 mask of sample i."""
        samples = self.attrs["samples"]
        if not -len(samples) <= i < len(samples):
            raise IndexError(f"sample index {i} out of range for {len(samples)} samples")
        i %= len(samples)
        h, w = samples[i]["height"], samples[i]["width"]
        self.group  # noqa: B018 - opens / re-opens
        images, masks = self._arrays
        return images[i, :h, :w, :], masks[i, :h, :w]
