"""Ground-truth instances: what each converter yields on its tiny raw tree (the objects the tree
was drawn with), the instance store written beside the semantic store and read back, its
errors, and that the card's `instance_labels` changes no store's or run's identity.

The expected objects come from the raw-layout modules' own constants (the boxes each tree
draws), not from the converters.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from densebench.cli import main
from densebench.data.converters import IGNORE_INDEX, Sample, get_converter
from densebench.data.instances import (
    INSTANCE_VERSION,
    InstanceError,
    InstanceStore,
    instance_kind,
    write_instances,
)
from densebench.data.store import DatasetStore, write_store
from densebench.data.synthetic import write_synthetic_raw
from densebench.identity import instance_identity, store_identity
from densebench.plan import Plan
from densebench.spec import build_run_spec
from tests.data.raw_layouts import convert, layout, layout_names
from tests.data.raw_layouts.CoNSeP import save_mat

SPLIT = {"split_policy": "seeded", "seed": 0, "fractions": (0.5, 0.25, 0.25)}


def card_of(registries, dataset: str) -> dict:
    """A registry card without num_images (the tiny trees are smaller)."""
    card = copy.deepcopy(registries.datasets[dataset])
    card.pop("num_images", None)
    return card


def raw_tree(registries, dataset: str, root: Path) -> tuple[dict, list[Sample]]:
    """A dataset's card and the samples of its tiny raw tree."""
    card = card_of(registries, dataset)
    layout(dataset).make_raw(root, card)
    return card, convert(root, card)


def box(shape: tuple[int, int], where: tuple, corner: bool = True) -> frozenset[int]:
    """Flat pixel indices of a box (slices or (y0, y1, x0, x1)); without its top-left pixel
    when `corner` is False."""
    if not isinstance(where[0], slice):
        where = (slice(where[0], where[1]), slice(where[2], where[3]))
    inside = np.zeros(shape, bool)
    inside[where] = True
    if not corner:
        inside[where[0].start, where[1].start] = False
    return frozenset(np.flatnonzero(inside).tolist())


def objects(sample: Sample) -> dict[frozenset[int], set[int]]:
    """A sample's objects: pixel set -> the mask classes on it."""
    inst = sample.instances
    return {
        frozenset(np.flatnonzero(inst == k).tolist()): set(np.unique(sample.mask[inst == k]))
        for k in range(1, int(inst.max()) + 1)
    }


def drawn(dataset: str, sample: Sample) -> dict[frozenset[int], set[int]]:
    """The objects the dataset's tiny tree draws into a sample: pixel set -> its class(es)."""
    shape, stem = sample.mask.shape, Path(sample.source_file).stem
    mod = layout(dataset)
    if dataset == "CoNSeP":
        return {box(shape, mod.NUCLEUS): {mod.TYPES[stem]}, box(shape, mod.SECOND): {3}}
    if dataset in ("kumar", "cpm15", "cpm17"):
        return {box(shape, mod.NUCLEUS): {1}, box(shape, mod.SECOND): {1}}
    if dataset == "Lizard":  # ORPHAN is missing from `id`: background, no nucleus
        return {box(shape, mod.NUCLEUS): {mod.CLASSES[stem]}, box(shape, mod.SECOND): {6}}
    if dataset == "CoNIC2022":
        i = int(sample.sample_id)
        return {
            box(shape, mod.NUCLEUS_BOX): {mod.NUCLEUS_CLASS[i]},
            box(shape, mod.SECOND_BOX): {2},
        }
    if dataset == "PanNuke":  # the overlap is connective (id 7 beats 3); the void no nucleus
        n = int(sample.sample_id)
        fold, j = n // mod.PER_FOLD + 1, n % mod.PER_FOLD
        return {
            box(shape, mod.NUCLEUS_BOX): {mod.TYPE_OF[(fold, j)]},
            box(shape, mod.OVERLAP_BOX): {2},
        }
    if dataset == "NuCLS":  # the unlabeled nucleus (code 99) is background: no nucleus
        return {box(shape, mod.NUCLEUS_BOX): {mod.CODES[mod.FOVS.index(sample.sample_id)]}}
    if dataset == "CRAG":
        boxes = (
            mod.KNOWN["glands"]
            if stem == mod.KNOWN["sample"]
            else [(2, 10, 2, 10), (20, 30, 20, 34)]
        )
        return {box(shape, b): {1} for b in boxes}
    if dataset == "GlaS":  # each bitmap lacks its top-left pixel
        return {box(shape, b, corner=False): {1} for b in mod._glands(stem, *shape)}
    if dataset == "RINGS":  # one gland box; the known sample's tumour box overlaps it
        gland, _ = mod._boxes(stem, *shape)
        classes = {1, 2} if stem == mod.KNOWN["sample"] else {1}
        return {box(shape, gland): classes}
    raise KeyError(dataset)


INSTANCE_LAYOUTS = ["CRAG", "CoNIC2022", "CoNSeP", "GlaS", "Lizard", "NuCLS", "PanNuke"]
INSTANCE_LAYOUTS += ["RINGS", "cpm15", "cpm17", "kumar"]


@pytest.mark.parametrize("dataset", INSTANCE_LAYOUTS)
def test_converter_yields_the_objects_its_tree_draws(dataset, registries, tmp_path):
    _, samples = raw_tree(registries, dataset, tmp_path / "raw")
    assert samples
    for sample in samples:
        inst = sample.instances
        assert inst is not None and inst.dtype == np.int32 and inst.shape == sample.mask.shape
        assert set(np.unique(inst)) == set(range(int(inst.max()) + 1))  # 0, then 1..K
        assert objects(sample) == drawn(dataset, sample)


def check_contract(card: dict, samples: list[Sample]) -> None:
    """Instances consistent with the mask: object pixels foreground, one class per nucleus."""
    background = card["classes"].index("background")
    for sample in samples:
        inst, mask = sample.instances, sample.mask
        assert inst is not None and inst.shape == mask.shape and inst.dtype == np.int32
        on = inst > 0
        assert not np.any(on & ((mask == background) | (mask == IGNORE_INDEX)))
        if card["instance_labels"] == "nucleus":
            assert all(np.unique(mask[inst == k]).size == 1 for k in np.unique(inst[on]))


def test_every_card_with_instance_labels_gets_instances_and_no_other(registries, tmp_path):
    """Card and converter agree: instances exactly where the card says there are."""
    for dataset in sorted(layout_names() - {"__init__"}):
        card, samples = raw_tree(registries, dataset, tmp_path / dataset)
        if instance_kind(card) is None:
            assert all(s.instances is None for s in samples), dataset
        else:
            check_contract(card, samples)
    assert {d for d in layout_names() if instance_kind(registries.datasets[d])} == set(
        INSTANCE_LAYOUTS
    )


@pytest.mark.parametrize("dataset", ["demo_nuclei", "demo_glands"])
def test_synthetic_demo_instances_are_the_drawn_ones(dataset, registries, tmp_path):
    """The demo's nuclei (.mat inst_map) and glands (instance-id _anno.bmp) come through one
    to one: same partition of the foreground as the raw files."""
    card = copy.deepcopy(registries.datasets[dataset])
    card["synthetic"]["num_images"] = card["num_images"] = 6
    write_synthetic_raw(card, tmp_path / "raw")
    samples = convert(tmp_path / "raw", card)
    check_contract(card, samples)
    for sample in samples:
        path = tmp_path / "raw" / sample.source_file
        if dataset == "demo_nuclei":
            label = path.parent.parent / "Labels" / f"{path.stem}.mat"
            raw = loadmat(label)["inst_map"]
        else:
            raw = np.asarray(Image.open(path.with_name(f"{path.stem}_anno.bmp")))
        on = raw > 0
        assert np.array_equal(on, sample.instances > 0)
        pairs = {(int(a), int(b)) for a, b in zip(raw[on], sample.instances[on], strict=True)}
        assert len(pairs) == len(np.unique(raw[on])) == int(sample.instances.max())
        assert len(pairs) >= 2


def test_original_cpm15_release_gives_the_same_nuclei_as_the_hovernet_layout(registries, tmp_path):
    from tests.data.test_convert_cpm15_original import convert_quietly, make_hovernet, make_original

    card = card_of(registries, "cpm15")
    original = convert_quietly(make_original(tmp_path / "original"), card)
    hovernet = convert(make_hovernet(tmp_path / "hovernet"), card)
    for ours, theirs in zip(original, hovernet, strict=True):
        assert objects(ours) == objects(theirs) and len(objects(ours)) == 3


def test_warwick_glas_annotation_ids_are_the_glands(registries, tmp_path):
    spec = {"style": "glas", "num_images": 4, "height": 40, "width": 56, "seed": 5}
    classes = ["background", "benign_gland", "tumour_gland"]
    write_synthetic_raw({"classes": classes, "synthetic": spec}, tmp_path / "warwick")
    samples = convert(tmp_path / "warwick", card_of(registries, "GlaS"))
    root = tmp_path / "warwick" / "Warwick_QU_Dataset"
    for sample in samples:
        anno = np.asarray(Image.open(root / f"{sample.sample_id}_anno.bmp"))
        want = {frozenset(np.flatnonzero(anno == v).tolist()) for v in np.unique(anno[anno > 0])}
        assert set(objects(sample)) == want


def test_rings_glands_are_the_8_connected_components_of_the_gland_mask(registries, tmp_path):
    card, _ = raw_tree(registries, "RINGS", tmp_path / "raw")
    stem, (height, width) = "P1_D7_4_17_12", (72, 64)
    glands = np.zeros((height, width), bool)
    glands[2:10, 2:10] = True  # A, alone
    glands[20:30, 20:30] = True  # B
    glands[30:40, 30:40] = True  # C: touches B at one corner only (8-connected)
    Image.fromarray(glands).save(tmp_path / "raw" / "TRAIN" / "MANUAL GLANDS" / f"{stem}.png")
    sample = next(s for s in convert(tmp_path / "raw", card) if s.sample_id == stem)
    a = box((height, width), (2, 10, 2, 10))
    b_and_c = box((height, width), (20, 30, 20, 30)) | box((height, width), (30, 40, 30, 40))
    assert set(objects(sample)) == {a, b_and_c}


def test_a_label_without_inst_map_keeps_its_mask_and_gives_no_instances(registries, tmp_path):
    card, before = raw_tree(registries, "CoNSeP", tmp_path / "raw")
    label = tmp_path / "raw" / "CoNSeP" / "Test" / "Labels" / "test_1.mat"
    variables = {k: v for k, v in loadmat(label).items() if not k.startswith("__")}
    save_mat({k: v for k, v in variables.items() if k != "inst_map"}, label)
    after = convert(tmp_path / "raw", card)
    changed = [i for i, s in enumerate(after) if s.instances is None]
    assert [after[i].sample_id for i in changed] == ["consep_Test_sample_000003"]
    assert all(np.array_equal(a.mask, b.mask) for a, b in zip(after, before, strict=True))


# ---- the instance store ----------------------------------------------------------------------


def stores(card: dict, dataset: str, raw: Path, folder: Path) -> tuple[Path, Path]:
    """The semantic store of a raw tree and its instance store, both written here."""
    store, out = folder / f"{dataset}.zarr", folder / f"{dataset}.instances.zarr"
    converter = get_converter(card["converter"])
    write_store(converter(raw, card), card, dataset, store, **SPLIT)
    write_instances(converter(raw, card), card, dataset, store, out)
    return store, out


@pytest.mark.parametrize("dataset", ["CRAG", "Lizard"])
def test_instance_store_round_trips_in_the_semantic_stores_order(dataset, registries, tmp_path):
    """Images of several sizes (padded in the array) read back at their own size."""
    card, samples = raw_tree(registries, dataset, tmp_path / "raw")
    store, out = stores(card, dataset, tmp_path / "raw", tmp_path)
    truth, semantic = InstanceStore(out), DatasetStore(store)
    assert truth.sample_ids == [s["id"] for s in semantic.samples] == [s.sample_id for s in samples]
    assert len(truth) == len(semantic) and truth.kind == card["instance_labels"]
    assert truth.attrs["instance_version"] == INSTANCE_VERSION
    assert truth.attrs["objects"] == [int(s.instances.max()) for s in samples]
    assert len({s.mask.shape for s in samples}) > 1
    for i, sample in enumerate(samples):
        got = truth.read(i)
        assert got.dtype == np.int32 and np.array_equal(got, sample.instances)
        assert got.shape == semantic.read(i)[1].shape
    assert np.array_equal(truth.read(-1), samples[-1].instances)
    with pytest.raises(IndexError):
        truth.read(len(samples))


def test_instance_store_is_no_part_of_the_semantic_store(registries, tmp_path):
    card, _ = raw_tree(registries, "CoNSeP", tmp_path / "raw")
    store, _ = stores(card, "CoNSeP", tmp_path / "raw", tmp_path)
    assert sorted(p.name for p in store.iterdir()) == ["images", "masks", "zarr.json"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_card_with_instances_but_converter_without_fails_naming_the_file(registries, tmp_path):
    card, _ = raw_tree(registries, "TNBC", tmp_path / "raw")
    store = tmp_path / "TNBC.zarr"
    converter = get_converter(card["converter"])
    write_store(converter(tmp_path / "raw", card), card, "TNBC", store, **SPLIT)
    out = tmp_path / "TNBC.instances.zarr"
    with pytest.raises(InstanceError, match=r"instance_labels: 'none'"):
        write_instances(converter(tmp_path / "raw", card), card, "TNBC", store, out)
    card["instance_labels"] = "nucleus"
    with pytest.raises(InstanceError, match=r"'TNBC'.*Slide_\d+/.*\.png.*no instances.*none"):
        write_instances(converter(tmp_path / "raw", card), card, "TNBC", store, out)
    assert not out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_instances_of_another_store_are_refused(registries, tmp_path):
    card, samples = raw_tree(registries, "cpm17", tmp_path / "raw")
    store = tmp_path / "cpm17.zarr"
    write_store(samples[:-1], card, "cpm17", store, **SPLIT)  # one sample short
    out = tmp_path / "cpm17.instances.zarr"
    with pytest.raises(InstanceError, match=r"store .*cpm17\.zarr.*Remedy: rebuild"):
        write_instances(iter(samples), card, "cpm17", store, out)
    assert not out.exists()


def test_instances_that_break_the_mask_are_refused(registries, tmp_path):
    card, samples = raw_tree(registries, "CoNSeP", tmp_path / "raw")
    store = tmp_path / "CoNSeP.zarr"
    write_store(iter(samples), card, "CoNSeP", store, **SPLIT)
    on_background = samples[0].instances.copy()
    on_background[0, 0] = 1  # pixel (0, 0) is background in every mask
    two_classes = samples[0].instances.copy()
    two_classes[samples[0].instances == 2] = 1  # one nucleus over two types
    for bad, problem in ((on_background, "background"), (two_classes, "two classes")):
        broken = [dataclasses.replace(samples[0], instances=bad), *samples[1:]]
        with pytest.raises(InstanceError, match=problem):
            write_instances(iter(broken), card, "CoNSeP", store, tmp_path / "x.instances.zarr")


def test_missing_instance_store_names_its_target(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"snakemake resources/datasets/GlaS\.instances"):
        InstanceStore(tmp_path / "GlaS.instances.zarr")


def test_cli_convert_instances(registries, tmp_path, capsys):
    card, samples = raw_tree(registries, "kumar", tmp_path / "raw")
    (tmp_path / "card.json").write_text(json.dumps(card))
    common = ["--dataset", "kumar", "--card", f"@{tmp_path / 'card.json'}"]
    common += ["--raw", str(tmp_path / "raw")]
    split = ["--split-policy", "seeded", "--seed", "0", "--fractions", "0.5", "0.25", "0.25"]
    assert main(["convert", *common, "--out", str(tmp_path / "kumar.zarr"), *split]) == 0
    store = ["--store", str(tmp_path / "kumar.zarr")]
    out = ["--out", str(tmp_path / "kumar.instances.zarr")]
    assert main(["convert-instances", *common, *store, *out]) == 0
    truth = InstanceStore(tmp_path / "kumar.instances.zarr")
    assert all(np.array_equal(truth.read(i), s.instances) for i, s in enumerate(samples))
    (tmp_path / "none.json").write_text(json.dumps(dict(card, instance_labels="none")))
    common[3] = f"@{tmp_path / 'none.json'}"
    out = ["--out", str(tmp_path / "none.instances.zarr")]
    assert main(["convert-instances", *common, *store, *out]) == 1
    assert "instance_labels: 'none'" in capsys.readouterr().err


# ---- identities and the plan -----------------------------------------------------------------


def test_instance_labels_change_no_store_and_no_run(registries, demo_config):
    """Every card's store identity is what it was before the key existed; a training run's
    does not move when the key changes."""
    data = {"split_policy": "paper", "split_seed": 42, "split_fractions": [0.7, 0.2, 0.1]}
    for card in registries.datasets.values():
        assert card["instance_labels"] in ("nucleus", "gland", "none")
        before = {k: v for k, v in card.items() if k != "instance_labels"}
        for kind in ("nucleus", "gland", "none"):
            assert store_identity(dict(card, instance_labels=kind), data) == store_identity(
                before, data
            )
    run = ("demo_nuclei", "demo_vit_p16", "lora")
    spec = build_run_spec(demo_config, *run, registries)
    cards = dict(registries.datasets)
    cards["demo_nuclei"] = dict(cards["demo_nuclei"], instance_labels="none")
    other = build_run_spec(demo_config, *run, dataclasses.replace(registries, datasets=cards))
    assert other.training_identity() == spec.training_identity()
    assert other.prediction_identity() == spec.prediction_identity()


def test_instance_identity_is_its_own(registries):
    card = registries.datasets["GlaS"]
    base = instance_identity(card, 1, INSTANCE_VERSION)
    assert instance_identity(dict(card, notes="new"), 1, INSTANCE_VERSION) == base
    assert instance_identity(dict(card, instance_labels="nucleus"), 1, INSTANCE_VERSION) != base
    assert instance_identity(card, 2, INSTANCE_VERSION) != base
    assert instance_identity(card, 1, INSTANCE_VERSION + 1) != base


def test_plan_reads_the_kind_from_the_card(demo_config, registries):
    plan = Plan(demo_config, registries)
    assert plan.instance_kind("demo_nuclei") == "nucleus"
    assert plan.instance_kind("demo_glands") == "gland"
    assert plan.instance_kind("demo_tissue") is None
    assert plan.instance_kind("TNBC") is None and plan.instance_kind("RINGS") == "gland"
    assert "demo_tissue" not in plan.instance_datasets()
    assert plan.instance_inputs("demo_glands") == {
        "unpacked": "resources/unpacked/demo_glands",
        "store": "resources/datasets/demo_glands.zarr",
    }
    identity = plan.identity("instances", {"dataset": "demo_glands"})
    assert identity["instance_labels"] == "gland" and identity["format"] == INSTANCE_VERSION
