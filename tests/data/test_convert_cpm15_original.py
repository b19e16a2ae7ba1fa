"""CPM-15 from the MICCAI 2015 challenge's original release (converter `cpm15`).

The release is one folder of `imageNN.png` (RGBA) with `imageNN_mask.txt` instance labels (a line
`width height`, then one label per pixel, row by row), plus `imageNN_poly.png` renderings and a
README; the masks of image04 and image05 are swapped. `make_original` writes a tiny synthetic
release like that (no real data); `make_hovernet` writes the same content in the HoVer-Net
repackaging's layout (`image{NN-1:02d}` in `Images/*.png` + `Labels/*.mat`), so the two can be
compared sample by sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from densebench.data.converters import ConversionError
from densebench.data.store import write_store
from tests.data.raw_layouts import convert
from tests.data.raw_layouts.CoNSeP import save_image, save_mat, tissue

DATASET = "cpm15"
RELEASE = "MICCAI_competition_dataset"
SHAPES = {1: (40, 48), 2: (36, 36), 3: (44, 40), 4: (30, 42), 5: (46, 38)}
"""(height, width) of each synthetic imageNN; image04 and image05 differ, so their swap shows."""
SWAPPED = (4, 5)


def instances(number: int, shape: tuple[int, int]) -> np.ndarray:
    """An instance map with three nuclei (labels 1, 2 and 7) placed per image."""
    inst = np.zeros(shape, np.int32)
    inst[2 : 8 + number, 3:9] = 1
    inst[20:26, 10 + number : 18 + number] = 2
    inst[shape[0] - 6 : shape[0] - 2, shape[1] - 7 : shape[1] - 1] = 7
    return inst


def write_txt(inst: np.ndarray, path: Path) -> None:
    """An instance map as the release's mask text: 'width height', then the labels row by row."""
    height, width = inst.shape
    lines = [f"{width} {height}", *(str(v) for v in inst.ravel())]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def content() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The synthetic release: image number -> (RGBA image, instance map)."""
    out = {}
    for number, shape in SHAPES.items():
        inst = instances(number, shape)
        rgba = tissue(300 + number, shape, inst, alpha=True)
        if number != 3:  # the release's alpha is opaque; image03 keeps 200 (dropped, not blended)
            rgba[..., 3] = 255
        out[number] = (rgba, inst)
    return out


def make_original(root: Path, swap: bool = True) -> Path:
    """Write the synthetic release under root/RELEASE (masks of image04/05 swapped); return root."""
    folder = Path(root) / RELEASE
    for number, (rgba, inst) in content().items():
        save_image(rgba, folder / f"image{number:02d}.png")
        save_image(rgba[..., :3], folder / f"image{number:02d}_poly.png")  # rendering: ignored
        target = number
        if swap and number in SWAPPED:
            target = SWAPPED[1] if number == SWAPPED[0] else SWAPPED[0]
        write_txt(inst, folder / f"image{target:02d}_mask.txt")
    (folder / "README_training.txt").write_text("imageXX.png, imageXX_mask.txt, imageXX_poly.png\n")
    return Path(root)


def make_hovernet(root: Path) -> Path:
    """Write the same content as the HoVer-Net repackaging: cpm15/{Images,Labels}; return root."""
    base = Path(root) / "cpm15"
    for number, (rgba, inst) in content().items():
        stem = f"image_{number - 1:02d}"
        save_image(rgba[..., :3], base / "Images" / f"{stem}.png")
        save_mat({"inst_map": inst}, base / "Labels" / f"{stem}.mat")
    return Path(root)


def convert_quietly(raw: Path, card: dict):
    """Convert, expecting the warning about the release's swapped masks."""
    with pytest.warns(UserWarning, match="swapped"):
        return convert(raw, card)


def test_original_layout_converts_like_hovernet(tmp_path, card):
    """Same ids, groups, images and masks as the HoVer-Net layout of the same content."""
    original = convert_quietly(make_original(tmp_path / "original"), card)
    hovernet = convert(make_hovernet(tmp_path / "hovernet"), card)
    names = [f"cpm15_semantic_sample_{i:06d}" for i in range(len(SHAPES))]
    assert [s.sample_id for s in original] == [s.sample_id for s in hovernet] == names
    assert [s.group_id for s in original] == [s.group_id for s in hovernet]
    assert [s.group_id for s in original] == [f"image_{n - 1:02d}" for n in SHAPES]
    assert [s.source_file for s in original] == [f"{RELEASE}/image{n:02d}.png" for n in SHAPES]
    assert all(s.official_split is None for s in original)
    for ours, theirs in zip(original, hovernet, strict=True):
        assert ours.image.shape == theirs.image.shape and ours.image.shape[2] == 3
        assert np.array_equal(ours.image, theirs.image)
        assert ours.mask.dtype == theirs.mask.dtype == np.uint8
        assert np.array_equal(ours.mask, theirs.mask)
        assert set(np.unique(ours.mask).tolist()) == {0, 1}


def test_swap_is_repaired_and_logged(tmp_path, card):
    """image04 and image05 get the masks that fit them; the warning names both files."""
    raw = make_original(tmp_path)
    with pytest.warns(UserWarning) as caught:
        samples = convert(raw, card)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "image04_mask.txt and" in messages[0] and "image05_mask.txt are swapped" in messages[0]
    truth = content()
    for sample, number in zip(samples, SHAPES, strict=True):
        assert sample.mask.shape == SHAPES[number]
        assert np.array_equal(sample.mask, (truth[number][1] != 0).astype(np.uint8))


def test_unswapped_release_converts_silently(tmp_path, card, recwarn):
    """A copy whose masks already fit its images converts without any warning."""
    samples = convert(make_original(tmp_path, swap=False), card)
    assert len(samples) == len(SHAPES) and not recwarn.list


def test_release_in_raw_folder_itself(tmp_path, card):
    """The release's files may also sit directly in the raw folder."""
    make_original(tmp_path / "x")
    raw = tmp_path / "x" / RELEASE
    samples = convert_quietly(raw, card)
    assert samples[0].source_file == "image01.png"


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (
            lambda text: text.rsplit("\n", 3)[0] + "\n",
            r"holds 1294 labels but its header '36 36' asks for 36\*36 = 1296",
        ),
        (
            lambda text: "36\n" + text.split("\n", 1)[1],
            r"starts with '36', expected 'width height'",
        ),
        (lambda text: "36 x36\n" + text.split("\n", 1)[1], r"starts with '36 x36', expected"),
        (lambda text: text.replace("\n7\n", "\n7.5\n", 1), r"holds a non-integer label"),
        (lambda text: text.replace("\n7\n", "\n-7\n", 1), r"holds negative labels"),
    ],
    ids=["pixel-count", "one-field-header", "bad-header", "non-integer", "negative"],
)
@pytest.mark.filterwarnings("ignore:.*are swapped")
def test_malformed_mask_fails_cleanly(tmp_path, card, damage, detail):
    """A damaged mask text names the file and the remedy; the store is not written at all."""
    raw = make_original(tmp_path / "raw")
    path = raw / RELEASE / "image02_mask.txt"
    path.write_text(damage(path.read_text()))
    pattern = (
        rf"image02_mask\.txt: mask file {detail}.*Remedy: restore the file from the challenge's"
    )
    with pytest.raises(ConversionError, match=pattern):
        convert(raw, card)
    out = tmp_path / "out" / "cpm15.zarr"
    out.parent.mkdir()
    with pytest.raises(ConversionError, match=r"image02_mask\.txt"):
        write_store(
            convert(raw, card),
            card,
            DATASET,
            out,
            split_policy="seeded",
            seed=0,
            fractions=(0.6, 0.2, 0.2),
        )
    assert list(out.parent.iterdir()) == []


def test_missing_mask_is_named(tmp_path, card):
    """An image without its _mask.txt fails naming the image and what to restore."""
    raw = make_original(tmp_path)
    (raw / RELEASE / "image03_mask.txt").unlink()
    with pytest.raises(ConversionError, match=r"image03\.png: image has no mask file"):
        convert(raw, card)


def test_unrepairable_size_mismatch_fails(tmp_path, card):
    """A mask of a wrong size that fits no other image is refused, not guessed."""
    raw = make_original(tmp_path, swap=False)
    write_txt(np.zeros((12, 13), np.int32), raw / RELEASE / "image03_mask.txt")
    with pytest.raises(ConversionError, match=r"image03_mask\.txt: mask is 12x13 but its image"):
        convert(raw, card)


def test_neither_layout_names_both(tmp_path, card):
    """An empty raw folder's error names both accepted layouts."""
    (tmp_path / "raw").mkdir()
    with pytest.raises(ConversionError, match=r"no folder Images .* imageNN_mask\.txt"):
        convert(tmp_path / "raw", card)
