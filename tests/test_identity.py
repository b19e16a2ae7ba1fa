"""What identifies each product: descriptive and execution edits change no identity, edits
that change the numbers do."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from densebench.canonical import canonical
from densebench.identity import (
    TRAIN_EXECUTION,
    prediction_identity,
    scoring_identity,
    sources_identity,
    store_identity,
    training_identity,
    weights_identity,
)
from densebench.models.weights import snapshot_manifest
from densebench.spec import Execution, RunSpec, build_run_spec

RECORD = {"hf_repo": "MahmoodLab/UNI", "revision": None, "display_name": "UNI", "licence": "x"}
SNAPSHOT = {"repo": "MahmoodLab/UNI", "revision": None, "commit": "3f6a" + "0" * 36}


def test_pinning_the_commit_a_snapshot_holds_is_no_change():
    before = weights_identity(RECORD, SNAPSHOT)
    assert weights_identity(dict(RECORD, revision="3f6a" + "0" * 36), SNAPSHOT) == before
    assert weights_identity(dict(RECORD, revision="3f6a"), SNAPSHOT) == before  # short sha


def test_pinning_another_revision_or_repo_is_a_change():
    before = weights_identity(RECORD, SNAPSHOT)
    assert weights_identity(dict(RECORD, revision="9e1b"), SNAPSHOT) != before
    assert weights_identity(dict(RECORD, hf_repo="MahmoodLab/UNI2-h"), SNAPSHOT) != before
    assert weights_identity(dict(RECORD, revision="3f6a"), None) != before  # nothing fetched yet


def test_descriptions_do_not_change_a_store_but_its_content_does(registries):
    card = registries.datasets["GlaS"]
    data = {"split_policy": "paper", "split_seed": 42, "split_fractions": [0.7, 0.2, 0.1]}
    base = store_identity(card, data)
    assert store_identity(dict(card, notes="new", display_name="Warwick"), data) == base
    assert store_identity(dict(card, classes=["bg", "gland", "x"]), data) != base
    assert store_identity(card, dict(data, split_seed=7)) != base
    assert sources_identity(dict(card, notes="new")) == sources_identity(card)


def test_snapshot_manifest_is_read_or_none(tmp_path):
    assert snapshot_manifest(tmp_path) is None
    (tmp_path / "SNAPSHOT.json").write_text(json.dumps(SNAPSHOT))
    assert snapshot_manifest(tmp_path) == SNAPSHOT
    (tmp_path / "SNAPSHOT.json").write_text("{half")
    assert snapshot_manifest(tmp_path) is None


@pytest.fixture(scope="module")
def spec(demo_config, registries) -> RunSpec:
    """A demo LoRA cell."""
    return build_run_spec(demo_config, "demo_nuclei", "demo_vit_p16", "lora", registries)


def edited(spec: RunSpec, **train) -> RunSpec:
    """The spec with some `train` settings changed."""
    return RunSpec.from_dict(dict(spec.to_dict(), train=dict(spec.train.to_dict(), **train)))


def test_identities_are_the_specs_methods(spec):
    assert spec.training_identity() == training_identity(spec)
    assert spec.prediction_identity() == prediction_identity(spec)
    back = RunSpec.from_json(spec.to_json())  # what a job and a checkpoint see
    assert canonical(back.training_identity()) == canonical(spec.training_identity())


def test_execution_and_descriptive_edits_do_not_retrain(spec):
    before = spec.training_identity()
    execution = Execution(
        num_workers=7,
        channels_last=False,
        compile=True,
        grad_checkpointing=True,
        deterministic_algorithms=True,
        checkpoint_every_min=5,
    )
    assert dataclasses.replace(spec.train, execution=execution) != spec.train
    assert edited(spec, **dataclasses.asdict(execution)).training_identity() == before
    described = dict(spec.model_record, display_name="Renamed", notes="x", licence="y")
    strategy = dict(spec.strategy_record, display_name="Low rank", notes="x")
    renamed = dataclasses.replace(spec, model_record=described, strategy_record=strategy)
    assert renamed.training_identity() == before
    assert set(TRAIN_EXECUTION) == {f.name for f in dataclasses.fields(Execution)} | {
        "max_input_size",
        "input_size",
    }


@pytest.mark.parametrize(
    "change", [{"lr": 5e-4}, {"epochs": 3}, {"seed": 1}, {"batch_size": 2}, {"warmup_epochs": 2}]
)
def test_recipe_edits_retrain_but_do_not_re_predict(spec, change):
    other = edited(spec, **change)
    assert other.training_identity() != spec.training_identity()
    assert other.prediction_identity() == spec.prediction_identity()


def test_model_inputs_and_decoder_retrain(spec):
    before = spec.training_identity()
    assert dataclasses.replace(spec, input_size=2 * spec.input_size).training_identity() != before
    wider = dataclasses.replace(spec.decoder, hidden_channels=2 * spec.decoder.hidden_channels)
    assert dataclasses.replace(spec, decoder=wider).training_identity() != before
    record = dict(spec.model_record, adapter_targets="blocks")
    assert dataclasses.replace(spec, model_record=record).training_identity() != before


def test_inference_edits_only_re_predict(spec):
    sliding = dataclasses.replace(spec.evaluate, inference="sliding_window")
    other = dataclasses.replace(spec, evaluate=sliding)
    assert other.training_identity() == spec.training_identity()
    assert other.prediction_identity() != spec.prediction_identity()
    overlap = dataclasses.replace(spec, evaluate=dataclasses.replace(spec.evaluate, overlap=0.5))
    assert overlap.prediction_identity() == spec.prediction_identity()  # resize: no windows
    wider = dataclasses.replace(other, evaluate=dataclasses.replace(sliding, overlap=0.5))
    assert wider.prediction_identity() != other.prediction_identity()
    bootstrap = dataclasses.replace(spec.evaluate, bootstrap_replicates=10)
    assert dataclasses.replace(spec, evaluate=bootstrap).prediction_identity() == (
        spec.prediction_identity()
    )


def test_scoring_identity_is_the_score_rules_options(demo_config):
    assert scoring_identity(demo_config) == {
        "replicates": demo_config["evaluate"]["bootstrap_replicates"],
        "seed": demo_config["evaluate"]["bootstrap_seed"],
        "definitions": "paper",
        "exclude_background": False,
    }
    config = copy.deepcopy(demo_config)
    config["fixes"]["standard_metrics"] = True
    assert scoring_identity(config)["definitions"] == "standard"


def test_a_converter_version_bump_reconverts(registries):
    card = registries.datasets["GlaS"]
    data = {"split_policy": "paper", "split_seed": 42, "split_fractions": [0.7, 0.2, 0.1]}
    assert store_identity(card, data, 2) != store_identity(card, data, 1)


def test_fixes_that_are_off_are_not_part_of_an_identity(demo_config, registries):
    from densebench.fixes import FIXES
    from densebench.identity import prediction_identity, training_identity
    from densebench.spec import build_run_spec

    def identities(**fixes):
        config = dict(demo_config, fixes=fixes)
        spec = build_run_spec(config, "demo_glands", "demo_vit_p8", "lora", registries)
        return training_identity(spec), prediction_identity(spec)

    paper = identities()
    assert paper == identities(**{name: False for name in FIXES})  # explicit off = default off
    assert identities(cosine_period_epochs=True)[0] != paper[0]
    native = identities(native_resolution_scoring=True)
    assert native[0] == paper[0] and native[1] != paper[1]
