"""Tests of the per-dataset zarr store: round trip, layout, validation, atomicity, fork safety."""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from densebench import __version__
from densebench.data.converters import Sample, get_converter
from densebench.data.store import DatasetStore, ValidationError, write_store
from densebench.data.synthetic import write_synthetic_raw
from tests.paper_lists import TEST_ORDER, list_stems, write_tnbc_store

CARD = {
    "display_name": "Store test",
    "category": "nuclear",
    "licence": "CC0-1.0",
    "mpp": 0.5,
    "homepage": "https://example.org/data",
    "classes": ["background", "inflammatory", "epithelial", "spindle"],
    "num_images": 9,
    "converter": "consep_mat",
    "synthetic": {"style": "consep", "num_images": 9, "height": 40, "width": 48, "seed": 31},
}
OPTS = {"split_policy": "official", "seed": 5, "fractions": (0.7, 0.2, 0.1)}


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    """Converted samples of a small synthetic CoNSeP-style dataset."""
    raw = tmp_path_factory.mktemp("raw") / "demo"
    write_synthetic_raw(CARD, raw)
    return list(get_converter("consep_mat")(raw, CARD))


def ragged(n: int = 6) -> list[Sample]:
    """Samples of different sizes (to test top-left placement and fill values)."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        h, w = 20 + 3 * i, 30 - 2 * i
        out.append(
            Sample(
                sample_id=f"s{i}",
                image=rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                mask=rng.choice(np.array([0, 1, 2, 255], np.uint8), (h, w)),
                source_file=f"images/s{i}.png",
                group_id=f"p{i // 2}",
                official_split=None,
            )
        )
    return out


def leftovers(directory: Path) -> list[str]:
    """Names of everything in a directory (temp dirs included)."""
    return sorted(p.name for p in directory.iterdir())


def test_round_trip_and_attrs(samples, tmp_path):
    """read(i) returns the samples; attrs carry provenance, classes and per-sample metadata."""
    out = tmp_path / "demo.zarr"
    write_store(iter(samples), CARD, "demo", out, **OPTS)
    assert leftovers(tmp_path) == ["demo.zarr"]
    store = DatasetStore(out)
    assert len(store) == len(samples) == 9
    for i, s in enumerate(samples):
        image, mask = store.read(i)
        assert np.array_equal(image, s.image) and np.array_equal(mask, s.mask)
    attrs = store.attrs
    expected = {
        "dataset": "demo",
        "classes": CARD["classes"],
        "num_classes": 4,
        "ignore_index": 255,
        "category": "nuclear",
        "mpp": 0.5,
        "licence": "CC0-1.0",
        "homepage": "https://example.org/data",
        "converter": "consep_mat",
        "converter_version": 1,
        "split_policy": "official",
        "split_seed": 5,
        "split_fractions": [0.7, 0.2, 0.1],
        "densebench_version": __version__,
    }
    assert {k: attrs[k] for k in expected} == expected
    assert "display_name" not in attrs  # a description, not part of the store's identity
    assert store.classes == CARD["classes"] and store.num_classes == 4
    assert store.ignore_index == 255
    meta = store.samples
    assert [m["id"] for m in meta] == [s.sample_id for s in samples]
    assert [m["source_file"] for m in meta] == [s.source_file for s in samples]
    assert [m["group_id"] for m in meta] == [s.group_id for s in samples]
    assert all((m["height"], m["width"]) == (40, 48) for m in meta)
    assert [m["split"] == "test" for m in meta] == [s.official_split == "test" for s in samples]


def test_indices_cover_all_samples_once(samples, tmp_path):
    """train/val/test indices partition the store; unknown splits are rejected."""
    out = tmp_path / "demo.zarr"
    write_store(samples, CARD, "demo", out, **{**OPTS, "split_policy": "seeded"})
    store = DatasetStore(out)
    parts = [store.indices(s) for s in ("train", "val", "test")]
    assert sorted(i for part in parts for i in part) == list(range(9)) and all(parts)
    with pytest.raises(ValueError, match="train, val, test"):
        store.indices("dev")


def test_layout_ragged_sizes(tmp_path):
    """Arrays are (N, Hmax, Wmax[, 3]) with per-image chunks, dims and fills; read() crops."""
    data = ragged()
    card = {"classes": ["background", "a", "b"], "display_name": "Ragged"}
    out = tmp_path / "ragged.zarr"
    write_store(
        data, card, "ragged", out, split_policy="seeded", seed=0, fractions=(0.5, 0.25, 0.25)
    )
    group = zarr.open_group(out, mode="r")
    images, masks = group["images"], group["masks"]
    assert images.shape == (6, 35, 30, 3) and masks.shape == (6, 35, 30)
    assert images.chunks == (1, 35, 30, 3) and masks.chunks == (1, 35, 30)
    assert images.metadata.dimension_names == ("sample", "y", "x", "channel")
    assert masks.metadata.dimension_names == ("sample", "y", "x")
    assert images.dtype == np.uint8 and masks.dtype == np.uint8
    assert images.fill_value == 0 and masks.fill_value == 255
    assert group.attrs["converter"] is None and "homepage" not in group.attrs
    assert np.all(masks[0, 20:, :] == 255) and np.all(images[5, :, 20:, :] == 0)
    store = DatasetStore(out)
    for i, s in enumerate(data):
        image, mask = store.read(i)
        assert image.shape == s.image.shape and np.array_equal(mask, s.mask)
    assert np.array_equal(store.read(-1)[0], data[-1].image)
    with pytest.raises(IndexError):
        store.read(6)


@pytest.mark.parametrize(("side", "chunk"), [(600, 600), (1100, 1024)])
def test_one_chunk_per_image_up_to_1024_px(tmp_path, side, chunk):
    """Images up to 1024 px are one chunk; larger ones are tiled in 1024-px chunks."""
    big = Sample("big", np.zeros((side, side, 3), np.uint8), np.zeros((side, side), np.uint8),
                 "b.png", "g", None)  # fmt: skip
    out = tmp_path / "big.zarr"
    write_store([big], {"classes": ["bg"]}, "big", out, split_policy="seeded", seed=0,
                fractions=(1.0, 0.0, 0.0))  # fmt: skip
    assert zarr.open_group(out, mode="r")["images"].chunks == (1, chunk, chunk, 3)


def corrupt(samples: list[Sample], index: int, **changes) -> list[Sample]:
    """Copy of samples with one sample's fields replaced."""
    fields = {**samples[index].__dict__, **changes}
    return [*samples[:index], Sample(**fields), *samples[index + 1 :]]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("mask_value", r"mask values \[7\]"),
        ("rgba", r"expected \(H, W, 3\)"),
        ("shape", "differs from image shape"),
        ("float", "dtype"),
    ],
)
def test_invalid_sample_leaves_nothing(samples, tmp_path, change, message):
    """Each violation names dataset and source file; no output and no temp dir remain."""
    s = samples[4]
    if change == "mask_value":
        mask = s.mask.copy()
        mask[0, 0] = 7
        bad = corrupt(samples, 4, mask=mask)
    elif change == "rgba":
        alpha = np.full((*s.image.shape[:2], 1), 255, np.uint8)
        bad = corrupt(samples, 4, image=np.concatenate([s.image, alpha], axis=2))
    elif change == "shape":
        bad = corrupt(samples, 4, mask=s.mask[:-1])
    else:
        bad = corrupt(samples, 4, image=s.image.astype(np.float32))
    out = tmp_path / "demo.zarr"
    with pytest.raises(ValidationError, match=message) as err:
        write_store(bad, CARD, "demo", out, **OPTS)
    assert "'demo'" in str(err.value) and s.source_file in str(err.value)
    assert "Remedy" in str(err.value)
    assert leftovers(tmp_path) == []


def test_wrong_image_count(samples, tmp_path):
    """A count differing from the card's num_images names both numbers."""
    with pytest.raises(ValidationError, match=r"converted 8 images.*num_images: 9"):
        write_store(samples[:8], CARD, "demo", tmp_path / "demo.zarr", **OPTS)
    assert leftovers(tmp_path) == []


def test_failure_midway_leaves_nothing(samples, tmp_path):
    """A generator that raises on the 5th sample leaves neither output nor temp dirs."""

    def failing() -> Iterator[Sample]:
        for i, s in enumerate(samples):
            if i == 4:
                raise RuntimeError("disk on fire")
            yield s

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_store(failing(), CARD, "demo", tmp_path / "demo.zarr", **OPTS)
    assert leftovers(tmp_path) == []


def test_split_error_leaves_nothing(tmp_path):
    """A split-policy error (no official split) also cleans up."""
    card = {"classes": ["background", "a", "b"]}
    with pytest.raises(ValueError, match="seeded"):
        write_store(ragged(), card, "r", tmp_path / "r.zarr", **OPTS)
    assert leftovers(tmp_path) == []


def test_rewrite_replaces_existing_store(samples, tmp_path):
    """Writing again replaces the old store completely."""
    out = tmp_path / "demo.zarr"
    write_store(ragged(), {"classes": ["background", "a", "b"]}, "demo", out,
                split_policy="seeded", seed=0, fractions=(0.5, 0.25, 0.25))  # fmt: skip
    write_store(samples, CARD, "demo", out, **OPTS)
    assert len(DatasetStore(out)) == 9 and leftovers(tmp_path) == ["demo.zarr"]


def test_failed_rewrite_keeps_previous_store(samples, tmp_path):
    """A failing rewrite leaves a previously completed store untouched (and no temp dirs)."""
    out = tmp_path / "demo.zarr"
    write_store(samples, CARD, "demo", out, **OPTS)
    with pytest.raises(ValidationError):
        write_store(samples[:3], CARD, "demo", out, **OPTS)
    assert len(DatasetStore(out)) == 9 and leftovers(tmp_path) == ["demo.zarr"]


def test_not_a_store(tmp_path):
    """Opening a non-store names the path and the snakemake target."""
    (tmp_path / "foo.zarr").mkdir()
    for path in (tmp_path / "foo.zarr", tmp_path / "missing.zarr"):
        store = DatasetStore(path)  # lazy: no error yet
        with pytest.raises(FileNotFoundError, match=r"resources/datasets/\w+\.zarr") as err:
            store.attrs  # noqa: B018
        assert str(path) in str(err.value)


def test_reopens_after_pid_change_and_pickles(samples, tmp_path):
    """A changed pid (as after fork) re-opens the group; pickling drops the handle."""
    out = tmp_path / "demo.zarr"
    write_store(samples, CARD, "demo", out, **OPTS)
    store = DatasetStore(out)
    first = store.group
    assert store.group is first
    store._pid = -1  # simulate a forked child: the cached handle belongs to another process
    assert store.group is not first
    assert np.array_equal(store.read(2)[1], samples[2].mask)
    clone = pickle.loads(pickle.dumps(store))
    assert clone._group is None and np.array_equal(clone.read(3)[0], samples[3].image)


def test_read_in_forked_child(samples, tmp_path):
    """After the parent has read, a forked child can still read (fresh handle, no hang)."""
    out = tmp_path / "demo.zarr"
    write_store(samples, CARD, "demo", out, **OPTS)
    store = DatasetStore(out)
    store.read(0)
    pid = os.fork()
    if pid == 0:  # child: report success through the exit code only
        code = 1
        try:
            image, _ = store.read(5)
            code = 0 if np.array_equal(image, samples[5].image) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("child process hung reading the store")


def test_paper_store_iterates_splits_in_list_order(tmp_path):
    """Policy "paper": samples keep store order, each split iterates in the authors' list order."""
    store = DatasetStore(write_tnbc_store(tmp_path / "paper.zarr"))
    ids = [m["id"] for m in store.samples]
    assert ids == [*sorted(ids[:-1]), "unlisted_0"]  # store order: the converter's (sorted)

    def split_ids(split: str) -> list[str]:
        return [ids[i] for i in store.indices(split)]

    assert tuple(split_ids("test")) == TEST_ORDER  # 02_2, 06_2, 01_6, 09_4, 06_1
    assert split_ids("train") == list_stems("train") and split_ids("val") == list_stems("val")
    positions = {m["id"]: m["list_index"] for m in store.samples}
    assert [positions[i] for i in TEST_ORDER] == [0, 1, 2, 3, 4]
    assert positions["unlisted_0"] is None and store.samples[-1]["split"] == "unused"


def test_other_policies_keep_store_order(tmp_path):
    store = DatasetStore(write_tnbc_store(tmp_path / "seeded.zarr", policy="seeded"))
    assert all("list_index" not in m for m in store.samples)
    for split in ("train", "val", "test"):
        assert store.indices(split) == sorted(store.indices(split)) and store.indices(split)
