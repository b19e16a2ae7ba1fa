"""Tiny CoNSeP tree as `consep.zip` extracts: `CoNSeP/{Train,Test}/{Images,Labels,Overlay}`.

Images are PNG (one RGBA, as some releases store them), labels `.mat` v5 with `inst_map`,
`type_map`, `inst_type` and `inst_centroid`. Every image holds two hand-drawn square nuclei:
instance 1 in NUCLEUS with type TYPES[stem], instance 2 in SECOND with type 3. The names include
`train_10` so that the authors' plain string order (train_1, train_10, train_2) is exercised.

The small writers here (`save_mat`, `tissue`, `save_image`) are shared by the other HoVer-Net-style
layouts (kumar, cpm15, cpm17) and by Lizard.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

FILES = {"Train": ["train_1", "train_2", "train_10"], "Test": ["test_1", "test_2"]}
SHAPE = (64, 80)
NUCLEUS = (slice(8, 20), slice(10, 26))
SECOND = (slice(40, 52), slice(50, 62))
SECOND_TYPE = 3
TYPES = {"train_1": 4, "train_2": 2, "train_10": 7, "test_1": 1, "test_2": 5}
RGBA = "train_2"
CORRUPT_DETAIL = "[9]"
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by tests/data/raw_layouts (fixed header)"


def save_mat(variables: dict[str, np.ndarray], path: Path) -> None:
    """Write a compressed .mat v5 file with a fixed header (no creation time)."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables, do_compression=True)
    data = bytearray(buf.getvalue())
    data[:116] = MAT_HEADER.ljust(116, b" ")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))


def tissue(seed: int, shape: tuple[int, int], inst: np.ndarray, alpha: bool = False) -> np.ndarray:
    """Pink noise with darker nuclei where inst > 0; RGBA (alpha 200) when asked."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(150, 230, (*shape, 3), dtype=np.uint8)
    rgb[inst > 0] = rng.integers(40, 90, (int((inst > 0).sum()), 3), dtype=np.uint8)
    if alpha:
        return np.dstack([rgb, np.full(shape, 200, np.uint8)])
    return rgb


def save_image(array: np.ndarray, path: Path, fmt: str = "PNG") -> None:
    """Write an image array (PNG or TIFF), creating the folder."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def two_nuclei(shape: tuple[int, int], first: tuple, second: tuple) -> np.ndarray:
    """Instance map (int32) with instance 1 in box `first` and instance 2 in box `second`."""
    inst = np.zeros(shape, np.int32)
    inst[first] = 1
    inst[second] = 2
    return inst


def _consep_mat(inst: np.ndarray, types: list[int]) -> dict[str, np.ndarray]:
    """CoNSeP label variables for an instance map and per-instance types."""
    lut = np.array([0, *types], np.int32)
    centroids = [np.argwhere(inst == i).mean(axis=0)[::-1] for i in range(1, len(types) + 1)]
    return {
        "inst_map": inst.astype(np.float64),
        "type_map": lut[inst],
        "inst_type": np.asarray(types, np.float64).reshape(-1, 1),
        "inst_centroid": np.asarray(centroids, np.float64).reshape(-1, 2),
    }


def make_raw(root: Path, card: dict) -> None:
    """Write the tiny CoNSeP tree under root/CoNSeP."""
    base = Path(root) / "CoNSeP"
    seed = 0
    for folder, stems in FILES.items():
        for stem in stems:
            seed += 1
            inst = two_nuclei(SHAPE, NUCLEUS, SECOND)
            rgb = tissue(seed, SHAPE, inst, alpha=stem == RGBA)
            save_image(rgb, base / folder / "Images" / f"{stem}.png")
            save_image(rgb[..., :3], base / folder / "Overlay" / f"{stem}.png")
            save_mat(
                _consep_mat(inst, [TYPES[stem], SECOND_TYPE]),
                base / folder / "Labels" / f"{stem}.mat",
            )


def corrupt_mask(root: Path) -> Path:
    """Put type 9 (outside the 8 classes, not 255) into one label's type_map."""
    from scipy.io import loadmat

    path = Path(root) / "CoNSeP" / "Test" / "Labels" / "test_1.mat"
    variables = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    variables["type_map"][0, 0] = 9
    save_mat(variables, path)
    return path
