"""One epoch of the three frozen-encoder runs of a (dataset, model) trained separately against
one shared training job of the three (config `train.share_frozen_backbone`), on the CPU.

For each setting the runs frozen, cnn_adapter and transformer_adapter train one epoch (train +
validation) with torch on `--threads` threads, in one process, on the same store:

- separate: `densebench.train.loop.train_run` once per run (three encoder forwards per batch);
- shared: one `densebench.train.shared.train_shared` of the three (one encoder forward per batch).

Seconds are each job's wall time (model build, loaders, the epoch and its outputs); the epoch
alone is also read from the runs' train_log.csv (`epoch_s`), and each job's CPU seconds (its
process and its loader workers: less disturbed by other load on the machine) are counted. Every
run's best.pt is compared byte for byte between the two paths. With `--repeats` N each path
runs N times (separate first, then alternating) and the fastest time of each job counts. Each
setting is measured in a process of its own (this script with `--child`), after an untimed
warm-up (a shared job and a separate run of a tiny setting of the same kind), so no timing pays
the one-off imports. One process per setting also keeps OpenCV safe: once a process has run
OpenCV on several threads (a loader without workers, as the demo's), a loader worker forked
from it may hang in OpenCV (at times in the `cv2.setNumThreads(1)` of
`densebench.data.loader.worker_init`).

Settings (one invocation runs both):

- demo: a demo model (`--demo-model`, random init) at the demo config's sizes (config/demo.yaml:
  112 px, batch 4, its decoder widths) on a converted synthetic demo_nuclei store;
- vitl: uni_v1's architecture (timm ViT-L/16: width 1024, 16 heads, MLP ratio 4) made random-init
  with `--depth` of its 24 blocks, at `--side` px (448), with the paper grid's decoder and batch
  size (config/config.yaml) and its loader workers (auto: threads - 1), on a store of synthetic
  H&E tissue images (densebench.data.tissue) of that side: `--train-images` train, `--val-images`
  validation.

Per setting a profile (one batch of `--profile-images` training images, after a warm-up pass)
times each part per image: making a training item, the frozen encoder's forward, each run's
training step on the shared tokens (`Trainer.step_on`: adapters + decoder forward and backward,
optimizer step) and its validation decode; it also counts each part's GFLOP per image (torch's
FlopCounterMode on one image; on the CPU it leaves out the attention products of
`F.scaled_dot_product_attention`, about a ninth of a ViT-L block's at 448 px). From these the
epoch ratio is modelled, by seconds and by FLOPs, at the measured depth (a cross-check of the
measured one) and projected at the full depth of 24 blocks (encoder cost scaled by depth);
`depth_for_target` is the encoder depth at which the shared job would take half the time of the
separate runs by this model (the encoder forward per image must at least equal the three runs'
trainable parts together).

Target (issue): the shared job at most 0.5 x the three separate runs at the ViT-L width.
Writes JSON (--out) and prints a table.

Usage: python benchmarks/bench_share.py [--depth 4] [--out share.json]
       python benchmarks/bench_share.py --smoke --out smoke.json   (tiny sizes, < 1 min)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import dataclasses
import functools
import io
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from densebench.config import ROOT, load_config
from densebench.data.converters import Sample, get_converter
from densebench.data.dataset import SegmentationSplit
from densebench.data.loader import device_batch, loader_workers
from densebench.data.store import write_store
from densebench.data.synthetic import write_synthetic_raw
from densebench.data.tissue import bcss_image
from densebench.models.segmenter import build_shared_models
from densebench.registry import Registries
from densebench.runtime import configure_torch
from densebench.spec import RunSpec, build_run_spec
from densebench.train.loop import Trainer, train_run
from densebench.train.shared import train_shared

STRATEGIES = ("frozen", "cnn_adapter", "transformer_adapter")
"""The frozen-encoder strategies that share one encoder forward."""
TARGET = 0.5
"""Shared / separate seconds at the ViT-L width that the issue asks for."""
VITL = "uni_v1"
"""The registry record whose architecture the ViT-L setting uses (timm vit_large_patch16)."""
FULL_DEPTH = 24
"""Blocks of the full ViT-L."""
SETTINGS = ("demo", "vitl")
RATIOS = {"s": "ratio", "cpu_s": "cpu_ratio", "epoch_s": "epoch_ratio"}
"""The record's shared / separate ratio of each measure (wall, CPU, epoch seconds)."""
TINY_SIDE = 64
"""Side of the smoke run's ViT-L setting and of the ViT-L warm-up."""


@dataclasses.dataclass
class Setting:
    """One benchmark setting: its run specs (one per strategy) and store."""

    name: str
    specs: list[RunSpec]
    store: Path
    depth: int | None = None


def shipped_registries() -> Registries:
    """The shipped registries, the demo models (`weights: pretrain`) made random-init."""
    shipped = Registries.load(
        *(ROOT / f"config/{axis}.yaml" for axis in ("models", "datasets", "strategies"))
    )
    models = {
        name: dict(record, weights="random") if record.get("weights") == "pretrain" else record
        for name, record in shipped.models.items()
    }
    return dataclasses.replace(shipped, models=models)


def vitl_registries(registries: Registries, depth: int) -> Registries:
    """A copy of the registries whose uni_v1 is random-init with `depth` blocks."""
    record = copy.deepcopy(registries.models[VITL])
    record["weights"] = "random"
    record["kwargs"]["depth"] = depth
    return dataclasses.replace(registries, models={**registries.models, VITL: record})


def demo_store(registries: Registries, config: dict, root: Path, images: int | None) -> Path:
    """A converted synthetic demo_nuclei store split as the demo config splits it (`images`
    overrides the card's image count)."""
    card = copy.deepcopy(registries.datasets["demo_nuclei"])
    if images is not None:
        card["synthetic"]["num_images"] = card["num_images"] = images
    write_synthetic_raw(card, root / "raw")
    store = root / "demo_nuclei.zarr"
    data = config["data"]
    write_store(
        get_converter(card["converter"])(root / "raw", card),
        card,
        "demo_nuclei",
        store,
        split_policy=data["split_policy"],
        seed=int(data["split_seed"]),
        fractions=tuple(data["split_fractions"]),
    )
    return store


def tissue_store(registries: Registries, root: Path, train: int, val: int, side: int) -> Path:
    """A store of synthetic H&E tissue images of `side` px (demo_tissue's classes): `train`
    training and `val` validation images, no test split."""
    card = copy.deepcopy(registries.datasets["demo_tissue"])
    classes = list(card["classes"])
    total = train + val
    card.update(num_images=total, min_side=side, converter=None)
    rng = np.random.default_rng(0)

    def samples() -> Iterator[Sample]:
        for i in range(total):
            image, mask = bcss_image(rng, side, side, classes, i % len(classes))
            yield Sample(f"t{i}", image, mask, f"t{i}.png", f"g{i}", None)

    store = root / "tissue.zarr"
    write_store(samples(), card, "demo_tissue", store, split_policy="seeded", seed=0,
                fractions=(train / total, val / total, 0.0))  # fmt: skip
    return store


def one_epoch(config: dict, **train: Any) -> dict:
    """The config with one epoch and the other `train` overrides."""
    return dict(config, train=dict(config["train"], epochs=1, **train))


def specs_of(config: dict, dataset: str, model: str, registries: Registries) -> list[RunSpec]:
    """The run specs of the three frozen-encoder strategies."""
    return [build_run_spec(config, dataset, model, s, registries) for s in STRATEGIES]


def quiet(verbose: bool) -> contextlib.AbstractContextManager:
    """Swallow the training jobs' progress lines unless verbose."""
    return contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())


def seconds(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """fn(*args, **kwargs) and the seconds it took."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def epoch_seconds(folder: Path) -> float:
    """The `epoch_s` of the one epoch in a run's train_log.csv."""
    with (folder / "train_log.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return sum(float(row["epoch_s"]) for row in rows)


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children (the loader
    workers, reaped when their loader goes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def job(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, float]:
    """Wall and CPU seconds of fn(*args, **kwargs)."""
    cpu = cpu_seconds()
    wall = seconds(fn, *args, **kwargs)[1]
    return {"wall": wall, "cpu": cpu_seconds() - cpu}


def separate_jobs(setting: Setting, root: Path, threads: int) -> dict[str, dict[str, float]]:
    """Train each run alone into root/separate/<strategy>; each job's seconds."""
    return {
        spec.strategy: job(
            train_run, spec, setting.store, root / "separate" / spec.strategy, threads=threads
        )
        for spec in setting.specs
    }


def shared_job(setting: Setting, root: Path, threads: int) -> dict[str, float]:
    """Train the runs in one shared job staged in root/staging; its seconds."""
    out_dirs = [root / "runs" / spec.strategy for spec in setting.specs]
    return job(train_shared, setting.specs, setting.store, out_dirs, root / "staging",
               threads=threads)  # fmt: skip


def trial(setting: Setting, root: Path, threads: int, shared_first: bool) -> dict[str, Any]:
    """Both paths once (in the order asked); wall and CPU seconds, epoch seconds, and whether
    each run's best.pt is the same file from both."""
    if shared_first:
        shared = shared_job(setting, root, threads)
        separate = separate_jobs(setting, root, threads)
    else:
        separate = separate_jobs(setting, root, threads)
        shared = shared_job(setting, root, threads)
    alone, staged = root / "separate", root / "staging"
    return {
        "separate_s": {s: t["wall"] for s, t in separate.items()},
        "shared_s": shared["wall"],
        "separate_cpu_s": {s: t["cpu"] for s, t in separate.items()},
        "shared_cpu_s": shared["cpu"],
        "separate_epoch_s": {s: epoch_seconds(alone / s) for s in STRATEGIES},
        "shared_epoch_s": epoch_seconds(staged / STRATEGIES[0]),
        "identical": {
            s: (alone / s / "best.pt").read_bytes() == (staged / s / "best.pt").read_bytes()
            for s in STRATEGIES
        },
    }


def run_both(
    setting: Setting, root: Path, threads: int, verbose: bool, repeats: int
) -> dict[str, Any]:
    """`repeats` trials of both paths (separate first, then alternating); the fastest seconds
    of each job over the trials, and whether best.pt was the same file in every trial."""
    with quiet(verbose):
        trials = [trial(setting, root / f"trial{r}", threads, r % 2 == 1) for r in range(repeats)]
    out: dict[str, Any] = {"repeats": repeats}
    for kind in ("s", "cpu_s", "epoch_s"):
        separate = {s: min(t[f"separate_{kind}"][s] for t in trials) for s in STRATEGIES}
        shared = min(t[f"shared_{kind}"] for t in trials)
        out[f"separate_{kind}"] = separate
        out[f"separate_total_{kind}"] = sum(separate.values())
        out[f"shared_{kind}"] = shared
        out[RATIOS[kind]] = shared / sum(separate.values())
    out["identical"] = {s: all(t["identical"][s] for t in trials) for s in STRATEGIES}
    out["trials"] = trials
    return out


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """fn() after an untimed warm-up call, and the seconds of the second call."""
    fn()
    return seconds(fn)


def gflop(fn: Callable[[], Any]) -> float:
    """GFLOP of fn() as torch's FlopCounterMode counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() / 1e9


def profile(setting: Setting, threads: int, images: int) -> dict[str, Any]:
    """Seconds per training image of each part of an epoch on one batch of `images` training
    images (each part timed after a warm-up call): making an item, the frozen encoder's forward,
    each run's training step on its tokens and its validation decode; and the GFLOP per image
    of the same parts (counted on one image)."""
    first = setting.specs[0]
    device = configure_torch(int(first.train.seed), threads)
    norm = first.normalisation
    data = SegmentationSplit(setting.store, "train", first.input_size, norm.mean, norm.std,
                             True, int(first.train.seed))  # fmt: skip
    n = min(images, len(data))
    items, item_s = timed(lambda: [data[(0, k)] for k in range(n)])
    batch = [torch.stack(parts) for parts in zip(*items, strict=True)]
    x, y = device_batch(batch, device, data.mean, data.std)
    models = [m.to(device) for m in build_shared_models(setting.specs)]
    trainers = [Trainer(m, s, device) for m, s in zip(models, setting.specs, strict=True)]
    for trainer in trainers:
        trainer.start_epoch(0, float(first.train.lr))
    tokens, encode_s = timed(lambda: models[0].encode(x))
    one = tokens[:1], x[:1], y[:1]
    flops = {"encode": gflop(lambda: models[0].encode(x[:1])), "train_step": {}, "val_decode": {}}
    step, decode = {}, {}
    for trainer in trainers:
        name = trainer.spec.strategy
        trainer.model.train()
        step[name] = timed(lambda t=trainer: t.step_on(tokens, x, y))[1] / n
        flops["train_step"][name] = gflop(lambda t=trainer: t.step_on(*one))
        trainer.model.eval()
        with torch.no_grad():
            decode[name] = timed(lambda t=trainer: t.model.decode(tokens, x))[1] / n
            flops["val_decode"][name] = gflop(lambda t=trainer: t.model.decode(*one[:2]))
    return {
        "images": n,
        "item_s": item_s / n,
        "encode_s": encode_s / n,
        "train_step_s": step,
        "val_decode_s": decode,
        "gflop": flops,
    }


def modelled_ratio(
    encode: float, item: float, steps: dict[str, float], decodes: dict[str, float],
    train: int, val: int,
) -> float:  # fmt: skip
    """Shared / separate epoch cost from per-image costs (seconds or FLOPs): the separate runs
    make every item and run every encoder forward once each, the shared job once in all; each
    run's training steps and validation decodes are the same on both paths."""
    runs = len(steps)
    per_job = train * (encode + item) + val * encode
    own = train * sum(steps.values()) + val * sum(decodes.values())
    return (per_job + own) / (runs * per_job + own)


def projection(
    prof: dict[str, Any], train: int, val: int, depth: int, full: int | None
) -> dict[str, Any]:
    """The epoch ratio by the profile's seconds and by its FLOPs, at the measured depth and at
    the `full` depth (None: not projected; the encoder's cost taken as proportional to its
    depth), and the depth at which the seconds would reach the target."""
    seconds_at = functools.partial(modelled_ratio, item=prof["item_s"],
                                   steps=prof["train_step_s"], decodes=prof["val_decode_s"],
                                   train=train, val=val)  # fmt: skip
    flops = prof["gflop"]
    flops_at = functools.partial(modelled_ratio, item=0.0, steps=flops["train_step"],
                                 decodes=flops["val_decode"], train=train, val=val)  # fmt: skip
    steps, decodes = sum(prof["train_step_s"].values()), sum(prof["val_decode_s"].values())
    own = (train * steps + val * decodes) / (train + val)  # trainable parts, mean per image
    block = prof["encode_s"] / depth
    scale = full / depth if full else None
    return {
        "modelled_ratio": seconds_at(prof["encode_s"]),
        "flop_ratio": flops_at(flops["encode"]),
        "full_depth": full,
        "projected_ratio_full_depth": scale and seconds_at(prof["encode_s"] * scale),
        "flop_ratio_full_depth": scale and flops_at(flops["encode"] * scale),
        "encode_s_per_block": block,
        "depth_for_target": own / block,
    }


def describe(setting: Setting, threads: int) -> dict[str, Any]:
    """What a setting trains: model, sizes, decoder, images, loader workers."""
    spec = setting.specs[0]
    cfg = spec.train
    counts = {
        split: len(SegmentationSplit(setting.store, split, None, (0, 0, 0), (1, 1, 1)))
        for split in ("train", "val")
    }
    return {
        "setting": setting.name,
        "dataset": spec.dataset,
        "model": spec.model,
        "arch": spec.model_record["arch"],
        "embed_dim": int(spec.model_record["embed_dim"]),
        "depth": setting.depth,
        "input_size": spec.input_size,
        "batch_size": int(cfg.batch_size),
        "decoder": {
            "hidden_channels": spec.decoder.hidden_channels,
            "block_channels": list(spec.decoder.block_channels),
        },
        "train_images": counts["train"],
        "val_images": counts["val"],
        "num_workers": loader_workers(cfg.execution.num_workers, threads),
    }


def measure(setting: Setting, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The record of one setting: its description, both paths' seconds and the profile."""
    record = describe(setting, args.threads)
    print(f"{setting.name}: training separately and shared ...", flush=True)
    record.update(run_both(setting, root / setting.name, args.threads, args.verbose, args.repeats))
    print(f"{setting.name}: profiling ...", flush=True)
    prof = profile(setting, args.threads, args.profile_images)
    depth = setting.depth or int(setting.specs[0].model_record["kwargs"]["depth"])
    record["profile"] = prof
    full = FULL_DEPTH if setting.depth else None
    record["projection"] = projection(
        prof, record["train_images"], record["val_images"], depth, full
    )
    return record


def warm_up(setting: Setting, root: Path, threads: int) -> None:
    """An untimed shared job and separate run, so no timing pays the one-off imports."""
    with quiet(False):
        train_shared(setting.specs, setting.store, [root / s for s in STRATEGIES],
                     root / "staging", threads=threads)  # fmt: skip
        train_run(setting.specs[0], setting.store, root / "alone", threads=threads)


def demo_setting(args: argparse.Namespace, registries: Registries, root: Path) -> Setting:
    """The demo setting: the demo config's sizes on a converted demo_nuclei store."""
    config = load_config(ROOT / "config/demo.yaml")
    (root / "demo_store").mkdir()
    return Setting(
        "demo",
        specs_of(one_epoch(config), "demo_nuclei", args.demo_model, registries),
        demo_store(registries, config, root / "demo_store", args.demo_images),
    )


def vitl_setting(
    registries: Registries, root: Path, depth: int, side: int, batch: int | None, images: tuple
) -> Setting:
    """The ViT-L setting: uni_v1's width at `depth` blocks and `side` px, the paper grid's
    decoder, batch size (unless `batch`) and loader workers, on a tissue store of `images`
    (train, val) images."""
    paper = load_config(ROOT / "config/config.yaml")
    batch = batch or int(paper["train"]["batch_size"])
    config = one_epoch(paper, batch_size=batch, input_size=side)
    folder = root / f"vitl_store_{depth}_{side}"
    folder.mkdir()
    return Setting(
        "vitl",
        specs_of(config, "demo_tissue", VITL, vitl_registries(registries, depth)),
        tissue_store(registries, folder, *images, side),
        depth=depth,
    )


def run_setting(args: argparse.Namespace) -> dict[str, Any]:
    """Build the setting `args.child`, warm up and measure it (in a process of its own)."""
    registries = shipped_registries()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.child == "demo":
            setting = warm = demo_setting(args, registries, root)
        else:
            images = (args.train_images, args.val_images)
            setting = vitl_setting(registries, root, args.depth, args.side, args.batch, images)
            tiny = (args.depth, args.side) == (1, TINY_SIDE)
            warm = setting if tiny else vitl_setting(registries, root, 1, TINY_SIDE, 2, (2, 1))
        warm_up(warm, root / "warm_up", args.threads)
        return measure(setting, root, args)


def child_command(args: argparse.Namespace, name: str, record: Path) -> list[str]:
    """The command line measuring setting `name` in a fresh process, its record to `record`."""
    command = [sys.executable, __file__, "--child", name, "--record", str(record)]
    for option in ("demo_model", "depth", "side", "batch", "train_images", "val_images",
                   "demo_images", "profile_images", "threads", "repeats"):  # fmt: skip
        value = getattr(args, option)
        if value is not None:
            command += [f"--{option.replace('_', '-')}", str(value)]
    return [*command, "--verbose"] if args.verbose else command


def table(records: list[dict[str, Any]]) -> str:
    """A plain-text summary of the records."""
    lines = [
        f"{'setting':<8} {'model (width x depth)':<24} side batch train/val "
        f"{'separate s (F + C + T)':<30} shared s ratio epoch-ratio cpu-ratio identical"
    ]
    for r in records:
        parts = " + ".join(f"{r['separate_s'][s]:.1f}" for s in STRATEGIES)
        depth = r["depth"] if r["depth"] is not None else "-"
        model = f"{r['model']} ({r['embed_dim']} x {depth})"
        images = f"{r['train_images']}/{r['val_images']}"
        separate = f"{r['separate_total_s']:.1f} ({parts})"
        lines.append(
            f"{r['setting']:<8} {model:<24} {r['input_size']:>4} {r['batch_size']:>5} "
            f"{images:>9} {separate:<30} {r['shared_s']:>8.1f} {r['ratio']:>5.2f} "
            f"{r['epoch_ratio']:>11.2f} {r['cpu_ratio']:>9.2f} {all(r['identical'].values())}"
        )
    lines.append("profile, seconds per training image (steps: forward + backward + optimizer):")
    for r in records:
        p, proj = r["profile"], r["projection"]
        steps = ", ".join(f"{s} {v:.3f}" for s, v in p["train_step_s"].items())
        decodes = ", ".join(f"{s} {v:.3f}" for s, v in p["val_decode_s"].items())
        full = flop_full = ""
        if proj["full_depth"]:
            full = f"; at {proj['full_depth']} blocks {proj['projected_ratio_full_depth']:.2f}"
            flop_full = f"; at {proj['full_depth']} blocks {proj['flop_ratio_full_depth']:.2f}"
        g = p["gflop"]
        gsteps = ", ".join(f"{s} {v:.3g}" for s, v in g["train_step"].items())
        lines += [
            f"  {r['setting']}: item {p['item_s']:.3f}, encoder forward {p['encode_s']:.3f} "
            f"({proj['encode_s_per_block']:.3f} per block)",
            f"    training steps: {steps}",
            f"    validation decodes: {decodes}",
            f"    GFLOP per image: encoder forward {g['encode']:.3g}; training steps: {gsteps}",
            f"    modelled ratio {proj['modelled_ratio']:.2f}{full}; ratio {TARGET} from "
            f"{proj['depth_for_target']:.0f} blocks",
            f"    ratio by FLOPs {proj['flop_ratio']:.2f}{flop_full}",
        ]
    return "\n".join(lines)


def main() -> None:
    """Measure each setting in a process of its own, write the JSON and print the table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--demo-model", default="demo_vit_p8")
    parser.add_argument("--depth", type=int, default=4, help="ViT-L blocks (full: 24)")
    parser.add_argument("--side", type=int, default=448, help="ViT-L setting's input side")
    parser.add_argument("--batch", type=int, default=None, help="ViT-L batch (paper grid's)")
    parser.add_argument("--train-images", type=int, default=8)
    parser.add_argument("--val-images", type=int, default=2)
    parser.add_argument("--demo-images", type=int, default=None, help="default: the card's")
    parser.add_argument("--profile-images", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="trials; the fastest counts")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a test runs it)")
    parser.add_argument("--verbose", action="store_true", help="show the jobs' progress lines")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.record.write_text(json.dumps(run_setting(args), indent=2) + "\n")
        return
    if args.smoke:
        args.depth, args.side, args.batch = 1, TINY_SIDE, 2
        args.train_images, args.val_images, args.demo_images, args.profile_images = 2, 1, 5, 1
    started = time.perf_counter()
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in SETTINGS:
            record = Path(tmp) / f"{name}.json"
            subprocess.run(child_command(args, name, record), check=True)
            records.append(json.loads(record.read_text()))
    vitl_ratio = records[-1]["ratio"]
    result = {
        "benchmark": "share",
        "smoke": args.smoke,
        "threads": args.threads,
        "target_shared_over_separate_at_vitl": TARGET,
        "target_met": vitl_ratio <= TARGET,
        "cpu": platform.processor() or platform.machine(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "wall_s": time.perf_counter() - started,
        "settings": records,
    }
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(records))
    met = "met" if result["target_met"] else "not met"
    print(f"vitl: shared / separate = {vitl_ratio:.2f} (target <= {TARGET}: {met})")
    if args.out is not None:
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
