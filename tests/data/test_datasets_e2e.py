"""Every paper dataset end to end on a tiny archive in its real layout, served from a file URL:
verify -> unpack -> convert -> validate -> zarr; and the ways it must fail, leaving nothing."""

from __future__ import annotations

import copy
import hashlib
import importlib
import zipfile
from pathlib import Path

import pytest

from densebench.data.converters import ConversionError, get_converter
from densebench.data.download import ChecksumError, RawDataError, fetch_sources, unpack_sources
from densebench.data.store import DatasetStore, ValidationError, write_store

PAPER_DATASETS = [
    "BCSS", "COSAS24", "CRAG", "CoCaHis", "CoNIC2022", "CoNSeP", "EBHI", "GlaS", "Janowczyk",
    "Lizard", "NuCLS", "PanNuke", "RINGS", "TNBC", "WSSS4LUAD", "cpm15", "cpm17", "kumar",
]  # fmt: skip


def served_archive(tmp_path: Path, dataset: str, card: dict, damage=None) -> dict:
    """Build the tiny raw tree, zip it, and point the card's only source at it."""
    layout = importlib.import_module(f"tests.data.raw_layouts.{dataset}")
    tree = tmp_path / "tree"
    layout.make_raw(tree, card)
    damaged = layout.corrupt_mask(tree) if damage == "mask" else None
    archive = tmp_path / "server" / f"{dataset}.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sorted(tree.rglob("*")):
            if path.is_file():
                handle.write(path, path.relative_to(tree).as_posix())
    if damage == "truncate":
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    card = dict(card, access="open")
    card.pop("num_images", None)  # the tiny tree has fewer images than the real dataset
    card["sources"] = [
        {"url": archive.as_uri(), "filename": archive.name, "sha256": sha, "kind": "http"}
    ]
    return {"card": card, "damaged": damaged}


def pipeline(tmp_path: Path, dataset: str, card: dict) -> Path:
    """fetch -> unpack -> convert -> store, as the workflow's rules chain them."""
    raw, unpacked, store = (tmp_path / "raw", tmp_path / "unpacked", tmp_path / "store.zarr")
    fetch_sources(dataset, card, raw)
    unpack_sources(dataset, card, raw, unpacked)
    samples = get_converter(card["converter"])(unpacked, card)
    write_store(samples, card, dataset, store, split_policy="seeded", seed=0,
                fractions=(0.5, 0.25, 0.25))  # fmt: skip
    return store


def left_behind(tmp_path: Path) -> list[str]:
    """Outputs or temporaries of the pipeline present in tmp_path."""
    names = {"raw", "unpacked", "store.zarr"}
    return sorted(p.name for p in tmp_path.iterdir() if p.name in names or p.name.startswith("."))


@pytest.fixture
def card(registries, request) -> dict:
    """The dataset's registry card."""
    return copy.deepcopy(registries.datasets[request.param])


@pytest.mark.parametrize("card", PAPER_DATASETS, indirect=True, ids=PAPER_DATASETS)
def test_archive_to_store(tmp_path, card, request):
    dataset = request.node.callspec.id
    served = served_archive(tmp_path, dataset, card)
    store = DatasetStore(pipeline(tmp_path, dataset, served["card"]))
    assert len(store) >= 2 and store.classes == card["classes"]
    image, mask = store.read(0)
    assert image.ndim == 3 and image.shape[2] == 3 and mask.shape == image.shape[:2]
    assert set(mask.flatten().tolist()) <= set(range(len(card["classes"]))) | {255}
    assert store.attrs["converter"] == card["converter"]


@pytest.mark.parametrize("card", PAPER_DATASETS, indirect=True, ids=PAPER_DATASETS)
def test_wrong_checksum_fails_and_leaves_nothing(tmp_path, card, request):
    dataset = request.node.callspec.id
    served = served_archive(tmp_path, dataset, card)["card"]
    served["sources"][0]["sha256"] = "0" * 64
    with pytest.raises(ChecksumError, match=f"{dataset}.zip"):
        pipeline(tmp_path, dataset, served)
    assert left_behind(tmp_path) == []


@pytest.mark.parametrize("card", PAPER_DATASETS, indirect=True, ids=PAPER_DATASETS)
def test_truncated_archive_fails_and_leaves_nothing(tmp_path, card, request):
    dataset = request.node.callspec.id
    served = served_archive(tmp_path, dataset, card, damage="truncate")["card"]
    with pytest.raises(RawDataError, match="truncated or corrupt"):
        pipeline(tmp_path, dataset, served)
    assert left_behind(tmp_path) == ["raw"]  # the verified download stays; nothing unpacked


@pytest.mark.parametrize("card", PAPER_DATASETS, indirect=True, ids=PAPER_DATASETS)
def test_malformed_mask_fails_naming_the_file(tmp_path, card, request):
    dataset = request.node.callspec.id
    served = served_archive(tmp_path, dataset, card, damage="mask")
    with pytest.raises((ConversionError, ValidationError)) as info:
        pipeline(tmp_path, dataset, served["card"])
    assert served["damaged"].name in str(info.value)
    assert "store.zarr" not in left_behind(tmp_path)
    assert not any(p.name.startswith(".store.zarr") for p in tmp_path.iterdir())


def test_paper_split_list_maps_one_to_one(tmp_path, registries):
    card = copy.deepcopy(registries.datasets["kumar"])
    served = served_archive(tmp_path, "kumar", card)["card"]
    raw, unpacked = tmp_path / "raw", tmp_path / "unpacked"
    fetch_sources("kumar", served, raw)
    unpack_sources("kumar", served, raw, unpacked)
    ids = [s.sample_id for s in get_converter("kumar")(unpacked, served)]
    entry = {"image_path": "Data/kumar/images/{}.png", "mask_path": "Data/kumar/masks/{}.png"}

    def listing(names):
        rows = [{k: v.format(n) for k, v in entry.items()} for n in names]
        return {"num_classes": 2, "data": {"train": rows[:-2], "val": rows[-2:-1],
                                           "test": rows[-1:]}}  # fmt: skip

    samples = get_converter("kumar")(unpacked, served)
    write_store(samples, served, "kumar", tmp_path / "s.zarr", split_policy="paper", seed=0,
                fractions=(0.7, 0.2, 0.1), split_list=listing(ids))  # fmt: skip
    store = DatasetStore(tmp_path / "s.zarr")
    assert [store.samples[i]["id"] for i in store.indices("test")] == ids[-1:]
    samples = get_converter("kumar")(unpacked, served)
    with pytest.raises(ValueError, match="kumar_train_sample_999999"):
        write_store(samples, served, "kumar", tmp_path / "t.zarr", split_policy="paper", seed=0,
                    fractions=(0.7, 0.2, 0.1),
                    split_list=listing([*ids, "kumar_train_sample_999999"]))  # fmt: skip
    assert not (tmp_path / "t.zarr").exists()
