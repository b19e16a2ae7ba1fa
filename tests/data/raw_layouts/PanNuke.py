"""Tiny PanNuke raw tree: fold_1.zip, fold_2.zip and fold_3.zip extracted side by side.

Each zip unpacks to `Fold k/images/foldk/{images.npy, types.npy}` and
`Fold k/masks/foldk/masks.npy`: images (N, H, W, 3) float64 0..255, types (N,) tissue names,
masks (N, H, W, 6) float64 (channels 0-4 instance ids of neoplastic, inflammatory, connective,
dead, epithelial; channel 5 binary background). Two 64 x 64 patches per fold. Patch j of every
fold has: nucleus id 3 of type `TYPE_OF[(fold, j)]` in `NUCLEUS_BOX`; an overlap in
`OVERLAP_BOX` where neoplastic id 3 and connective id 7 both claim the pixels (argmax -> 2);
a void region `VOID_BOX` where no channel is set (argmax -> 0); background elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIZE = 64
PER_FOLD = 2
NUCLEUS_BOX = (slice(4, 12), slice(4, 14))
OVERLAP_BOX = (slice(30, 34), slice(30, 36))
VOID_BOX = (slice(50, 54), slice(50, 60))
TYPE_OF = {(fold, j): (2 * (fold - 1) + j) % 5 for fold in (1, 2, 3) for j in range(PER_FOLD)}
TISSUES = ["Breast", "Colon"]


def fold_dir(root: Path, fold: int) -> Path:
    """Top-level folder of one extracted fold zip."""
    return Path(root) / f"Fold {fold}"


def arrays(fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W, 3) float64 and masks (N, H, W, 6) float64 of one tiny fold."""
    rng = np.random.default_rng(100 + fold)
    images = rng.integers(0, 256, (PER_FOLD, SIZE, SIZE, 3)).astype(np.float64)
    masks = np.zeros((PER_FOLD, SIZE, SIZE, 6), dtype=np.float64)
    masks[..., 5] = 1.0
    for j in range(PER_FOLD):
        masks[(j, *NUCLEUS_BOX, TYPE_OF[(fold, j)])] = 3
        masks[(j, *NUCLEUS_BOX, 5)] = 0
        masks[(j, *OVERLAP_BOX, 0)] = 3
        masks[(j, *OVERLAP_BOX, 2)] = 7
        masks[(j, *OVERLAP_BOX, 5)] = 0
        masks[(j, *VOID_BOX, 5)] = 0
    return images, masks


def make_raw(root: Path, card: dict) -> None:
    """Write the three tiny folds under root/Fold 1, Fold 2, Fold 3."""
    for fold in (1, 2, 3):
        images, masks = arrays(fold)
        image_dir = fold_dir(root, fold) / "images" / f"fold{fold}"
        mask_dir = fold_dir(root, fold) / "masks" / f"fold{fold}"
        image_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        np.save(image_dir / "images.npy", images)
        np.save(image_dir / "types.npy", np.array(TISSUES[:PER_FOLD]))
        np.save(mask_dir / "masks.npy", masks)


def corrupt_mask(root: Path) -> Path:
    """Truncate fold 2's masks.npy to half its bytes; return its path."""
    path = fold_dir(root, 2) / "masks" / "fold2" / "masks.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path
