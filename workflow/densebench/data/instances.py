"""Ground-truth instance labels of a dataset: their own product beside its semantic store.

Layout of `resources/datasets/<dataset>.instances.zarr` (zarr v3), written by
`write_instances` from the same converter run as the store, keeping only the instances:
  instances (N, Hmax, Wmax) int32, fill 0, dims (sample, y, x): sample i is the semantic
  store's sample i (same id, same native size, at the top-left like the store's masks);
  0 = background, objects 1..K of each image; chunked one image per chunk (tiles of at most
  1024 px), compressed;
group attributes: `dataset`, `kind` (`nucleus` or `gland`, the card's `instance_labels`),
`sample_ids` and `sizes` ([height, width]) in store order, `objects` (K per sample),
`instance_version` (INSTANCE_VERSION), `converter`, `converter_version`.

Adding the product retrains and rewrites nothing: the semantic store is only read (for its
sample order and sizes), and the card's `instance_labels` is no part of any store's or run's
identity (`densebench.identity.CARD_DESCRIPTIVE`); the product has its own
(`densebench.identity.instance_identity`). `InstanceStore` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from densebench.atomic import atomic_output
from densebench.data.converters import IGNORE_INDEX, Sample, class_index, converter_version

INSTANCE_VERSION = 1
"""Version of the instance product; bump it when every instance store must be rewritten."""
KINDS = ("nucleus", "gland")
"""The kinds of objects a card's `instance_labels` may name (`none`: the dataset has none)."""
TILE = 1024
"""Chunk side, as the semantic store's."""


class InstanceError(ValueError):
    """Instances cannot be written or read; the message names the dataset or file and remedy."""


def instance_kind(card: Mapping[str, Any]) -> str | None:
    """The kind of objects of a dataset's card (`instance_labels`): nucleus, gland, or None."""
    kind = card.get("instance_labels", "none")
    return None if kind == "none" else str(kind)


def check_instances(sample: Sample, kind: str, background: int | None, dataset: str) -> np.ndarray:
    """A sample's instances as int32, checked: the mask's size, ids 0..K, every object pixel
    foreground in the mask (not the background class, not ignored) and, for nuclei, one class
    per object."""
    fix = "fix the dataset's converter (its instances must follow its mask)"

    def invalid(problem: str, remedy: str = fix) -> InstanceError:
        return InstanceError(
            f"dataset {dataset!r}, sample {sample.sample_id!r} (source file "
            f"{sample.source_file}): {problem}. Remedy: {remedy}."
        )

    if sample.instances is None:
        raise invalid(
            f"the converter gives no instances, but the dataset card says instance_labels: {kind}",
            "set `instance_labels: none` on the card if the raw files carry no instances, or "
            "make the converter yield them (Sample.instances)",
        )
    inst, mask = np.asarray(sample.instances), np.asarray(sample.mask)
    if inst.shape != mask.shape or inst.dtype.kind not in "iu":
        raise invalid(f"instances are {inst.dtype} {inst.shape}, expected integer {mask.shape}")
    if inst.size and (inst.min() < 0 or inst.max() > np.iinfo(np.int32).max):
        raise invalid("instance ids are outside 0..2**31-1")
    objects = inst > 0
    if np.any(objects & (mask == IGNORE_INDEX)) or (
        background is not None and np.any(objects & (mask == background))
    ):
        raise invalid("some object pixels are background or ignored in the mask")
    if kind == "nucleus" and objects.any():
        pairs = np.unique(inst[objects].astype(np.int64) * 256 + mask[objects])
        if np.unique(pairs // 256).size != pairs.size:
            raise invalid("a nucleus has pixels of two classes")
    return inst.astype(np.int32)


def write_instances(
    samples: Iterable[Sample], card: Mapping[str, Any], dataset: str, store: Path, out: Path
) -> None:
    """Write the instances of a converter's samples as `out`, aligned to the semantic `store`
    (same ids in the same order, same sizes), atomically."""
    import zarr
    from zarr.codecs import BloscCodec

    from densebench.data.store import DatasetStore

    kind = instance_kind(card)
    if kind not in KINDS:
        raise InstanceError(
            f"dataset {dataset!r}: its card says instance_labels: {card.get('instance_labels')!r}, "
            f"so it has no instance product. Remedy: set instance_labels to one of {list(KINDS)} "
            "if its raw files carry instances"
        )
    meta = DatasetStore(store).samples
    ids = [m["id"] for m in meta]
    sizes = [[int(m["height"]), int(m["width"])] for m in meta]
    background = class_index(dict(card), "background")
    name = card.get("converter")
    attrs = {
        "dataset": dataset,
        "kind": kind,
        "sample_ids": ids,
        "sizes": sizes,
        "instance_version": INSTANCE_VERSION,
        "converter": name,
        "converter_version": converter_version(name) if name else None,
    }
    rebuild = f"rebuild the semantic store {store} (delete it and rerun the workflow)"
    hmax, wmax = max(h for h, _ in sizes), max(w for _, w in sizes)
    with atomic_output(Path(out)) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3, attributes=attrs)
        array = group.create_array(
            "instances",
            shape=(len(ids), hmax, wmax),
            dtype="int32",
            chunks=(1, min(hmax, TILE), min(wmax, TILE)),
            compressors=BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),
            fill_value=0,
            dimension_names=("sample", "y", "x"),
        )
        counts: list[int] = []
        for i, sample in enumerate(samples):
            if i >= len(ids) or sample.sample_id != ids[i]:
                expected = ids[i] if i < len(ids) else "none (the store ends)"
                raise InstanceError(
                    f"dataset {dataset!r}: the converter's sample {i} is {sample.sample_id!r} "
                    f"but the store {store} has {expected!r}. Remedy: {rebuild}"
                )
            inst = check_instances(sample, kind, background, dataset)
            if list(inst.shape) != sizes[i]:
                raise InstanceError(
                    f"dataset {dataset!r}, sample {sample.sample_id!r}: instances are "
                    f"{inst.shape[0]}x{inst.shape[1]} but the store {store} has it "
                    f"{sizes[i][0]}x{sizes[i][1]}. Remedy: {rebuild}"
                )
            array[i, : inst.shape[0], : inst.shape[1]] = inst
            counts.append(int(np.unique(inst[inst > 0]).size))
        if len(counts) != len(ids):
            raise InstanceError(
                f"dataset {dataset!r}: the converter gave {len(counts)} samples but the store "
                f"{store} has {len(ids)}. Remedy: {rebuild}"
            )
        group.attrs["objects"] = counts


class InstanceStore:
    """Reader of a dataset's instance product: `read(i)` is the (H, W) int32 instance map of
    the semantic store's sample i, at its native size."""

    def __init__(self, path: Path | str) -> None:
        """Open the product (its group attributes and array)."""
        import zarr

        self.path = Path(path)
        if not (self.path / "zarr.json").is_file():
            raise FileNotFoundError(self._missing("no zarr.json"))
        group = zarr.open_group(self.path, mode="r", zarr_format=3)
        self.attrs: dict[str, Any] = group.attrs.asdict()
        if "instances" not in group or "sample_ids" not in self.attrs:
            raise FileNotFoundError(self._missing("no instances array or sample_ids"))
        if self.attrs.get("instance_version") != INSTANCE_VERSION:
            raise InstanceError(
                f"{self.path} has instance_version {self.attrs.get('instance_version')}, this "
                f"code reads {INSTANCE_VERSION}. Remedy: delete it and rerun the workflow"
            )
        self._array = group["instances"]

    def _missing(self, why: str) -> str:
        """Why the path is no instance product and the target that builds it."""
        name = self.path.name.removesuffix(".instances.zarr") or "<dataset>"
        return (
            f"{self.path} is not an instance store ({why}); build it with "
            f"`snakemake resources/datasets/{name}.instances.zarr`"
        )

    def __repr__(self) -> str:
        """Short description."""
        return f"InstanceStore({str(self.path)!r})"

    @property
    def sample_ids(self) -> list[str]:
        """The sample ids, in the semantic store's order."""
        return list(self.attrs["sample_ids"])

    @property
    def kind(self) -> str:
        """The kind of objects: nucleus or gland."""
        return str(self.attrs["kind"])

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.attrs["sample_ids"])

    def read(self, i: int) -> np.ndarray:
        """The (H, W) int32 instance map of sample i (0 background, objects 1..K)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"sample index {i} out of range for {n} samples")
        i %= n
        height, width = self.attrs["sizes"][i]
        return np.asarray(self._array[i, :height, :width])
