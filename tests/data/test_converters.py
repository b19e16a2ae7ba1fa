"""Tests of the raw -> Sample converters on generated raw directories (real files, no mocks)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat, savemat

from densebench.data.converters import (
    ConversionError,
    Sample,
    converter_names,
    converter_version,
    get_converter,
)
from densebench.data.synthetic import write_synthetic_raw

NUCLEI = {
    "display_name": "Nuclei test",
    "classes": ["background", "inflammatory", "epithelial", "spindle"],
    "synthetic": {"style": "consep", "num_images": 9, "height": 48, "width": 56, "seed": 21},
}
GLANDS = {
    "display_name": "Glands test",
    "classes": ["background", "benign_gland", "tumour_gland"],
    "synthetic": {"style": "glas", "num_images": 9, "height": 48, "width": 64, "seed": 22},
}
TISSUE = {
    "display_name": "Tissue test",
    "classes": ["background", "tumour", "stroma", "inflammatory", "necrosis"],
    "synthetic": {"style": "bcss", "num_images": 10, "height": 48, "width": 56, "seed": 23},
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    """Raw dirs of the three styles, generated once."""
    root = tmp_path_factory.mktemp("generated")
    for name, card in (("consep", NUCLEI), ("glas", GLANDS), ("bcss", TISSUE)):
        write_synthetic_raw(card, root / name)
    return {name: root / name for name in ("consep", "glas", "bcss")}


@pytest.fixture
def raw(generated, tmp_path) -> dict[str, Path]:
    """Private, modifiable copies of the generated raw dirs."""
    return {k: shutil.copytree(v, tmp_path / k) for k, v in generated.items()}


def convert(name: str, raw_dir: Path, card: dict) -> list[Sample]:
    """Run a converter to completion."""
    return list(get_converter(name)(raw_dir, card))


def check_common(samples: list[Sample], raw_dir: Path) -> None:
    """Invariants every converter output satisfies."""
    assert len({s.sample_id for s in samples}) == len(samples)
    for s in samples:
        assert s.image.dtype == np.uint8 and s.image.ndim == 3 and s.image.shape[2] == 3
        assert s.mask.dtype == np.uint8 and s.mask.shape == s.image.shape[:2]
        assert (raw_dir / s.source_file).is_file()


def test_registry(registries):
    """Every card's converter is registered with a version; an unknown name lists the valid ones."""
    assert {card["converter"] for card in registries.datasets.values()} <= set(converter_names())
    assert all(converter_version(n) >= 1 for n in converter_names())
    with pytest.raises(ValueError, match=r"unknown converter 'nope'; valid converters: .*glas_bmp"):
        get_converter("nope")


def test_consep(raw):
    """Counts, type_map values, official splits and patient groups."""
    samples = convert("consep_mat", raw["consep"], NUCLEI)
    check_common(samples, raw["consep"])
    assert len(samples) == 9
    assert [s.official_split for s in samples] == ["train"] * 6 + ["test"] * 3
    assert samples[0].sample_id == "consep_Train_train_1"
    assert samples[0].source_file == "Train/Images/train_1.png"
    assert [s.sample_id for s in samples[:6]][-1] == "consep_Train_train_6"
    assert {s.group_id for s in samples} == {"patient_01", "patient_02", "patient_03"}
    mat = loadmat(raw["consep"] / "Test" / "Labels" / "test_2.mat")
    assert np.array_equal(samples[7].mask, mat["type_map"])
    assert set(np.unique(np.stack([s.mask for s in samples])).tolist()) == {0, 1, 2, 3}
    image = np.asarray(Image.open(raw["consep"] / "Train" / "Images" / "train_1.png"))
    assert np.array_equal(samples[0].image, image)


def test_consep_group_falls_back_to_stem(raw):
    """Without patients.csv each image is its own group."""
    (raw["consep"] / "patients.csv").unlink()
    samples = convert("consep_mat", raw["consep"], NUCLEI)
    assert [s.group_id for s in samples[:2]] == ["train_1", "train_2"]


def test_glas(raw):
    """Gland class follows the grade; official train/test; groups are patient IDs."""
    samples = convert("glas_bmp", raw["glas"], GLANDS)
    check_common(samples, raw["glas"])
    assert len(samples) == 9
    root = raw["glas"] / "Warwick_QU_Dataset"
    rows = [r.split(",") for r in (root / "Grade.csv").read_text().splitlines()[1:]]
    grade = {r[0]: r[2].strip() for r in rows}
    patient = {r[0]: r[1] for r in rows}
    for s in samples:
        stem = s.sample_id.removeprefix("glas_")
        anno = np.asarray(Image.open(root / f"{stem}_anno.bmp"))
        expected = 1 if grade[stem] == "benign" else 2
        assert np.array_equal(s.mask, np.where(anno > 0, expected, 0))
        assert s.official_split == ("train" if stem.startswith("train") else "test")
        assert s.group_id == patient[stem]
    assert {s.official_split for s in samples} == {"train", "test"}
    assert set(np.unique(np.stack([s.mask for s in samples])).tolist()) == {0, 1, 2}


def test_glas_binary_card(raw):
    """A card with a single 'gland' class (paper encoding) maps every gland to 1."""
    card = {"classes": ["background", "gland"]}
    samples = convert("glas_bmp", raw["glas"], card)
    assert set(np.unique(np.stack([s.mask for s in samples])).tolist()) == {0, 1}


def test_bcss(raw):
    """Codes used directly, TCGA case as group, no official split."""
    samples = convert("bcss_png", raw["bcss"], TISSUE)
    check_common(samples, raw["bcss"])
    assert len(samples) == 10
    assert all(s.official_split is None for s in samples)
    assert all(s.group_id == Path(s.source_file).name[:12] for s in samples)
    assert len({s.group_id for s in samples}) == 5
    names = [Path(s.source_file).name for s in samples]
    assert names == sorted(names)
    mask = np.asarray(Image.open(raw["bcss"] / "masks" / names[3]))
    assert np.array_equal(samples[3].mask, mask)


def test_bcss_code_table_must_match_card(raw):
    """gtruth_codes.tsv disagreeing with the card is reported."""
    card = {**TISSUE, "classes": ["background", "tumor", "stroma", "inflammatory", "necrosis"]}
    with pytest.raises(ConversionError, match=r"gtruth_codes\.tsv"):
        convert("bcss_png", raw["bcss"], card)


def test_alpha_channel_dropped(raw):
    """An RGBA image is read as its RGB channels."""
    path = next((raw["bcss"] / "rgbs_colorNormalized").iterdir())
    rgb = np.asarray(Image.open(path))
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba).save(path)
    sample = next(s for s in convert("bcss_png", raw["bcss"], TISSUE) if path.name in s.source_file)
    assert np.array_equal(sample.image, rgb)


def test_missing_label_file(raw):
    """An image without its label file names the image and the missing file."""
    (raw["consep"] / "Train" / "Labels" / "train_3.mat").unlink()
    with pytest.raises(ConversionError, match=r"train_3\.png.*|train_3\.mat") as err:
        convert("consep_mat", raw["consep"], NUCLEI)
    assert "Nuclei test" in str(err.value) and "Remedy" in str(err.value)
    (raw["glas"] / "Warwick_QU_Dataset" / "testA_1_anno.bmp").unlink()
    with pytest.raises(ConversionError, match=r"testA_1_anno\.bmp"):
        convert("glas_bmp", raw["glas"], GLANDS)
    name = sorted((raw["bcss"] / "masks").iterdir())[0]
    name.unlink()
    with pytest.raises(ConversionError, match=re.escape(name.name)):
        convert("bcss_png", raw["bcss"], TISSUE)


def test_mat_without_type_map(raw):
    """A .mat lacking type_map is reported with the file and the key."""
    path = raw["consep"] / "Test" / "Labels" / "test_2.mat"
    savemat(path, {"inst_map": loadmat(path)["inst_map"]})
    with pytest.raises(ConversionError, match=r"test_2\.mat.*|type_map") as err:
        convert("consep_mat", raw["consep"], NUCLEI)
    assert "type_map" in str(err.value) and "test_2.mat" in str(err.value)


@pytest.mark.parametrize(
    ("style", "name", "relpath"),
    [
        ("consep", "consep_mat", "Train/Images/train_2.png"),
        ("consep", "consep_mat", "Test/Labels/test_1.mat"),
        ("glas", "glas_bmp", "Warwick_QU_Dataset/train_4.bmp"),
        ("bcss", "bcss_png", None),
    ],
)
def test_truncated_file(raw, style, name, relpath):
    """A truncated image or .mat raises ConversionError naming the file."""
    card = {"consep": NUCLEI, "glas": GLANDS, "bcss": TISSUE}[style]
    path = raw[style] / relpath if relpath else sorted((raw[style] / "masks").iterdir())[-1]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConversionError) as err:
        convert(name, raw[style], card)
    assert path.name in str(err.value) and card["display_name"] in str(err.value)


def test_shape_mismatch(raw):
    """An image whose label has another size is reported."""
    path = raw["consep"] / "Train" / "Images" / "train_5.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(path)
    with pytest.raises(ConversionError, match="train_5"):
        convert("consep_mat", raw["consep"], NUCLEI)


def test_missing_layout(tmp_path):
    """An empty raw dir explains the expected layout for each converter."""
    for name in ("consep_mat", "glas_bmp", "bcss_png"):
        with pytest.raises(ConversionError, match="Remedy"):
            convert(name, tmp_path, {"classes": ["background", "benign_gland", "tumour_gland"]})
