"""Tests of the embedded synthetic H&E-like benchmark (native raw layouts, determinism, looks)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from densebench.data.synthetic import MAT_HEADER, write_synthetic_raw

NUCLEI = {
    "classes": ["background", "inflammatory", "epithelial", "spindle"],
    "synthetic": {"style": "consep", "num_images": 9, "height": 64, "width": 72, "seed": 3},
}
GLANDS = {
    "classes": ["background", "benign_gland", "tumour_gland"],
    "synthetic": {"style": "glas", "num_images": 9, "height": 64, "width": 88, "seed": 4},
}
TISSUE = {
    "classes": ["background", "tumour", "stroma", "inflammatory", "necrosis"],
    "synthetic": {"style": "bcss", "num_images": 10, "height": 64, "width": 80, "seed": 5},
}
CARDS = {"consep": NUCLEI, "glas": GLANDS, "bcss": TISSUE}


def with_seed(card: dict, seed: int) -> dict:
    """Copy of a card with another synthetic seed."""
    return {**card, "synthetic": {**card["synthetic"], "seed": seed}}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> dict[str, Path]:
    """Each style written once for the module."""
    root = tmp_path_factory.mktemp("raw")
    for style, card in CARDS.items():
        write_synthetic_raw(card, root / style)
    return {style: root / style for style in CARDS}


def files_of(path: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under a directory."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


def rgb(path: Path) -> np.ndarray:
    """Read an image file as an array."""
    with Image.open(path) as im:
        return np.asarray(im)


def test_consep_layout(raw):
    """CoNSeP style: Train/Test Images+Labels, .mat keys consistent, patients.csv."""
    root = raw["consep"]
    train = sorted(p.name for p in (root / "Train" / "Images").iterdir())
    test = sorted(p.name for p in (root / "Test" / "Images").iterdir())
    assert train == sorted(f"train_{k}.png" for k in range(1, 7))
    assert test == sorted(f"test_{k}.png" for k in range(1, 4))
    for split, prefix in (("Train", "train"), ("Test", "test")):
        for image in (root / split / "Images").iterdir():
            mat = loadmat(root / split / "Labels" / f"{image.stem}.mat")
            assert {"inst_map", "type_map", "inst_type", "inst_centroid"} <= set(mat)
            inst, types = mat["inst_map"], mat["inst_type"]
            n = int(inst.max())
            assert image.stem.startswith(prefix)
            assert inst.shape == (64, 72) == rgb(image).shape[:2]
            assert np.array_equal(np.unique(inst), np.arange(n + 1))
            assert types.shape == (n, 1) and mat["inst_centroid"].shape == (n, 2)
            lut = np.concatenate([[0], types[:, 0]]).astype(int)
            assert np.array_equal(mat["type_map"], lut[inst])
            x, y = mat["inst_centroid"][0]
            ys, xs = np.nonzero(inst == 1)
            assert abs(x - xs.mean()) < 1e-6 and abs(y - ys.mean()) < 1e-6
    with (root / "patients.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["stem"] for r in rows} == {Path(n).stem for n in train + test}
    per_patient = np.unique([r["patient_id"] for r in rows], return_counts=True)[1]
    assert len(per_patient) >= 3 and per_patient.max() > 1


def test_mat_header_has_no_timestamp(raw):
    """The .mat text header is fixed (scipy would write the creation time there)."""
    headers = {p.read_bytes()[:116] for p in raw["consep"].rglob("*.mat")}
    assert len(headers) == 1
    assert headers.pop().rstrip() == MAT_HEADER and b"Created on: fixed" in MAT_HEADER


def test_consep_nuclei_touch_and_differ_by_type(raw):
    """Some nuclei are adjacent; inflammatory nuclei are smaller and rounder than spindle ones."""
    touching, areas = 0, {1: [], 3: []}
    for mat_path in (raw["consep"]).rglob("*.mat"):
        mat = loadmat(mat_path)
        inst, types = mat["inst_map"], mat["inst_type"][:, 0]
        for a, b in ((inst[:, :-1], inst[:, 1:]), (inst[:-1, :], inst[1:, :])):
            touching += int(np.sum((a > 0) & (b > 0) & (a != b)))
        for i, t in enumerate(types, start=1):
            if t in areas:
                areas[int(t)].append(np.sum(inst == i))
    assert touching > 0
    assert np.median(areas[1]) < np.median(areas[3])


def test_glas_layout(raw):
    """GlaS style: train/testA/testB BMPs, 8-bit instance annotations, Grade.csv as in GlaS."""
    root = raw["glas"] / "Warwick_QU_Dataset"
    names = {p.name for p in root.iterdir()}
    assert "Grade.csv" in names
    images = sorted(n for n in names if n.endswith(".bmp") and not n.endswith("_anno.bmp"))
    assert all(re.fullmatch(r"(train|testA|testB)_\d+\.bmp", n) for n in images)
    assert {n.split("_")[0] for n in images} == {"train", "testA", "testB"}
    for name in images:
        anno_path = root / name.replace(".bmp", "_anno.bmp")
        with Image.open(anno_path) as im:
            assert im.format == "BMP" and im.mode in ("L", "P")
        anno = rgb(anno_path)
        assert anno.dtype == np.uint8 and anno.shape == rgb(root / name).shape[:2] == (64, 88)
        assert np.array_equal(np.unique(anno), np.arange(anno.max() + 1)) and anno.max() >= 1
    text = (root / "Grade.csv").read_text().splitlines()
    assert text[0] == "name, patient ID, grade (GlaS), grade (Sirinukunwattana et al. 2015)"
    rows = [line.split(",") for line in text[1:]]
    assert {r[0] + ".bmp" for r in rows} == set(images)
    assert {r[2] for r in rows} == {" benign", " malignant"}


def test_glas_grades_look_different(raw):
    """Malignant glands are less regular (lower solidity proxy) than benign ones."""
    root = raw["glas"] / "Warwick_QU_Dataset"
    grades = {r[0]: r[2].strip() for r in (line.split(",") for line in
              (root / "Grade.csv").read_text().splitlines()[1:])}  # fmt: skip
    fill = {"benign": [], "malignant": []}
    for name, grade in grades.items():
        anno = rgb(root / f"{name}_anno.bmp")
        for i in range(1, anno.max() + 1):
            ys, xs = np.nonzero(anno == i)
            box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
            fill[grade].append(len(ys) / box)
    assert np.mean(fill["malignant"]) < np.mean(fill["benign"])


def test_bcss_layout(raw):
    """BCSS style: same-named RGB and code-mask PNGs with TCGA names, plus gtruth_codes.tsv."""
    root = raw["bcss"]
    images = sorted(p.name for p in (root / "rgbs_colorNormalized").iterdir())
    assert images == sorted(p.name for p in (root / "masks").iterdir())
    assert len(images) == 10
    pattern = r"TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}-DX1_xmin\d+_ymin\d+_MPP-0\.2500\.png"
    assert all(re.fullmatch(pattern, n) for n in images)
    assert len({n[:12] for n in images}) == 5  # two ROIs per case
    for name in images:
        image, mask = rgb(root / "rgbs_colorNormalized" / name), rgb(root / "masks" / name)
        assert image.shape == (64, 80, 3) and mask.shape == (64, 80) and mask.dtype == np.uint8
        assert mask.max() < 5
    tsv = (root / "meta" / "gtruth_codes.tsv").read_text().splitlines()
    assert tsv[0] == "label\tGT_code" and tsv[2] == "tumour\t1" and len(tsv) == 6


@pytest.mark.parametrize("style", sorted(CARDS))
def test_every_class_appears(raw, style):
    """Each class of the card occurs somewhere in the generated dataset."""
    root = raw[style]
    seen: set[int] = set()
    if style == "consep":
        for p in root.rglob("*.mat"):
            seen |= set(np.unique(loadmat(p)["type_map"]).tolist())
    elif style == "glas":
        for line in (root / "Warwick_QU_Dataset" / "Grade.csv").read_text().splitlines()[1:]:
            seen |= {0, 1 if line.split(",")[2].strip() == "benign" else 2}
    else:
        for p in (root / "masks").iterdir():
            seen |= set(np.unique(rgb(p)).tolist())
    assert seen == set(range(len(CARDS[style]["classes"])))


@pytest.mark.parametrize("style", sorted(CARDS))
def test_same_seed_identical_other_seed_different(raw, tmp_path, style):
    """Same card -> byte-identical files (incl. .mat); another seed -> different images."""
    write_synthetic_raw(CARDS[style], tmp_path / "again")
    assert files_of(tmp_path / "again") == files_of(raw[style])
    write_synthetic_raw(with_seed(CARDS[style], 99), tmp_path / "other")
    a, b = files_of(raw[style]), files_of(tmp_path / "other")
    images_a = [a[k] for k in sorted(a) if k.endswith((".png", ".bmp"))]
    images_b = [b[k] for k in sorted(b) if k.endswith((".png", ".bmp"))]
    assert len(images_a) == len(images_b) > 0
    assert all(x != y for x, y in zip(images_a, images_b, strict=True))


@pytest.mark.parametrize("style", sorted(CARDS))
def test_images_look_like_he(raw, style):
    """Mean colour is pink/purple (green absorbed most), clearly not grey."""
    paths = [p for p in raw[style].rglob("*") if p.suffix in (".png", ".bmp")]
    images = [rgb(p) for p in paths if "masks" not in p.parts and "_anno" not in p.name]
    pixels = np.concatenate([im.reshape(-1, 3) for im in images]).astype(float)
    r, g, b = pixels.mean(axis=0)
    assert g + 30 < min(r, b) and min(r, b) > 150
    assert (pixels.max(axis=1) - pixels.min(axis=1)).mean() > 30


def test_nuclei_are_dark_blue_purple_and_stroma_pink(raw):
    """Nuclear pixels are darker and bluer than the surrounding pink tissue."""
    nuc, rest = [], []
    for image_path in (raw["consep"] / "Train" / "Images").iterdir():
        image = rgb(image_path).reshape(-1, 3).astype(float)
        inst = loadmat(image_path.parents[1] / "Labels" / f"{image_path.stem}.mat")["inst_map"]
        nuc.append(image[inst.ravel() > 0])
        rest.append(image[inst.ravel() == 0])
    nr, ng, nb = np.concatenate(nuc).mean(axis=0)
    sr, sg, sb = np.concatenate(rest).mean(axis=0)
    assert nr + ng + nb < 0.7 * (sr + sg + sb)
    assert nb > nr > ng and sr > sg


def test_replaces_existing_dir_and_cleans_up_on_failure(tmp_path):
    """A finished run replaces out_dir; a failing one leaves the old dir and no temp dir."""
    out = tmp_path / "raw"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    write_synthetic_raw(NUCLEI, out)
    assert not (out / "stale.txt").exists() and (out / "Train").is_dir()
    before = files_of(out)
    broken = {**NUCLEI, "classes": ["background", "inflammatory", "epithelial"]}
    with pytest.raises(ValueError, match="spindle"):
        write_synthetic_raw(broken, out)
    assert files_of(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


@pytest.mark.parametrize(
    ("synthetic", "message"),
    [
        ({"style": "nope", "num_images": 2, "height": 40, "width": 40, "seed": 1}, "nope"),
        ({"style": "consep", "height": 40, "width": 40, "seed": 1}, "num_images"),
    ],
)
def test_bad_spec(tmp_path, synthetic, message):
    """Unknown styles and missing keys are rejected with a clear message."""
    with pytest.raises(ValueError, match=message):
        write_synthetic_raw({**NUCLEI, "synthetic": synthetic}, tmp_path / "x")
    assert not (tmp_path / "x").exists()
