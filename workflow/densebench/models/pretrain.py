"""Pretraining of the demo ViTs (`weights: pretrain`), so that their tokens mean something.

`write_pretrained(model, record, out_dir)` builds the record's encoder with random weights,
pretrains it on fresh synthetic images of the three tissue generators (`densebench.data.tissue`:
nuclei, glands, tissue regions) and writes a local weights snapshot: `model.safetensors` (the
encoder's state dict in timm's own key names, what `densebench.models.families.timm.build`
loads strictly) and a SNAPSHOT.json manifest that `check_snapshot` accepts and that records the
pretraining settings. The objective is supervised and dense: a linear head on each patch token
predicts the class fractions of each quarter of its patch (soft cross-entropy) over the disjoint
union of the generators' classes (`CLASSES`), on inputs normalised with the record's own
(`model`) normalisation, as a real PFM was pretrained with its own. The head is not saved.

The images are seeded from the record's `pretrain.seed` with (seed, generator, index), a seed
sequence of another length than the demo datasets' (seed, index), so no pretraining image is a
demo image. Determinism: fixed seeds, one thread while training, no data-dependent kernels, so
the same record gives byte-identical weights (and manifest).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from densebench.atomic import atomic_output
from densebench.data.resize import resize_pair
from densebench.data.tissue import bcss_image, consep_image, glas_image
from densebench.models.backbone import TokenBackbone, build_backbone
from densebench.models.weights import MANIFEST, pretrain_identity, pretrain_settings

WEIGHTS_FILE = "model.safetensors"
STYLE_CLASSES = {
    "consep": ("background", "inflammatory", "epithelial", "spindle"),
    "glas": ("background", "benign_gland", "tumour_gland"),
    "bcss": ("background", "tumour", "stroma", "inflammatory", "necrosis"),
}
"""Each generator's classes, in the order of the class ids it draws."""
STYLE_SHAPES = {"consep": (80, 80), "glas": (72, 104), "bcss": (96, 112)}
"""(height, width) each generator draws at, as the demo datasets' images (then resized)."""
CLASSES = tuple(f"{style}/{name}" for style, names in STYLE_CLASSES.items() for name in names)
"""The head's classes: the disjoint union of the generators' classes."""
SUBGRID = 2
"""Each token predicts the class fractions of SUBGRID x SUBGRID cells of its patch."""
WEIGHT_DECAY = 0.05
"""AdamW weight decay of the pretraining."""


# ---- the synthetic pretraining set ---------------------------------------------------------


def style_image(style: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One image of a generator and its class map (the generator's own class ids)."""
    height, width = STYLE_SHAPES[style]
    if style == "consep":
        ids = {name: k for k, name in enumerate(STYLE_CLASSES["consep"]) if k}
        rgb, inst, types = consep_image(rng, height, width, ids)
        return rgb, np.array([0, *types], np.uint8)[inst]
    if style == "glas":
        malignant = bool(rng.integers(2))
        rgb, anno = glas_image(rng, height, width, malignant)
        return rgb, ((anno > 0) * (1 + malignant)).astype(np.uint8)
    classes = list(STYLE_CLASSES["bcss"])
    return bcss_image(rng, height, width, classes, forced=int(rng.integers(len(classes))))


def pretrain_images(seed: int, images: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """`images` images of each generator resized to size x size: uint8 (N, S, S, 3) RGB and
    (N, S, S) class maps in `CLASSES` ids."""
    rgbs, labels, offset = [], [], 0
    for k, (style, names) in enumerate(STYLE_CLASSES.items()):
        for i in range(images):
            rgb, mask = style_image(style, np.random.default_rng([int(seed), k, i]))
            rgb, mask = resize_pair(rgb, mask, size)
            rgbs.append(rgb)
            labels.append(mask.astype(np.int64) + offset)
        offset += len(names)
    return np.stack(rgbs), np.stack(labels)


def normalise(rgb: np.ndarray, record: dict[str, Any]) -> torch.Tensor:
    """(N, 3, S, S) float inputs, normalised with the model's own mean and std."""
    norm = record["normalisation"]["model"]
    mean = torch.tensor(norm["mean"]).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(norm["std"]).view(1, 3, 1, 1) * 255.0
    return (torch.from_numpy(rgb).permute(0, 3, 1, 2).float() - mean) / std


def cell_targets(labels: torch.Tensor, patch: int) -> torch.Tensor:
    """Class fractions of each token's SUBGRID x SUBGRID cells: (B, N, SUBGRID^2 * C)."""
    onehot = F.one_hot(labels, len(CLASSES)).permute(0, 3, 1, 2).float()
    cells = F.avg_pool2d(onehot, patch // SUBGRID)  # (B, C, G*SUBGRID, G*SUBGRID)
    b, c, side, _ = cells.shape
    grid = side // SUBGRID
    cells = cells.reshape(b, c, grid, SUBGRID, grid, SUBGRID).permute(0, 2, 4, 3, 5, 1)
    return cells.reshape(b, grid * grid, SUBGRID * SUBGRID * c)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of per-cell logits against per-cell class fractions."""
    c = len(CLASSES)
    log_p = F.log_softmax(logits.reshape(*logits.shape[:2], -1, c), dim=-1)
    return -(targets.reshape(log_p.shape) * log_p).sum(-1).mean()


def augment(
    x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random rot90 / flip of a batch of inputs and class maps."""
    k = int(torch.randint(4, (1,), generator=generator))
    flip = bool(torch.randint(2, (1,), generator=generator))
    x, y = torch.rot90(x, k, (2, 3)), torch.rot90(y, k, (1, 2))
    return (x.flip(3), y.flip(2)) if flip else (x, y)


# ---- pretraining ---------------------------------------------------------------------------


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread (results do not depend on the machine's cores), then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def input_side(record: dict[str, Any], size: int) -> int:
    """The pretraining input side: `size` rounded down to a multiple of the patch size."""
    patch = int(record["patch_size"])
    if size < patch:
        raise ValueError(f"pretrain input_size {size} is smaller than one patch ({patch} px)")
    return size // patch * patch


def train_steps(
    backbone: TokenBackbone, head: nn.Linear, x: torch.Tensor, y: torch.Tensor, settings: dict
) -> list[float]:
    """Train backbone and head for `steps` AdamW steps (cosine decay to 0) on random batches of
    (x, y), each randomly rotated / flipped; return each step's loss."""
    steps, batch = int(settings["steps"]), int(settings["batch_size"])
    params = [*backbone.parameters(), *head.parameters()]
    optimiser = torch.optim.AdamW(params, lr=float(settings["lr"]), weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.5 * (1 + np.cos(np.pi * step / steps))
    )
    generator = torch.Generator().manual_seed(int(settings["seed"]))
    losses = []
    backbone.train()
    for _ in range(steps):
        index = torch.randint(len(x), (batch,), generator=generator)
        xb, yb = augment(x[index], y[index], generator)
        loss = soft_cross_entropy(head(backbone(xb)), cell_targets(yb, backbone.patch_size))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return losses


def pretrain(model: str, record: dict[str, Any]) -> tuple[TokenBackbone, dict[str, float]]:
    """Pretrain a record's encoder; return it (eval mode) with its first and final loss."""
    settings = pretrain_settings(model, record)
    side = input_side(record, int(settings["input_size"]))
    rgb, labels = pretrain_images(int(settings["seed"]), int(settings["images"]), side)
    x, y = normalise(rgb, record), torch.from_numpy(labels)
    with one_thread():
        torch.manual_seed(int(settings["seed"]))
        backbone = build_backbone(model, dict(record, weights="random"))
        head = nn.Linear(backbone.embed_dim, SUBGRID * SUBGRID * len(CLASSES))
        losses = train_steps(backbone, head, x, y, settings)
    backbone.eval()
    tail = losses[-max(1, len(losses) // 10) :]
    return backbone, {"first_loss": losses[0], "final_loss": float(np.mean(tail))}


def write_pretrained(model: str, record: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Pretrain a record's encoder and write its snapshot folder atomically; return the
    manifest. The folder holds `model.safetensors` and SNAPSHOT.json, nothing else."""
    from safetensors.torch import save_file

    started = time.perf_counter()
    backbone, stats = pretrain(model, record)
    state = {k: v.detach().contiguous() for k, v in backbone.encoder.state_dict().items()}
    with atomic_output(Path(out_dir)) as tmp:
        tmp.mkdir()
        save_file(state, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        manifest = _manifest(model, record, tmp / WEIGHTS_FILE, stats)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    manifest["seconds"] = round(time.perf_counter() - started, 1)
    return manifest


def _manifest(
    model: str, record: dict[str, Any], weights: Path, stats: dict[str, Any]
) -> dict[str, Any]:
    """The SNAPSHOT.json of a pretrained snapshot (no time stamp: the folder is reproducible)."""
    import timm

    size = weights.stat().st_size
    return {
        "model": model,
        "source": "pretrain",
        "repo": None,
        "revision": None,
        "commit": None,
        "files": [{"path": weights.name, "size": size}],
        "total_bytes": size,
        "identity": pretrain_identity(model, record),
        "objective": f"soft cross-entropy of {SUBGRID}x{SUBGRID} patch-cell class fractions",
        "classes": list(CLASSES),
        "input_side": input_side(record, int(record["pretrain"]["input_size"])),
        "first_loss": round(stats["first_loss"], 6),
        "final_loss": round(stats["final_loss"], 6),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "licence": record.get("licence"),
    }
