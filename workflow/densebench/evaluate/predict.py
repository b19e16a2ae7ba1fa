"""Prediction of a run's test split -> per-image confusion matrices on disk.

Two inference modes (protocol.md §4):
- `resize` (the paper's published setting): image resized to S x S, one forward pass, argmax;
  the label is resized to S x S (nearest) and scored at that resolution. With the
  `native_resolution_scoring` fix the logits are instead resized back to the image's native
  size and scored against the native label.
- `sliding_window`: S x S windows over the native image with stride floor((1 - overlap) * S),
  starting at 0 and with the last window snapped to the border; logits summed and divided by the
  coverage count; scored at native resolution. Images smaller than S are zero-padded (after
  normalisation) to one window and the padding is cropped off (the authors' code fails there).
  Windows go through the model in chunks of the batch size, not all at once.
Every downstream number is a pure function of the saved matrices, written by
`densebench.evaluate.confusion` (the confusion file's one home).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from densebench.data.dataset import SegmentationSplit
from densebench.data.resize import resize_tensor
from densebench.evaluate.confusion import RUN_KEYS, write_confusion
from densebench.models.segmenter import (
    SegmentationModel,
    backbone_fingerprint,
    build_model,
    load_trainable_state,
)
from densebench.spec import RunSpec
from densebench.train.runtime import amp_dtype, autocast, configure_torch


def confusion_matrices(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore: int
) -> torch.Tensor:
    """Per-image confusion matrices (B, C, C) of (B, H, W) class maps, ignore pixels dropped."""
    b = pred.shape[0]
    valid = target != ignore
    flat = (target.clamp(0, num_classes - 1) * num_classes + pred).masked_fill(~valid, -1)
    offsets = torch.arange(b, device=pred.device).view(b, 1, 1) * num_classes**2
    index = (flat + offsets)[valid]
    counts = torch.bincount(index.flatten(), minlength=b * num_classes**2)
    return counts.view(b, num_classes, num_classes)


def load_run(checkpoint: Path, weights_dir: Path | None, spec: RunSpec | None = None):
    """Rebuild a trained run's model from its trainable-state checkpoint (`best.pt`).

    With the job's current `spec`, the checkpoint must have been trained under the same training
    identity (`densebench.identity`); the current spec then decides the evaluation and execution
    settings. Without it, the spec saved in the checkpoint is used.
    """
    saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
    trained = RunSpec.from_dict(saved["spec"])
    if spec is None:
        spec = trained
    elif trained.training_identity() != spec.training_identity():
        raise ValueError(
            f"{checkpoint} was trained under another training configuration than this job's "
            f"({spec.dataset} / {spec.model} / {spec.strategy}); retrain the run: "
            f"snakemake --forcerun train {checkpoint}"
        )
    model = build_model(spec, weights_dir)
    expected = saved["provenance"]["backbone_fingerprint"]
    if not np.isclose(backbone_fingerprint(model), expected, rtol=1e-9):
        raise ValueError(
            f"{checkpoint}: the rebuilt backbone of {spec.model} differs from the one it was "
            "trained with (other weights or seed); retrain the run"
        )
    load_trainable_state(model, saved["state"])
    return spec, model


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets 0, stride, ... with the last one snapped to the border, no duplicates."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def sliding_window_logits(
    forward, image: torch.Tensor, size: int, overlap: float, batch: int
) -> torch.Tensor:
    """Logits (C, H, W) of a normalised (3, H, W) image from averaged S x S windows."""
    _, h, w = image.shape
    padded = F.pad(image, (0, max(0, size - w), 0, max(0, size - h)))
    ph, pw = padded.shape[-2:]
    stride = max(1, int((1 - overlap) * size))
    boxes = [
        (y, x) for y in window_starts(ph, size, stride) for x in window_starts(pw, size, stride)
    ]
    total, count = None, torch.zeros(1, ph, pw, device=image.device)
    for i in range(0, len(boxes), batch):
        chunk = boxes[i : i + batch]
        crops = torch.stack([padded[:, y : y + size, x : x + size] for y, x in chunk])
        logits = forward(crops).float()
        if total is None:
            total = torch.zeros(logits.shape[1], ph, pw, device=image.device)
        for (y, x), out in zip(chunk, logits, strict=True):
            total[:, y : y + size, x : x + size] += out
            count[:, y : y + size, x : x + size] += 1
    return (total / count)[:, :h, :w]


@torch.no_grad()
def predict_matrices(model, spec: RunSpec, store: Path, device) -> tuple[np.ndarray, list]:
    """Per-image confusion matrices of the test split and the sample ids, in split order.

    Split order is the authors' test-list order in a store written with their split list, as in
    ``scripts/infer_bootstrap.py::collect_per_sample_confusion_matrices_resize`` (an unshuffled
    loader over the list), so the bootstrap's image indices pick the same images as theirs.
    """
    norm, size = spec.normalisation, spec.input_size
    evaluate, c, ignore = spec.evaluate, spec.num_classes, spec.ignore_index
    dtype = amp_dtype(device, spec.fixes["bf16_autocast"])
    native = evaluate.inference == "sliding_window" or spec.fixes["native_resolution_scoring"]
    data = SegmentationSplit(store, "test", None if native else size, norm.mean, norm.std)

    def forward(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, dtype):
            return model(x.to(device))

    matrices = []
    for k in range(len(data)):
        image, label = data[k]
        if evaluate.inference == "sliding_window":
            logits = sliding_window_logits(
                forward, image.to(device), size, evaluate.overlap, spec.train.batch_size
            )
        elif native:
            logits = resize_tensor(
                forward(resize_tensor(image[None], (size, size))).float(), label.shape
            )[0]
        else:
            logits = forward(image[None]).float()[0]
        pred = logits.argmax(0)[None]
        matrices.append(confusion_matrices(pred, label[None].to(device), c, ignore).cpu())
    ids = [data.sample_id(k) for k in range(len(data))]
    return torch.cat(matrices).numpy().astype(np.int64), ids


def predict_run(
    checkpoint: Path,
    store: Path,
    out: Path,
    weights_dir: Path | None = None,
    threads: int = 1,
    spec: RunSpec | None = None,
) -> dict[str, Any]:
    """Write confusion.npz for the test split: matrices (N, C, C), sample_ids, classes, keys."""
    spec, model = load_run(checkpoint, weights_dir, spec)
    device = configure_torch(int(spec.train.seed), threads)
    model.to(device).eval()
    stacked, ids = predict_matrices(model, spec, store, device)
    from densebench.data.store import DatasetStore

    keys = {k: getattr(spec, k) for k in RUN_KEYS}
    write_confusion(Path(out), stacked, ids, DatasetStore(store).classes, keys)
    return {"images": len(ids), "pixels": int(stacked.sum())}


def patch_tokens(model, x: torch.Tensor) -> torch.Tensor:
    """(B, N, D) last-layer patch tokens the decoder reads (after a Transformer adapter),
    prefix tokens dropped. Only PFM runs have them: the UNet baseline is refused."""
    if not isinstance(model, SegmentationModel):
        raise ValueError(
            f"a {type(model).__name__} has no patch tokens: token similarity is defined for "
            "PFM runs only; leave the UNet baseline out of ablations.token_similarity.models"
        )
    with torch.no_grad():
        tokens = model.encode(x)
        if model.token_adapter is not None:
            tokens = model.token_adapter(tokens)
    return tokens[:, model.backbone.num_prefix_tokens :, :]


def _test_images_run(checkpoint: Path, store: Path, weights_dir: Path | None):
    """A trained run's model in eval mode on the GPU if there is one, its test split at the
    run's input size (resize inference), and the device."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    spec, model = load_run(checkpoint, weights_dir)
    model.to(device).eval()
    norm = spec.normalisation
    data = SegmentationSplit(store, "test", spec.input_size, norm.mean, norm.std)
    return model, data, device


def token_similarity(
    checkpoint: Path, store: Path, weights_dir: Path | None, images: int, queries: int
) -> tuple[float, np.ndarray]:
    """A run's mean pairwise token cosine similarity over its first ``images`` test images and
    the similarity maps of ``queries`` evenly spaced query tokens of the first image."""
    from densebench.evaluate.similarity import mean_similarity, query_maps

    model, data, device = _test_images_run(checkpoint, store, weights_dir)
    if not isinstance(model, SegmentationModel):
        raise ValueError(
            f"{checkpoint}: a {type(model).__name__} run has no patch tokens; token similarity "
            "is defined for PFM runs only (leave the UNet out of ablations.token_similarity)"
        )
    per_image = []
    for k in range(min(images, len(data))):
        tokens = patch_tokens(model, data[k][0][None].float().to(device))[0]
        per_image.append(tokens.double().cpu().numpy())
    side = math.isqrt(len(per_image[0]))
    picks = np.linspace(0, side * side - 1, queries).round().astype(int).tolist()
    return mean_similarity(per_image), query_maps(per_image[0], (side, side), picks)


def qualitative_predictions(
    checkpoint: Path, store: Path, weights_dir: Path | None, images: int
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[str]]:
    """(raw images, ground-truth maps, predicted maps, sample ids) of a run's first ``images``
    test images, at the run's input size (resize inference)."""
    model, data, device = _test_images_run(checkpoint, store, weights_dir)
    size = data.size
    pictures, truths, predictions, ids = [], [], [], []
    for k in range(min(images, len(data))):
        image, label = data[k]
        with torch.no_grad():
            logits = model(image[None].float().to(device)).float()[0]
        picture = data.store.read(data.indices[k])[0]
        pictures.append(
            resize_tensor(torch.from_numpy(picture).permute(2, 0, 1)[None].float(), (size, size))[0]
            .permute(1, 2, 0).clamp(0, 255).byte().numpy()
        )  # fmt: skip
        truths.append(label.numpy())
        predictions.append(logits.argmax(0).cpu().numpy())
        ids.append(data.sample_id(k))
    return pictures, truths, predictions, ids
