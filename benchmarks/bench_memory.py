"""The GPU memory model's per-block bytes at the paper grid's real token counts (issue 18).

tests/test_memory.py checks densebench.memory against the bytes autograd saves at 2 and 3
patches a side; this runs the same count at a grid cell's input side (RINGS: 992 px for
patch 16, 3,845 tokens; 994 px for patch 14, 5,046 tokens with 4 registers), where the
token-proportional part dominates the weights' half copies. Per model (default uni_v1, a
ViT-L/16, and hoptimus_0, a ViT-g/14 with SwiGLU) and strategy (frozen, lora, full): the real
architecture at its real width, two blocks (`depth: 2`), random weights, batch 1, one encoder
forward pass under bf16 autocast on the CPU, counting the storages saved for backward once
each (saved_tensors_hooks; parameters excluded) per block, against the model's first and later
block (`densebench.memory.ledger` with the CPU's autocast rule, which for these timm blocks is
the GPU's: their norms see fp32 inputs). The second block's count includes the final norm's
saved input, which is subtracted. A frozen encoder runs under no_grad and saves nothing.

About 10 minutes on 2 CPU cores without bf16 units (`--strategies lora` alone: a third):

    python benchmarks/bench_memory.py --out memory.json

The JSON (torch version, settings, one record per model and strategy: tokens, measured and
estimated bytes per block, their ratios, seconds) is rewritten after every record; a table is
printed at the end.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
import weakref
from pathlib import Path
from typing import Any

import torch

from densebench import memory
from densebench.atomic import write_text
from densebench.config import ROOT, load_config
from densebench.models.backbone import build_backbone
from densebench.models.segmenter import SegmentationModel
from densebench.registry import Registries
from densebench.spec import RunSpec, build_run_spec

MODELS = ("uni_v1", "hoptimus_0")
STRATEGIES = ("frozen", "lora", "full")
DATASET = "RINGS"
"""A grid dataset whose images give the largest input side (992 / 994 px)."""


class Held:
    """What the pack hook stores: a weakly referable holder of the saved tensor."""

    __slots__ = ("__weakref__", "tensor")

    def __init__(self, tensor: torch.Tensor):
        self.tensor = tensor


class BlockCounter:
    """Storages saved for backward, labelled by the encoder block running when saved."""

    def __init__(self, model: torch.nn.Module):
        self.params = {p.untyped_storage().data_ptr() for p in model.parameters()}
        self.block = "embed"
        self.entries: list[tuple[Any, int, int, tuple, str]] = []

    def pack(self, tensor: torch.Tensor) -> Held:
        """Record a saved tensor's storage (no reference cycle: a detached alias is held)."""
        held = Held(tensor.detach())
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in self.params:
            entry = (storage.data_ptr(), storage.nbytes(), tuple(tensor.shape), self.block)
            self.entries.append((weakref.ref(held), *entry))
        return held

    def by_block(self) -> tuple[dict[str, int], list[tuple]]:
        """Alive bytes per block (each storage counted once, where first saved), and shapes."""
        seen: dict[int, tuple[int, tuple, str]] = {}
        for ref, ptr, nbytes, shape, block in self.entries:
            if ref() is not None:
                seen.setdefault(ptr, (nbytes, shape, block))
        parts: dict[str, int] = {}
        for nbytes, _, block in seen.values():
            parts[block] = parts.get(block, 0) + nbytes
        return parts, [shape for _, shape, _ in seen.values()]


def two_block_spec(
    config: dict, registries: Registries, model: str, strategy: str, side: int | None
) -> RunSpec:
    """The grid cell's spec at batch 1 (at input side `side` if given), its model reduced to
    two blocks (random weights)."""
    config = {**config, "train": {**config["train"], "input_size": side}}
    spec = build_run_spec(config, DATASET, model, strategy, registries)
    record = copy.deepcopy(dict(spec.model_record))
    key = "num_hidden_layers" if record["family"] == "transformers" else "depth"
    record = {**record, "kwargs": {**record["kwargs"], key: 2}, "weights": "random"}
    train = dataclasses.replace(spec.train, batch_size=1)
    return dataclasses.replace(spec, model_record=record, train=train)


def measure(backbone: torch.nn.Module, spec: RunSpec) -> dict[str, Any]:
    """One record: saved bytes of the two blocks against the model's, and the time taken."""
    model = SegmentationModel(copy.deepcopy(backbone), spec).train()
    counter = BlockCounter(model)
    blocks = model.backbone.encoder.blocks
    for index, block in enumerate(blocks):
        block.register_forward_pre_hook(lambda *_, i=index: setattr(counter, "block", f"b{i}"))
    side, tokens = spec.input_size, memory.tokens(spec)
    start = time.perf_counter()
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda held: held.tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model.encode(torch.randn(1, 3, side, side))
        parts, shapes = counter.by_block()
    seconds = time.perf_counter() - start
    del out
    ledger = memory.ledger(spec, False, device="cpu")
    gpu = memory.ledger(spec, False, device="cuda")
    dim = int(spec.model_record["embed_dim"])
    final_norm = memory.FLOAT * tokens * (dim + 2) if memory.encoder_mode(spec).grad else 0
    measured = [parts.get("b0", 0), parts.get("b1", 0) - final_norm]
    estimated = [ledger.first_block, ledger.block]
    return {
        "model": spec.model,
        "strategy": spec.strategy,
        "side": side,
        "tokens": tokens,
        "measured_block_bytes": measured,
        "estimated_block_bytes": [round(e) for e in estimated],
        "gpu_estimated_block_bytes": [round(gpu.first_block), round(gpu.block)],
        "ratios": [
            round(e / m, 4) if m else None for e, m in zip(estimated, measured, strict=True)
        ],
        "attention_matrix_saved": any(s[:1] == (1,) and s[-2:] == (tokens,) * 2 for s in shapes),
        "forward_s": round(seconds, 1),
    }


def table(records: list[dict[str, Any]]) -> str:
    """Measured vs estimated MB per block and the ratios."""
    lines = ["model        strategy  S     T     block  measured MB  estimated MB  ratio"]
    for r in records:
        for i in (0, 1):
            m, e = r["measured_block_bytes"][i] / 1e6, r["estimated_block_bytes"][i] / 1e6
            ratio = r["ratios"][i]
            lines.append(
                f"{r['model']:<12} {r['strategy']:<9} {r['side']:<5} {r['tokens']:<5} b{i:<5} "
                f"{m:>11.1f}  {e:>12.1f}  {'-' if ratio is None else f'{ratio:.4f}'}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Measure every (model, strategy); write the JSON after each and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES))
    parser.add_argument("--side", type=int, default=None, help="input side (default: RINGS')")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("memory.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(ROOT / "config/config.yaml")
    registries = Registries.load(
        *(ROOT / f"config/{a}.yaml" for a in ("models", "datasets", "strategies"))
    )
    registries.check_names({"models": args.models, "strategies": args.strategies})
    result: dict[str, Any] = {"torch": torch.__version__, "threads": args.threads, "records": []}
    for model in args.models:
        torch.manual_seed(0)
        spec = two_block_spec(config, registries, model, args.strategies[0], args.side)
        backbone = build_backbone(model, spec.model_record)
        for strategy in args.strategies:
            spec = two_block_spec(config, registries, model, strategy, args.side)
            result["records"].append(measure(backbone, spec))
            write_text(json.dumps(result, indent=2) + "\n", args.out)
            record = result["records"][-1]
            print(f"{model} {strategy}: ratios {record['ratios']} ({record['forward_s']} s)")
    print(table(result["records"]))
    ratios = [r for rec in result["records"] for r in rec["ratios"] if r is not None]
    if ratios:
        worst = max(ratios, key=lambda r: abs(r - 1))
        print(f"worst estimated / measured ratio: {worst:.4f} -> {args.out}")


if __name__ == "__main__":
    main()
