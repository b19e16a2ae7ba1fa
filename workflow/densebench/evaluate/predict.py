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

Prediction runs in batches of the run's batch size: the model's inputs of consecutive test images
(their S x S image, or their windows) are stacked, whatever the images' native sizes, and each
image's logits are put together from its outputs in the one-image order. The images come through
a loader (workers, uint8) and are normalised on the device. With BatchNorm in eval mode a batch
changes no image's logits mathematically; float sums inside the model may still be ordered
differently for another batch size (tests/evaluate/test_predict.py checks the matrices equal those
of one image at a time).

Every downstream number is a pure function of the saved matrices, written by
`densebench.evaluate.confusion` (the confusion file's one home).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from densebench.data.dataset import SegmentationSplit, normalise
from densebench.data.loader import device_batch, make_loader
from densebench.data.resize import resize_tensor
from densebench.evaluate.confusion import write_confusion
from densebench.models.segmenter import (
    SegmentationModel,
    backbone_fingerprint,
    build_model,
    load_trainable_state,
)
from densebench.runtime import amp_dtype, autocast, configure_torch
from densebench.spec import RunSpec
from densebench.variants import RUN_KEYS

Forward = Callable[[torch.Tensor], torch.Tensor]
Tag = TypeVar("Tag")


def confusion_matrices(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore: int
) -> torch.Tensor:
    """Per-image confusion matrices (B, C, C) of (B, H, W) class maps, ignore pixels dropped.
    Targets of any integer dtype (a uint8 mask would overflow C x target in its own dtype)."""
    b, target = pred.shape[0], target.long()
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


class WholeImage:
    """Resize inference: the S x S image is the model's input, its output the logits."""

    def __init__(self, image: torch.Tensor):
        self.image, self.out = image, None
        self.n_inputs = 1

    def model_input(self, i: int) -> torch.Tensor:
        """The model's input (the image)."""
        return self.image

    def add(self, i: int, out: torch.Tensor) -> None:
        """Keep the model's output."""
        self.out = out

    def logits(self) -> torch.Tensor:
        """(C, S, S) logits."""
        return self.out


class ResizedImage(WholeImage):
    """`native_resolution_scoring`: the image resized to S x S (torch bilinear) is the model's
    input, its output resized back to the image's native size the logits."""

    def __init__(self, image: torch.Tensor, size: int):
        super().__init__(resize_tensor(image[None], (size, size))[0])
        self.shape = tuple(image.shape[-2:])

    def logits(self) -> torch.Tensor:
        """(C, H, W) logits at native resolution."""
        return resize_tensor(self.out[None], self.shape)[0]


class Windows:
    """Sliding-window inference of one normalised (3, H, W) image: S x S windows, their logits
    summed in window order and divided by the coverage count."""

    def __init__(self, image: torch.Tensor, size: int, overlap: float):
        _, h, w = image.shape
        self.padded = F.pad(image, (0, max(0, size - w), 0, max(0, size - h)))
        ph, pw = self.padded.shape[-2:]
        stride = max(1, int((1 - overlap) * size))
        self.boxes = [
            (y, x) for y in window_starts(ph, size, stride) for x in window_starts(pw, size, stride)
        ]
        self.n_inputs, self.size, self.shape = len(self.boxes), size, (h, w)
        self.total: torch.Tensor | None = None
        self.count = torch.zeros(1, ph, pw, device=image.device)

    def model_input(self, i: int) -> torch.Tensor:
        """Window i."""
        y, x = self.boxes[i]
        return self.padded[:, y : y + self.size, x : x + self.size]

    def add(self, i: int, out: torch.Tensor) -> None:
        """Add window i's (C, S, S) logits to the sum."""
        y, x = self.boxes[i]
        if self.total is None:
            self.total = torch.zeros(out.shape[0], *self.padded.shape[-2:], device=out.device)
        self.total[:, y : y + self.size, x : x + self.size] += out
        self.count[:, y : y + self.size, x : x + self.size] += 1

    def logits(self) -> torch.Tensor:
        """(C, H, W) averaged logits, padding cropped off."""
        h, w = self.shape
        return (self.total / self.count)[:, :h, :w]


Plan = WholeImage | Windows


def batched_logits(
    forward: Forward, plans: Iterable[tuple[Plan, Tag]], batch: int
) -> Iterator[tuple[Plan, Tag]]:
    """Run the inputs of consecutive plans through `forward` in batches of `batch` (the windows
    of several images share a batch) and yield each (plan, tag) once its outputs are all added,
    in order."""
    pending: deque[tuple[Plan, Tag]] = deque()
    queue: deque[tuple[Plan, int]] = deque()
    for plan, tag in plans:
        pending.append((plan, tag))
        queue.extend((plan, i) for i in range(plan.n_inputs))
        while len(queue) >= batch:
            _run(forward, [queue.popleft() for _ in range(batch)])
            while pending and (not queue or pending[0][0] is not queue[0][0]):
                yield pending.popleft()
    if queue:
        _run(forward, list(queue))
    yield from pending


def _run(forward: Forward, chunk: list[tuple[Plan, int]]) -> None:
    """One forward pass over the stacked inputs of `chunk`; each output goes to its plan."""
    logits = forward(torch.stack([plan.model_input(i) for plan, i in chunk])).float()
    for (plan, i), out in zip(chunk, logits, strict=True):
        plan.add(i, out)


def predicted_class_maps(
    model, spec: RunSpec, data: SegmentationSplit, device, threads: int = 1
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(predicted class map, label) of every image of `data`, in split order, at the resolution
    it is scored at (S x S under `resize`, native otherwise); both (H, W) on the device.

    The model sees batches of the run's batch size; `threads` sizes the loader's workers.
    """
    size, evaluate = spec.input_size, spec.evaluate
    dtype = amp_dtype(device, spec.fixes["bf16_autocast"])
    sliding = evaluate.inference == "sliding_window"
    native = sliding or spec.fixes["native_resolution_scoring"]

    def forward(x: torch.Tensor) -> torch.Tensor:
        with autocast(device, dtype):
            return model(x)

    def plans() -> Iterator[tuple[Plan, torch.Tensor]]:
        for item in make_loader(data, spec, False, device, threads, batched=False):
            image, label = device_batch(item, device, data.mean, data.std)
            if sliding:
                yield Windows(image, size, evaluate.overlap), label
            else:
                yield (ResizedImage(image, size) if native else WholeImage(image)), label

    for plan, label in batched_logits(forward, plans(), int(spec.train.batch_size)):
        yield plan.logits().argmax(0), label


def scored_test_split(spec: RunSpec, store: Path) -> SegmentationSplit:
    """The run's test split as prediction reads it: resized to S x S under `resize`, native
    under `sliding_window` or the `native_resolution_scoring` fix."""
    native = spec.evaluate.inference == "sliding_window" or spec.fixes["native_resolution_scoring"]
    norm = spec.normalisation
    return SegmentationSplit(
        store, "test", None if native else spec.input_size, norm.mean, norm.std
    )


@torch.no_grad()
def predict_matrices(
    model, spec: RunSpec, store: Path, device, threads: int = 1
) -> tuple[np.ndarray, list]:
    """Per-image confusion matrices of the test split and the sample ids, in split order.

    Split order is the authors' test-list order in a store written with their split list, as in
    ``scripts/infer_bootstrap.py::collect_per_sample_confusion_matrices_resize`` (an unshuffled
    loader over the list), so the bootstrap's image indices pick the same images as theirs.
    """
    c, ignore = spec.num_classes, spec.ignore_index
    data = scored_test_split(spec, store)
    matrices = [
        confusion_matrices(pred[None], label[None], c, ignore)
        for pred, label in predicted_class_maps(model, spec, data, device, threads)
    ]
    ids = [data.sample_id(k) for k in range(len(data))]
    return torch.cat(matrices).cpu().numpy().astype(np.int64), ids


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
    execution = spec.train.execution
    device = configure_torch(int(spec.train.seed), threads, execution.deterministic_algorithms)
    model.to(device).eval()
    stacked, ids = predict_matrices(model, spec, store, device, threads)
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
        image = normalise(data[k][0][None].to(device), data.mean, data.std)
        tokens = patch_tokens(model, image)[0]
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
            logits = model(normalise(image[None].to(device), data.mean, data.std)).float()[0]
        picture = data.store.read(data.indices[k])[0]
        pictures.append(
            resize_tensor(torch.from_numpy(picture).permute(2, 0, 1)[None].float(), (size, size))[0]
            .permute(1, 2, 0).clamp(0, 255).byte().numpy()
        )  # fmt: skip
        truths.append(label.long().numpy())
        predictions.append(logits.argmax(0).cpu().numpy())
        ids.append(data.sample_id(k))
    return pictures, truths, predictions, ids
