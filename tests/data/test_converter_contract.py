"""The contract every paper dataset meets, on a tiny raw tree in its real layout
(tests/data/raw_layouts/<dataset>.py): its archive unpacks and converts into a store that reads
back exactly; images are the source files' pixels; a damaged mask fails naming the file and
leaves nothing; the authors' split list maps one to one; an empty raw folder says what to unpack.

Each dataset's own encodings, naming rules and layout quirks are in tests/data/test_convert_*.py.
"""

from __future__ import annotations

import copy
import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError, get_converter
from densebench.data.download import fetch_sources, unpack_sources
from densebench.data.store import DatasetStore, ValidationError, write_store
from tests.data.raw_layouts import PAPER_DATASETS, convert, layout, layout_names

FRACTIONS = (0.5, 0.25, 0.25)
IMAGE_FILES = (".png", ".tif", ".bmp")
LIST_DIRS = {  # the authors' image folder in their split lists, where not Data/<dataset>/images
    "CoNIC2022": "Data/CoNIC2022/dataset/images",
    "cpm15": "Data/cpm15/processed_semantic_dataset/images",
}


@dataclass
class Tree:
    """A paper dataset's card, raw-layout module and freshly written tiny raw tree."""

    name: str
    card: dict
    layout: ModuleType
    raw: Path


@pytest.fixture(params=PAPER_DATASETS)
def tree(request, registries, tmp_path) -> Tree:
    """The tiny raw tree of one paper dataset (its card without num_images: the tree is tiny)."""
    card = copy.deepcopy(registries.datasets[request.param])
    card.pop("num_images", None)
    module = layout(request.param)
    module.make_raw(tmp_path / "raw", card)
    return Tree(request.param, card, module, tmp_path / "raw")


def served_and_unpacked(tree: Tree, folder: Path) -> tuple[Path, dict]:
    """Zip the tree, make it the card's only source (a file URL), fetch and unpack it."""
    archive = folder / "server" / f"{tree.name}.zip"
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(tree.raw.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(tree.raw).as_posix())
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    source = {"url": archive.as_uri(), "filename": archive.name, "sha256": sha, "kind": "http"}
    card = dict(tree.card, access="open", sources=[source])
    fetch_sources(tree.name, card, folder / "download")
    unpack_sources(tree.name, card, folder / "download", folder / "unpacked")
    return folder / "unpacked", card


def store(tree: Tree, samples, out: Path, policy: str, split_list: dict | None = None) -> None:
    """Write samples as the tree's store under a split policy."""
    write_store(
        samples,
        tree.card,
        tree.name,
        out,
        split_policy=policy,
        seed=0,
        fractions=FRACTIONS,
        split_list=split_list,
    )


def left_behind(out: Path) -> list[str]:
    """The store, or temporaries of it, found next to `out`."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.lstrip(".").startswith(out.name))


def check_splits(meta: list[dict], policy: str) -> None:
    """Official: official test (and own val) kept; seeded: no group straddles two splits."""
    splits = [m["split"] for m in meta]
    if policy == "official":
        official = [m["official_split"] for m in meta]
        assert [s == "test" for s in splits] == [o == "test" for o in official]
        if "val" in official:  # the dataset's own validation set: nothing is carved
            assert splits == official
        return
    split_of: dict[str, str] = {}
    for m in meta:
        assert split_of.setdefault(m["group_id"], m["split"]) == m["split"], m["group_id"]


def names_the_file(error: Exception, bad: Path, raw: Path) -> bool:
    """The error names the damaged file, or (store validation) the source file of its sample."""
    message = str(error)
    if bad.relative_to(raw).as_posix() in message:
        return True
    source = re.search(r"\(source file (.+?)\)", message)
    return isinstance(error, ValidationError) and bool(source) and Path(source[1]).stem == bad.stem


def paper_listing(dataset: str, splits: dict[str, list[str]]) -> dict:
    """A split list in the authors' format: entries Data/<dataset>/images/<sample id>.png."""
    folder = LIST_DIRS.get(dataset, f"Data/{dataset}/images")
    masks = folder.removesuffix("images") + "masks"
    entries = {
        split: [{"image_path": f"{folder}/{i}.png", "mask_path": f"{masks}/{i}.png"} for i in ids]
        for split, ids in splits.items()
    }
    return {"data": entries}


def test_every_paper_dataset_has_a_raw_layout():
    """One raw-layout module per card with an authors' split list, and no other."""
    assert layout_names() == set(PAPER_DATASETS)


def test_archive_converts_into_a_store_that_reads_back(tree, tmp_path):
    """fetch -> unpack -> convert -> store as the workflow chains them; the store holds the
    samples exactly with their provenance; the card's official_split says whether they have one."""
    unpacked, card = served_and_unpacked(tree, tmp_path)
    samples = convert(unpacked, card)
    assert any(s.official_split for s in samples) == card["official_split"]
    policy = "official" if card["official_split"] else "seeded"
    store(tree, samples, tmp_path / "store.zarr", policy)
    written = DatasetStore(tmp_path / "store.zarr")
    assert written.classes == card["classes"] and written.attrs["converter"] == card["converter"]
    assert [m["id"] for m in written.samples] == [s.sample_id for s in samples]
    for i, (meta, sample) in enumerate(zip(written.samples, samples, strict=True)):
        provenance = (sample.source_file, str(sample.group_id), sample.official_split)
        assert (meta["source_file"], meta["group_id"], meta["official_split"]) == provenance
        image, mask = written.read(i)
        assert np.array_equal(image, sample.image) and np.array_equal(mask, sample.mask)
    check_splits(written.samples, policy)


def test_images_are_the_source_files_pixels(tree):
    """Each sample's source file exists; an image file's RGB channels are the image (alpha
    dropped; a layout with `RGBA` has such a file)."""
    alpha = False
    for sample in convert(tree.raw, tree.card):
        source = tree.raw / sample.source_file
        assert source.is_file(), sample.source_file
        if source.suffix.lower() in IMAGE_FILES:
            pixels = np.asarray(Image.open(source))
            alpha |= pixels.shape[2] == 4
            assert np.array_equal(sample.image, pixels[..., :3]), sample.source_file
    assert alpha == hasattr(tree.layout, "RGBA")


def test_corrupt_mask_fails_naming_the_file_and_leaves_nothing(tree, tmp_path):
    """A damaged label stops the streamed conversion with the dataset, file and a remedy named."""
    bad = tree.layout.corrupt_mask(tree.raw)
    out = tmp_path / "store.zarr"
    samples = get_converter(tree.card["converter"])(tree.raw, tree.card)
    with pytest.raises((ConversionError, ValidationError)) as info:
        store(tree, samples, out, "seeded")
    assert names_the_file(info.value, bad, tree.raw), str(info.value)
    message = str(info.value)
    assert tree.card["display_name"] in message and "Remedy" in message
    assert getattr(tree.layout, "CORRUPT_DETAIL", "") in message
    assert left_behind(out) == []


def test_paper_split_list_maps_one_to_one(tree, tmp_path):
    """Listed samples take the list's split (matched by stem, not position), the unlisted one is
    unused; an entry no sample matches fails naming it, leaving nothing."""
    samples = convert(tree.raw, tree.card)
    ids = [s.sample_id for s in samples]
    splits = {"train": ids[-4::-1], "val": [ids[-3]], "test": [ids[-2]]}
    store(tree, samples, tmp_path / "paper.zarr", "paper", paper_listing(tree.name, splits))
    written = {m["id"]: m["split"] for m in DatasetStore(tmp_path / "paper.zarr").samples}
    assert written == {i: s for s, listed in splits.items() for i in listed} | {ids[-1]: "unused"}
    listing = paper_listing(tree.name, dict(splits, test=[ids[-2], "not_converted_000000"]))
    with pytest.raises(ValueError, match=rf"dataset {tree.name}: .*not_converted_000000"):
        store(tree, samples, tmp_path / "bad.zarr", "paper", listing)
    assert left_behind(tmp_path / "bad.zarr") == []


@pytest.mark.parametrize("name", PAPER_DATASETS)
def test_empty_raw_folder_says_what_to_unpack(registries, tmp_path, name):
    """An empty raw folder is refused naming the dataset, with a remedy."""
    card = registries.datasets[name]
    with pytest.raises(ConversionError, match="Remedy") as info:
        convert(tmp_path, card)
    assert card["display_name"] in str(info.value)
