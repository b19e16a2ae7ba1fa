"""Run specifications: everything one (dataset, model, strategy) training job needs.

A `RunSpec` is a frozen, typed view of the validated config and the three registry records of
one cell, built in one place (`build_run_spec`; cheap: no torch). It travels as canonical JSON
(`to_json` / `RunSpec.from_json`): the Snakefile passes it to the CLI (`--spec`), so a job is a
pure function of its spec and its inputs, and checkpoints store its plain dict (`to_dict`), so
loading one needs no densebench class. What reruns a job is not the spec but its identities
(`training_identity`, `prediction_identity`; densebench.identity).

The sections mirror the config (`train`, `decoder`, `evaluate`) and parse strictly: a key the
types do not know is an error, so no setting can silently drop out of the identities. Values
are kept as given (an int stays an int), so the JSON and the identities are those of the
config's own values.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from densebench import identity
from densebench.canonical import canonical
from densebench.fixes import resolve_fixes, stage_fixes
from densebench.geometry import Normalisation, input_size, normalisation
from densebench.variants import Variant, variant_train


def _take(data: Mapping[str, Any], names: Iterable[str], what: str) -> dict[str, Any]:
    """The values of exactly `names` from data; unknown or missing keys are an error."""
    names = list(names)
    unknown, missing = sorted(set(data) - set(names)), sorted(set(names) - set(data))
    if unknown or missing:
        raise ValueError(f"{what}: unknown keys {unknown}, missing keys {missing}")
    return {name: data[name] for name in names}


def _names(cls: type, *skip: str) -> list[str]:
    """Field names of a dataclass, without the skipped ones."""
    return [f.name for f in fields(cls) if f.name not in skip]


def _read_only(value: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view of a copy of a mapping (kept as is if it already is one)."""
    return value if isinstance(value, MappingProxyType) else MappingProxyType(dict(value))


@dataclass(frozen=True)
class Execution:
    """How a run executes on its device, not what it computes: in no identity."""

    num_workers: int | None
    channels_last: bool
    compile: bool
    grad_checkpointing: bool | Literal["auto"]
    deterministic_algorithms: bool
    checkpoint_every_min: float


LOSSES = ("dice", "cross_entropy")
"""Training losses (densebench.train.losses): the grid's soft Dice, and the cross-entropy of the
authors' UNet recipe."""

UNET_PAPER_RECIPE: Mapping[str, Any] = MappingProxyType({"batch_size": 4, "loss": "cross_entropy"})
"""Where the authors' UNet recipe ([F] configs/unet.yaml) differs from their grid's
([F] configs/config.yaml): cross-entropy (`type: cross_entropy`, [F] models/losses.py
CrossEntropyLoss, ignore index 255) at batch 4 (train and validation). Their other keys (Adam,
lr 0.001, weight decay 1e-4, 150 epochs, clip 5.0, AMP, cosine with 2 warmup epochs) are the
grid's, so they follow `train.*`. A `family: unet` run uses it under `paper`; the
`unet_grid_recipe` fix trains the UNet with the grid's recipe instead."""


@dataclass(frozen=True)
class TrainRecipe:
    """The config's `train` section: the recipe, the input-size rule's settings (they enter
    the run through `RunSpec.input_size`) and the execution settings; plus the loss, which is
    no config key: the grid's soft Dice unless the model's recipe says otherwise
    (`UNET_PAPER_RECIPE`). The soft Dice is left out of `to_dict`, so a grid run's spec and
    identities hold no `loss` key."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    warmup_epochs: int
    cosine_t_max: int
    grad_clip_norm: float
    seed: int
    max_input_size: int
    input_size: int | None
    execution: Execution
    loss: Literal["dice", "cross_entropy"] = "dice"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainRecipe:
        """From the flat `train` mapping of the config (`loss` optional: default soft Dice)."""
        run = _names(Execution)
        recipe = {k: v for k, v in data.items() if k not in run and k != "loss"}
        loss = data.get("loss", "dice")
        if loss not in LOSSES:
            raise ValueError(f"train: unknown loss {loss!r}; valid: {', '.join(LOSSES)}")
        execution = Execution(**_take({k: data[k] for k in run if k in data}, run, "train"))
        own = _take(recipe, _names(cls, "execution", "loss"), "train")
        return cls(**own, execution=execution, loss=loss)

    def to_dict(self) -> dict[str, Any]:
        """The flat `train` mapping of the config, with `loss` only when it is not soft Dice."""
        own = {name: getattr(self, name) for name in _names(TrainRecipe, "execution", "loss")}
        if self.loss != "dice":
            own["loss"] = self.loss
        return {**own, **{name: getattr(self.execution, name) for name in _names(Execution)}}


@dataclass(frozen=True)
class DecoderSettings:
    """Widths of the token -> mask decoder (the config's `decoder` section)."""

    hidden_channels: int
    block_channels: tuple[int, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecoderSettings:
        """From the config's `decoder` mapping."""
        values = _take(data, _names(cls), "decoder")
        return cls(values["hidden_channels"], tuple(values["block_channels"]))

    def to_dict(self) -> dict[str, Any]:
        """The config's `decoder` mapping."""
        return {
            "hidden_channels": self.hidden_channels,
            "block_channels": list(self.block_channels),
        }


@dataclass(frozen=True)
class EvaluateSettings:
    """Inference and scoring settings (the config's `evaluate` section)."""

    inference: Literal["resize", "sliding_window"]
    overlap: float
    exclude_background: bool
    bootstrap_replicates: int
    bootstrap_seed: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluateSettings:
        """From the config's `evaluate` mapping."""
        return cls(**_take(data, _names(cls), "evaluate"))

    def to_dict(self) -> dict[str, Any]:
        """The config's `evaluate` mapping."""
        return {name: getattr(self, name) for name in _names(EvaluateSettings)}


@dataclass(frozen=True)
class RunSpec:
    """Everything one (dataset, model, strategy) run reads.

    `fixes` holds the train- and predict-stage fixes (scoring fixes never reach a run), and the
    two registry records stay open-ended mappings (family-specific keys, kwargs), read-only at
    the top level; their nested values must not be modified either.
    """

    dataset: str
    model: str
    strategy: str
    protocol: str
    num_classes: int
    ignore_index: int
    input_size: int
    normalisation: Normalisation
    fixes: Mapping[str, bool] = field(repr=False)
    model_record: Mapping[str, Any] = field(repr=False)
    strategy_record: Mapping[str, Any] = field(repr=False)
    decoder: DecoderSettings = field(repr=False)
    train: TrainRecipe = field(repr=False)
    evaluate: EvaluateSettings = field(repr=False)

    def __post_init__(self) -> None:
        """Wrap the mappings read-only (also after `dataclasses.replace` with plain dicts)."""
        for name in ("fixes", "model_record", "strategy_record"):
            object.__setattr__(self, name, _read_only(getattr(self, name)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSpec:
        """From the plain dict of `to_dict` (also what checkpoints hold)."""
        values = _take(data, _names(cls), "run spec")
        values["normalisation"] = Normalisation.from_dict(values["normalisation"])
        values["decoder"] = DecoderSettings.from_dict(values["decoder"])
        values["train"] = TrainRecipe.from_dict(values["train"])
        values["evaluate"] = EvaluateSettings.from_dict(values["evaluate"])
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """From the canonical JSON of `to_json`."""
        return cls.from_dict(json.loads(text))

    def _plain(self) -> dict[str, Any]:
        """The spec as JSON-ready values (sharing the records' nested values)."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "strategy": self.strategy,
            "protocol": self.protocol,
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "input_size": self.input_size,
            "normalisation": self.normalisation.to_dict(),
            "fixes": dict(self.fixes),
            "model_record": dict(self.model_record),
            "strategy_record": dict(self.strategy_record),
            "decoder": self.decoder.to_dict(),
            "train": self.train.to_dict(),
            "evaluate": self.evaluate.to_dict(),
        }

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain, independent dict of JSON values (what checkpoints store)."""
        return copy.deepcopy(self._plain())

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, compact): equal specs give equal strings."""
        return canonical(self._plain())

    def training_identity(self) -> dict[str, Any]:
        """What retrains the run (densebench.identity.training_identity)."""
        return identity.training_identity(self)

    def prediction_identity(self) -> dict[str, Any]:
        """What only re-predicts the trained run (densebench.identity.prediction_identity)."""
        return identity.prediction_identity(self)


def build_run_spec(
    config: Mapping[str, Any],
    dataset: str,
    model: str,
    strategy: str,
    registries: Any,
    variant: str = "",
) -> RunSpec:
    """Assemble the run spec of one (dataset, model, strategy) cell of a validated config, or
    of a variant run of it (densebench.variants: another input size or training seed)."""
    card = registries.datasets[dataset]
    model_rec = registries.models[model]
    fixes = stage_fixes(resolve_fixes(config), "train", "predict")
    recipe = variant_train(config["train"], Variant.parse(variant), model_rec)
    if model_rec.get("family") != "unet":
        fixes.pop("unet_grid_recipe", None)  # no effect on a PFM run: not in its spec or identity
    elif not fixes["unet_grid_recipe"]:
        recipe.update(UNET_PAPER_RECIPE)
    train = TrainRecipe.from_dict(recipe)
    return RunSpec(
        dataset=dataset,
        model=model,
        strategy=strategy,
        protocol=config["protocol"],
        num_classes=len(card["classes"]),
        ignore_index=int(card.get("ignore_index", 255)),
        input_size=input_size(card, model_rec, train.max_input_size, train.input_size),
        normalisation=normalisation(model_rec, fixes["model_normalisation"]),
        fixes=fixes,
        model_record=copy.deepcopy(model_rec),
        strategy_record=copy.deepcopy(registries.strategies[strategy]),
        decoder=DecoderSettings.from_dict(config["decoder"]),
        train=train,
        evaluate=EvaluateSettings.from_dict(config["evaluate"]),
    )
