"""What identifies each product of the workflow, and so what makes Snakemake redo it.

A rule passes its product's identity as a plain `params` value, which Snakemake records and
compares on the next run (its `params` rerun trigger); everything else a job needs (the whole
run spec, execution settings) reaches the job through an input-derived param, which Snakemake
does not record. So editing a record's description or an execution setting redoes nothing,
while editing anything that changes the numbers redoes exactly what it changes:

- raw download: the card's `access` and `sources`; unpacked raw: its `sources`; split list:
  its `split_list`;
- zarr store: the card without its descriptive keys (`CARD_DESCRIPTIVE`), the split settings,
  the store layout and the converter's version;
- instance store (`<dataset>.instances.zarr`): `instance_identity`, i.e. the card without its
  descriptive keys, the kind of objects (`instance_labels`, itself descriptive for every other
  product), the converter's version and the instance product's version;
- weights snapshot: the model's hub repo and revision (pinning the revision that the snapshot
  already holds is no change);
- trained run (`best.pt`): `training_identity`, i.e. the store and weights (by file time), the
  model and strategy records without descriptive keys, the resolved input size and
  normalisation, the decoder, the recipe without execution settings (`TRAIN_EXECUTION`), and
  the train-stage fixes that are on;
- prediction (`confusion.npz`): `prediction_identity`, i.e. the trained run (by file time), the
  inference mode and the predict-stage fixes that are on;
- scores: `scoring_identity`, i.e. the bootstrap settings and the metric definitions (the score
  rule's params; per dataset, from the config: scoring fixes never reach a run spec).

The two run identities take a `densebench.spec.RunSpec` (typed here as `RunLike`: the spec
module, which builds on this one, is not imported; also as its methods
`spec.training_identity()` and `spec.prediction_identity()`).

`last.pt` carries the training identity of the run that wrote it: a job resumes from it only if
the identity is the same, and otherwise trains from scratch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from densebench.canonical import canonical
from densebench.fixes import scoring_options, stage_fixes

CARD_DESCRIPTIVE = frozenset(
    {"display_name", "notes", "paper_input_size", "min_side", "instance_labels"}
)
"""Card keys that do not change a dataset's store (`min_side` enters runs via the input size;
`instance_labels` only the instance product and the object metrics)."""

MODEL_DESCRIPTIVE = frozenset(
    {"display_name", "licence", "params_m", "notes", "gated", "hf_repo", "revision"}
)
"""Model-record keys that do not change a trained run (the weights enter through their folder)."""

STRATEGY_DESCRIPTIVE = frozenset({"display_name", "published", "published_sha256", "notes"})
"""Strategy-record keys that do not change a trained run."""

TRAIN_EXECUTION = frozenset(
    {"num_workers", "channels_last", "compile", "grad_checkpointing"}
    | {"deterministic_algorithms", "checkpoint_every_min"}
    | {"max_input_size", "input_size"}
)
"""`train` keys that change how a run executes, not what it computes: `TrainRecipe.execution`
and the input-size rule's settings (which enter through the resolved input size)."""


class RunLike(Protocol):
    """What the run identities read of a run spec (`densebench.spec.RunSpec`)."""

    dataset: str
    model: str
    strategy: str
    num_classes: int
    ignore_index: int
    input_size: int
    normalisation: Any
    fixes: Mapping[str, bool]
    model_record: Mapping[str, Any]
    strategy_record: Mapping[str, Any]
    decoder: Any
    train: Any
    evaluate: Any


def without(record: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """A copy of a record without the given keys."""
    drop = set(keys)
    return {k: v for k, v in record.items() if k not in drop}


def sources_identity(card: Mapping[str, Any]) -> dict[str, Any]:
    """What decides a dataset's raw files: how it is accessed and where from."""
    return {"access": card.get("access"), "sources": card.get("sources", [])}


STORE_FORMAT = 2
"""Version of the store layout; bump it when stores must be rewritten (2: paper-policy stores
record the authors' list order of each split)."""


def store_identity(
    card: Mapping[str, Any], data: Mapping[str, Any], converter_version: int | None = None
) -> dict[str, Any]:
    """What decides a dataset's zarr store: the card's content, the split settings, the store
    layout and the converter's version (its module's CONVERTER_VERSION: bump it when a
    converter's output changes, and every store it wrote is converted again)."""
    return {
        "card": without(card, CARD_DESCRIPTIVE),
        "data": dict(data),
        "format": STORE_FORMAT,
        "converter_version": converter_version,
    }


def instance_identity(
    card: Mapping[str, Any], converter_version: int | None, instance_version: int
) -> dict[str, Any]:
    """What decides a dataset's instance store: the card's content (as for its zarr store, the
    split settings aside: they order no sample), the kind of objects (`instance_labels`), the
    converter's version and the instance product's version
    (`densebench.data.instances.INSTANCE_VERSION`)."""
    return {
        "card": without(card, CARD_DESCRIPTIVE),
        "instance_labels": card.get("instance_labels", "none"),
        "converter_version": converter_version,
        "format": instance_version,
    }


def fixes_on(fixes: Mapping[str, bool], stage: str) -> list[str]:
    """The fixes of a stage that are switched on: a fix that is off (every fix under `paper`)
    is not part of an identity, so adding a new fix to the code redoes nothing."""
    return sorted(name for name, on in stage_fixes(fixes, stage).items() if on)


def weights_identity(record: Mapping[str, Any], snapshot: Mapping[str, Any] | None) -> dict:
    """What decides a model's weights snapshot: repo and revision.

    Pinning `revision` to the commit the existing snapshot already holds (what the README asks
    users to do) resolves to the revision that snapshot was requested with, so it is no change.
    """
    revision = record.get("revision")
    if snapshot and revision and str(snapshot.get("commit", "")).startswith(str(revision)):
        revision = snapshot.get("revision")
    return {"repo": record.get("hf_repo"), "revision": revision}


def training_identity(spec: RunLike) -> dict[str, Any]:
    """What decides a run's trained weights, given its store and weights files."""
    return {
        "dataset": spec.dataset,
        "model": spec.model,
        "strategy": spec.strategy,
        "num_classes": spec.num_classes,
        "ignore_index": spec.ignore_index,
        "input_size": spec.input_size,
        "normalisation": spec.normalisation.to_dict(),
        "fixes": fixes_on(spec.fixes, "train"),
        "model_record": without(spec.model_record, MODEL_DESCRIPTIVE),
        "strategy_record": without(spec.strategy_record, STRATEGY_DESCRIPTIVE),
        "decoder": spec.decoder.to_dict(),
        "train": without(spec.train.to_dict(), TRAIN_EXECUTION),
    }


def identity_digest(spec: RunLike) -> str:
    """sha256 of a run's training identity as canonical JSON: what its provenance records, so
    the plan can tell a trained run from one whose recipe changed since."""
    return hashlib.sha256(canonical(training_identity(spec)).encode()).hexdigest()


def prediction_identity(spec: RunLike) -> dict[str, Any]:
    """What decides a run's test predictions, given its trained weights."""
    evaluate = spec.evaluate
    identity = {"inference": evaluate.inference, "fixes": fixes_on(spec.fixes, "predict")}
    if evaluate.inference == "sliding_window":
        identity["overlap"] = evaluate.overlap
    return identity


def scoring_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """What rescores a dataset's runs, given their predictions: the bootstrap replicates and
    seed, the metric definitions and the background handling (densebench.fixes)."""
    evaluate = config["evaluate"]
    return {
        "replicates": evaluate["bootstrap_replicates"],
        "seed": evaluate["bootstrap_seed"],
        **scoring_options(config),
    }
