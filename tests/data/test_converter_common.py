"""The converters' shared helpers (`densebench.data.converters._common`) on their own."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from densebench.data.converters import ConversionError
from densebench.data.converters._common import (
    class_painter,
    nested_root,
    pair_sample,
    release_root,
    uint8_patch,
)

CARD = {"name": "demo", "classes": ["background", "gland"]}


def test_uint8_patch_casts_and_refuses_out_of_range_values(tmp_path):
    """Float patches are cast; values outside 0..255 raise; NaN only where refused."""
    images = np.full((2, 2, 2, 3), 7.9)
    patch = uint8_patch(images, 0, tmp_path, "demo", "fix it")
    assert patch.dtype == np.uint8 and patch.flags.c_contiguous and (patch == 7).all()
    images[1, 0, 0, 0] = -1.0
    with pytest.raises(ConversionError, match=r"patch 1 has values outside 0\.\.255\. Remedy"):
        uint8_patch(images, 1, tmp_path, "demo", "fix it")
    images[1, 0, 0, 0] = np.nan
    with pytest.raises(ConversionError, match=r"outside 0\.\.255 \(or NaN\)"):
        uint8_patch(images, 1, tmp_path, "demo", "fix it", refuse_nan=True)
    with np.errstate(invalid="ignore"):
        assert uint8_patch(images, 1, tmp_path, "demo", "fix it").dtype == np.uint8


def test_nested_root_prefers_the_release_folder_unless_told_otherwise(tmp_path):
    """raw/<name> when it exists, but raw itself where it already holds `unless`."""
    assert nested_root(tmp_path, "Release") == tmp_path
    (tmp_path / "Release").mkdir()
    assert nested_root(tmp_path, "Release") == tmp_path / "Release"
    (tmp_path / "Train").mkdir()
    assert nested_root(tmp_path, "Release", unless="Train") == tmp_path


def test_release_root_names_the_problem_and_remedy(tmp_path):
    """The raw folder as a Path, the dataset's name and the root; or the error to fix."""
    (tmp_path / "a" / "marker").mkdir(parents=True)
    found = release_root(str(tmp_path), CARD, lambda d: (d / "marker").is_dir(), "p", "r")
    assert found == (tmp_path, "demo", tmp_path / "a")
    with pytest.raises(ConversionError, match=r"no X folder\. Remedy: unpack it"):
        release_root(tmp_path, CARD, lambda d: False, "no X folder", "unpack it")


def test_pair_sample_paints_the_card_class_with_stem_defaults(tmp_path):
    """class_painter paints the label's foreground; ids and groups default to the stem."""
    image_path, label_path = tmp_path / "img_1.png", tmp_path / "lbl.png"
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(image_path)
    label = np.zeros((4, 5), np.uint8)
    label[1:3, 2:4] = 255
    Image.fromarray(label).save(label_path)
    paint = class_painter(CARD, "gland", "demo", tmp_path)
    sample = pair_sample(image_path, label_path, "demo", tmp_path, paint, official_split="test")
    assert (sample.sample_id, sample.group_id, sample.official_split) == ("img_1", "img_1", "test")
    assert sample.source_file == "img_1.png"
    assert sample.mask.dtype == np.uint8 and sample.mask.sum() == 4 and sample.mask.max() == 1
    with pytest.raises(ConversionError, match="have no class 'tumour'"):
        class_painter(CARD, "tumour", "demo", tmp_path)
