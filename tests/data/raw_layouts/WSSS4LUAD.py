"""Tiny WSSS4LUAD tree: `2.validation/` and `3.testing/` with `img/`, `mask/`, `background-mask/`.

Images are RGB PNGs; masks are palette PNGs whose indices 0..3 carry the release colours
(0,64,128) tumour, (64,128,0) stroma, (243,152,0) normal, (255,255,255) background. The release's
file names were not seen: names 1, 10, 2 make Python's sorted() order (1, 10, 2) differ from
natural order, which the authors' running index depends on. `background-mask/` (not read by the
converter) holds 0/255 grey PNGs. `KNOWN` is the hand-drawn pattern of the first validation mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FOLDERS = {"2.validation": ("1", "10", "2"), "3.testing": ("1", "2")}
PALETTE = ((0, 64, 128), (64, 128, 0), (243, 152, 0), (255, 255, 255))
SIZES = {"1": (64, 80), "10": (72, 64), "2": (96, 96)}
KNOWN = {
    "stroma": (slice(8, 24), slice(8, 40)),
    "normal": (slice(30, 40), slice(0, 80)),
    "background": (slice(56, 64), slice(0, 80)),
}
"""Regions of 2.validation/mask/1.png (the rest is tumour, index 0)."""


def _image(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """A deterministic RGB tile."""
    rng = np.random.default_rng(seed)
    return rng.integers(90, 250, (*shape, 3), dtype=np.uint8)


def _indices(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """Palette indices: vertical bands of the four classes."""
    cols = np.arange(shape[1])[None, :] // 16
    return np.broadcast_to((cols + seed) % 4, shape).astype(np.uint8)


def save_palette(indices: np.ndarray, path: Path) -> None:
    """Save palette indices as a P-mode PNG with the WSSS4LUAD colours."""
    image = Image.fromarray(indices, "P")
    image.putpalette([c for colour in PALETTE for c in colour])
    image.save(path)


def make_raw(root: Path, card: dict) -> None:
    """Write three validation and two test patches with masks and background masks."""
    seed = 0
    for folder, stems in FOLDERS.items():
        base = Path(root) / folder
        for sub in ("img", "mask", "background-mask"):
            (base / sub).mkdir(parents=True)
        for stem in stems:
            shape = SIZES[stem]
            indices = _indices(seed, shape)
            if (folder, stem) == ("2.validation", "1"):
                indices = np.zeros(shape, np.uint8)
                for k, name in enumerate(("stroma", "normal", "background"), start=1):
                    indices[KNOWN[name]] = k
            Image.fromarray(_image(400 + seed, shape), "RGB").save(base / "img" / f"{stem}.png")
            save_palette(indices, base / "mask" / f"{stem}.png")
            background = np.where(indices == 3, 255, 0).astype(np.uint8)
            Image.fromarray(background, "L").save(base / "background-mask" / f"{stem}.png")
            seed += 1


def corrupt_mask(root: Path) -> Path:
    """Truncate the second test mask to half its bytes."""
    path = Path(root) / "3.testing" / "mask" / "2.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
