"""The paper's training augmentation: order, probabilities, pinned defaults, seeding, masks."""

from __future__ import annotations

import inspect
import os
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import numpy as np
import pytest

from densebench.data.augment import (
    ALBUMENTATIONS_VERSION,
    GEOMETRIC_STEPS,
    PAPER_PIPELINE,
    PHOTOMETRIC_STEPS,
    Step,
    augment_pair,
    build_train_transform,
    build_transform,
    reseed,
    sample_seed,
)

S = 64
CLASSES = (0, 1, 2, 3, 255)

# protocol.md §3, in order: (class, p) or ("OneOf", p, [(member, p), ...]).
EXPECTED = [
    ("RandomResizedCrop", 1.0),
    ("HorizontalFlip", 0.5),
    ("VerticalFlip", 0.1),
    ("RandomRotate90", 0.3),
    ("Transpose", 0.3),
    (
        "OneOf",
        0.3,
        [("ElasticTransform", 1.0), ("GridDistortion", 1.0), ("OpticalDistortion", 1.0)],
    ),
    ("OneOf", 0.5, [("ColorJitter", 1.0), ("HueSaturationValue", 1.0), ("RGBShift", 1.0)]),
    ("OneOf", 0.3, [("GaussNoise", 1.0), ("MultiplicativeNoise", 1.0)]),
    ("OneOf", 0.2, [("GaussianBlur", 1.0), ("MotionBlur", 1.0), ("MedianBlur", 1.0)]),
    ("OneOf", 0.2, [("RandomRain", 1.0), ("RandomSnow", 1.0), ("RandomFog", 1.0)]),
    ("RandomBrightnessContrast", 0.4),
    ("RandomGamma", 0.3),
    ("CoarseDropout", 0.3),
]

# The scalars the authors wrote, which PAPER_PIPELINE spells out as ranges.
AUTHORS_LITERALS = {
    "ColorJitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1},
    "HueSaturationValue": {"hue_shift_limit": 20, "sat_shift_limit": 30, "val_shift_limit": 20},
    "RGBShift": {"r_shift_limit": 25, "g_shift_limit": 25, "b_shift_limit": 25},
    "GridDistortion": {"num_steps": 5, "distort_limit": 0.3},
    "OpticalDistortion": {"distort_limit": 0.2},
    "MotionBlur": {"blur_limit": 7},
    "MedianBlur": {"blur_limit": 7},
    "RandomBrightnessContrast": {"brightness_limit": 0.3, "contrast_limit": 0.3},
}


def leaves(steps):
    """All non-OneOf steps, members included."""
    for step in steps:
        yield from leaves(step.members) if step.name == "OneOf" else [step]


def describe(transforms):
    """(class, p[, members]) for a built transform list."""
    out = []
    for t in transforms:
        name = type(t).__name__
        if isinstance(t, A.OneOf):
            out.append((name, t.p, [(type(m).__name__, m.p) for m in t.transforms]))
        else:
            out.append((name, t.p))
    return out


def blocks(h, w, seed, values=CLASSES, block=8):
    """A mask of constant block x block tiles with random values."""
    rng = np.random.default_rng(seed)
    tiles = rng.choice(np.array(values, dtype=np.uint8), size=(-(-h // block), -(-w // block)))
    return np.kron(tiles, np.ones((block, block), dtype=np.uint8))[:h, :w]


def random_image(h, w, seed=0):
    """Random uint8 RGB noise."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def train():
    """The paper's transform for S x S output."""
    return build_train_transform(S)


def test_order_and_probabilities_match_the_paper(train):
    assert describe(train.transforms) == EXPECTED


def test_every_argument_is_written_out():
    for step in leaves(PAPER_PIPELINE):
        params = set(inspect.signature(getattr(A, step.name).__init__).parameters) - {"self"}
        written = set(step.args) | set(step.defaults) | {"p"}
        if step.name == "RandomResizedCrop":
            written.add("size")
        assert not set(step.args) & set(step.defaults), step.name
        assert written == params, step.name


@pytest.mark.skipif(A.__version__ != ALBUMENTATIONS_VERSION, reason="defaults are 2.0.8's")
def test_written_defaults_are_the_pinned_library_defaults():
    for step in leaves(PAPER_PIPELINE):
        signature = inspect.signature(getattr(A, step.name).__init__).parameters
        for name, value in step.defaults.items():
            assert signature[name].default == value, (step.name, name)


def test_spelled_out_ranges_equal_the_authors_scalars():
    built = {type(t).__name__: t for t in _all_built(build_train_transform(S))}
    for name, literal in AUTHORS_LITERALS.items():
        from_literal = getattr(A, name)(**literal, p=1.0)
        for arg in literal:
            assert getattr(from_literal, arg) == getattr(built[name], arg), (name, arg)


def _all_built(transform):
    """Every leaf transform object in a built Compose."""
    for t in transform.transforms:
        yield from _all_built(t) if isinstance(t, A.BaseCompose) else [t]


def test_masks_are_resampled_nearest_only(train):
    for t in _all_built(train):
        if hasattr(t, "mask_interpolation"):
            assert t.mask_interpolation == 0, type(t).__name__  # cv2.INTER_NEAREST


def test_unknown_argument_names_raise():
    bad = Step("HorizontalFlip", 0.5, {"probability": 0.5})
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="not valid"):
        build_transform(S, [bad])


def test_same_seed_same_output_regardless_of_history(train):
    image, mask = random_image(90, 130), blocks(90, 130, 0)
    first = augment_pair(train, image, mask, seed=5)
    for other in (1, 2, 3):
        augment_pair(train, image, mask, seed=other)
    again = augment_pair(train, image, mask, seed=5)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    fresh = augment_pair(build_train_transform(S), image, mask, seed=5)
    assert np.array_equal(first[0], fresh[0]) and np.array_equal(first[1], fresh[1])


def test_different_seeds_give_different_outputs(train):
    image, mask = random_image(90, 130), blocks(90, 130, 0)
    base = augment_pair(train, image, mask, seed=0)[0]
    assert any(
        not np.array_equal(base, augment_pair(train, image, mask, seed=s)[0]) for s in (1, 2, 3, 4)
    )


def test_sample_seed_is_stable_and_distinct():
    assert sample_seed(0, 0, 0) == 2968811710
    assert sample_seed(42, 1, 7) == 2737586632
    seeds = {sample_seed(42, e, i) for e in range(5) for i in range(50)}
    assert len(seeds) == 250
    assert sample_seed(42, 0, 1) != sample_seed(42, 1, 0)
    with pytest.raises(ValueError):
        sample_seed(-1, 0, 0)


def test_transforms_decide_independently():
    """Per-node seeds (Compose.set_random_seed alone would nest VerticalFlip in HorizontalFlip)."""
    flips = build_transform(8, PAPER_PIPELINE[1:5])
    image, mask = random_image(8, 8), blocks(8, 8, 0)
    applied = []
    for s in range(800):
        augment_pair(flips, image, mask, seed=sample_seed(0, 0, s))
        applied.append([bool(t.params) for t in flips.transforms])
    applied = np.array(applied)
    assert np.allclose(applied.mean(axis=0), [0.5, 0.1, 0.3, 0.3], atol=0.06)
    combos = {tuple(row) for row in applied}
    assert len(combos) == 16  # every on/off combination of the four occurs


def test_reseed_gives_nodes_distinct_seeds(train):
    reseed(train, 7)
    seeds = [train.seed] + [t.seed for t in train.transforms]
    seeds += [m.seed for t in train.transforms if isinstance(t, A.OneOf) for m in t.transforms]
    assert len(set(seeds)) == len(seeds)


@pytest.mark.parametrize("shape", [(90, 130), (40, 50)])
def test_output_shapes_and_dtypes(train, shape):
    image, mask = random_image(*shape), blocks(*shape, 1)
    for seed in range(5):
        out_image, out_mask = augment_pair(train, image, mask, seed)
        assert out_image.shape == (S, S, 3) and out_image.dtype == np.uint8
        assert out_mask.shape == (S, S) and out_mask.dtype == np.uint8


def test_bad_inputs_are_rejected(train):
    with pytest.raises(ValueError):
        augment_pair(train, random_image(20, 20).astype(np.float32), blocks(20, 20, 0), 0)
    with pytest.raises(ValueError):
        augment_pair(train, random_image(20, 20), blocks(20, 21, 0), 0)


def test_mask_values_never_blend(train):
    image = random_image(90, 130, 3)
    mask = np.random.default_rng(3).choice(np.array(CLASSES, dtype=np.uint8), size=(90, 130))
    seen = set()
    for seed in range(50):
        values = set(np.unique(augment_pair(train, image, mask, seed)[1]).tolist())
        assert values <= set(CLASSES), seed
        seen |= values
    assert 255 in seen  # the ignore value survives as itself


def test_photometric_steps_leave_the_mask_alone():
    photometric = build_transform(S, PHOTOMETRIC_STEPS)
    image, mask = random_image(S, S, 4), blocks(S, S, 4)
    changed = 0
    for seed in range(40):
        out_image, out_mask = augment_pair(photometric, image, mask, seed)
        assert np.array_equal(out_mask, mask), seed
        changed += not np.array_equal(out_image, image)
    assert changed > 10


def agreement(image, mask):
    """Share of pixels, among those whose 7x7 mask window is one class, where image = 60 x mask.

    Windows touching the border do not count. The margin absorbs the sub-pixel offsets between
    bilinear image and nearest-neighbour mask sampling (cv2.INTER_NEAREST is not centre-aligned).
    """
    padded = np.pad(mask.astype(int), 3, constant_values=-1)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (7, 7))
    interior = windows.min(axis=(2, 3)) == windows.max(axis=(2, 3))
    diff = np.abs(image[..., 0].astype(int) - 60 * mask.astype(int))
    return float((diff[interior] <= 2).mean()), int(interior.sum())


def test_geometric_steps_move_image_and_mask_together():
    """Image = 60 x class of a blocky mask; wherever the mask is locally constant, they agree."""
    geometric = build_transform(S, GEOMETRIC_STEPS)
    moved, counted, control = 0, 0, []
    for seed in range(60):
        mask = blocks(96, 80, seed, (0, 1, 2, 3))
        image = np.repeat((mask * 60)[..., None], 3, axis=2)
        out_image, out_mask = augment_pair(geometric, image, mask, seed)
        share, count = agreement(out_image, out_mask)
        assert share >= 0.999, seed
        counted += count
        moved += not np.array_equal(out_mask, mask[:S, :S])
        control.append(agreement(out_image, np.fliplr(out_mask))[0])
    assert counted > 60 * 200
    assert moved > 50
    assert np.mean(control) < 0.8  # the check does detect a mask that moved differently


def test_full_transform_is_fast(train):
    big = build_train_transform(256)
    image, mask = random_image(256, 256), blocks(256, 256, 0)
    augment_pair(big, image, mask, 0)
    best = float("inf")
    for repeat in range(3):
        start = time.perf_counter()
        for seed in range(20):
            augment_pair(big, image, mask, 100 * repeat + seed)
        best = min(best, (time.perf_counter() - start) / 20)
    assert best < 0.020
