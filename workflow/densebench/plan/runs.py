"""The runs of the plan: every run of the grid (training seeds), of the input-size ablation and of
each ablation's cells; which (model, strategy) pairs apply; each job's inputs, run spec,
resources and identity; the targets of `all` and of each ablation.

A run is ``(dataset, model, strategy, variant)``; ``variant`` is ``""`` for a cell's own run and
otherwise names an input size and / or training seed (``densebench.variants``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from densebench.config import ROOT, registry_path
from densebench.fixes import resolve_fixes
from densebench.gpu_plan import check_gpu_fit
from densebench.lora_whitelist import paper_adapts
from densebench.models.weights import needs_weights
from densebench.plan.report import ReportPlan
from densebench.plan.sharing import SharingPlan
from densebench.registry import AXES, Registries, strategy_problem
from densebench.resources import STAGED, job_resources, shared_job_resources
from densebench.spec import RunSpec, build_run_spec
from densebench.variants import Variant, seed_variant, training_seeds

Run = tuple[str, str, str, str]
"""(dataset, model, strategy, variant) of one run; variant "" for a cell's own run."""

RUN_DIR = "results/runs/{dataset}/{model}/{strategy}"
RUN_PRODUCTS = ("best.pt", "confusion.npz")
"""The products of a run that `all` and each scored ablation ask for (a deleted run is redone)."""
ABLATIONS = ("lora_rank", "input_size", "baseline_unet", "token_similarity", "qualitative")


class InapplicablePairError(ValueError):
    """The config pairs a model with a strategy that cannot train it."""


class UnadaptedAblationModelError(InapplicablePairError):
    """The LoRA-rank ablation names a model whose LoRA runs the authors' code leaves frozen."""


class LocalCopyError(ValueError):
    """The config points a dataset without raw files (a synthetic one) at a local copy."""


def run_folder(dataset: str, model: str, strategy: str, variant: str = "") -> str:
    """The folder of a run: its cell's, suffixed `__<variant>` for a variant run."""
    folder = RUN_DIR.format(dataset=dataset, model=model, strategy=strategy)
    return f"{folder}__{variant}" if variant else folder


class Plan:
    """Every run and product a config asks for, with the grids its report shows."""

    def __init__(
        self, config: Mapping[str, Any], registries: Registries, workdir: Path = Path(".")
    ) -> None:
        self.config = config
        self.registries = registries
        self.datasets: list[str] = list(config["datasets"])
        self.models: list[str] = list(config["models"])
        registries.check_names({axis: config[axis] for axis in AXES})
        self.strategies: list[str] = list(config["strategies"])
        self.seeds: list[int] = training_seeds(config["train"])
        self.local_copies = self._local_copies(config.get("local_copies") or {})
        self.ablations = self._ablations(config["ablations"])
        self._check_pairs()
        self._check_lora_rank()
        self._specs: dict[Run, RunSpec] = {}
        self._resources: dict[tuple[str, Run, int], Any] = {}
        self._fits: set[Run] = set()
        self.report = ReportPlan(self)
        """The report's products and grids (densebench.plan.report)."""
        self.sharing = SharingPlan(self, Path(workdir))
        """Which runs share a training job (densebench.plan.sharing), read from `workdir`."""

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], root: Path = ROOT, workdir: Path = Path(".")
    ) -> Plan:
        """The plan of a validated config, its registries resolved against `root`, its
        results read from `workdir` (which runs are trained)."""
        registries = Registries.load(*(registry_path(config, axis, root) for axis in AXES))
        return cls(config, registries, workdir)

    # ---- runs ---------------------------------------------------------------------------
    def _ablations(self, ablations: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The ablation settings with the baseline's `datasets: null` read as the config's
        datasets (a copy: the config is never changed), their names checked."""
        out = {name: dict(a) for name, a in ablations.items()}
        if out["baseline_unet"]["datasets"] is None:
            out["baseline_unet"]["datasets"] = list(self.datasets)
        for a in out.values():
            self.registries.check_names({axis: a[axis] for axis in AXES})
        return out

    def pair_problem(self, model: str, strategy: str) -> str | None:
        """Why a (model, strategy) pair cannot run (None if it can)."""
        r = self.registries
        return strategy_problem(model, r.models[model], strategy, r.strategies[strategy])

    def _check_pairs(self) -> None:
        """Refuse, before any job, a pair of the grid or of an ablation that cannot run."""
        where = {"the grid (config models x strategies)": (self.models, self.strategies)}
        for name, a in self.ablations.items():
            where[f"ablations.{name}"] = (a["models"], a["strategies"])
        problems = [
            f"{place}: {problem}"
            for place, (models, strategies) in where.items()
            for m in models
            for s in strategies
            if (problem := self.pair_problem(m, s))
        ]
        if problems and self.config.get("pairs", "all") == "all":
            raise InapplicablePairError(
                "some (model, strategy) pairs of the config cannot run:\n  "
                + "\n  ".join(dict.fromkeys(problems))
                + "\nremedy: take the model or strategy out of that list, or set "
                "`pairs: applicable` to leave out the pairs that do not apply"
            )

    def _check_lora_rank(self) -> None:
        """Refuse, before any job, a LoRA-rank ablation model that the authors' code gives no
        adapter (densebench.lora_whitelist.paper_adapts) while `lora_all_families` is off: its
        LoRA runs at every rank would be its frozen run."""
        if resolve_fixes(dict(self.config))["lora_all_families"]:
            return
        a, r = self.ablations["lora_rank"], self.registries
        lora = [s for s in a["strategies"] if r.strategies[s]["encoder"] in ("lora", "dora")]
        unadapted = [
            m for m in a["models"]
            if any(self.applies(m, s) for s in lora) and not paper_adapts(r.models[m], m)
        ]  # fmt: skip
        if unadapted:
            raise UnadaptedAblationModelError(
                f"ablations.lora_rank.models: {', '.join(unadapted)} get no LoRA adapter under "
                f"protocol {self.config['protocol']!r} (the authors' LoRA whitelist and attention "
                f"types leave them unadapted), so their runs of {', '.join(lora)} would all "
                "equal their frozen run\nremedy: take them out of ablations.lora_rank.models, or "
                "set `fixes: {lora_all_families: true}` to adapt every model through its "
                "adapter_targets"
            )

    def applies(self, model: str, strategy: str) -> bool:
        """Whether the pair runs (under `pairs: applicable` inapplicable pairs are left out)."""
        return self.pair_problem(model, strategy) is None

    def cells(
        self, datasets: Iterable[str], models: Iterable[str], strategies: Iterable[str]
    ) -> list[tuple[str, str, str]]:
        """(dataset, model, strategy) of every applicable pair, in config order."""
        models, strategies = list(models), list(strategies)
        return [
            (d, m, s) for d in datasets for m in models for s in strategies if self.applies(m, s)
        ]

    def seed_runs(self) -> list[Run]:
        """Every run of the grid, every training seed (the grid's own runs for one seed)."""
        variants = [seed_variant(seed, self.config["train"]).name for seed in self.seeds]
        return [
            (*cell, v) for cell in self.cells(self.datasets, self.models, self.strategies)
            for v in variants
        ]  # fmt: skip

    def input_size_runs(self) -> list[Run]:
        """The input-size ablation's runs: each S of each dataset (only the S its shortest
        side reaches, unless `upsample`)."""
        a = self.ablations["input_size"]
        cards = self.registries.datasets
        return [
            (d, m, s, Variant(size=size).name)
            for d, m, s in self.cells(a["datasets"], a["models"], a["strategies"])
            for size in a["sizes"]
            if a["upsample"] or cards[d]["min_side"] >= size
        ]

    def analysis_runs(self, name: str) -> list[Run]:
        """The runs of an analysis, in config order: the grid's seed runs (`seeds`), the
        input-size runs, or an ablation's cells (a cell shared with the grid is the same run)."""
        if name == "seeds":
            return self.seed_runs()
        if name == "input_size":
            return self.input_size_runs()
        a = self.ablations[name]
        return [(*cell, "") for cell in self.cells(a["datasets"], a["models"], a["strategies"])]

    def trained_runs(self) -> list[Run]:
        """Every run the plan trains, once each: the grid's seed runs, then the input-size
        runs and the scored ablations' cells."""
        names = ("seeds", "input_size", "lora_rank", "baseline_unet")
        runs = [run for name in names for run in self.analysis_runs(name)]
        return list(dict.fromkeys(runs))

    def analysis_run_files(self, name: str, file: str) -> list[str]:
        """One file of every run of an analysis."""
        return [f"{run_folder(*run)}/{file}" for run in self.analysis_runs(name)]

    def baseline_cells(self) -> list[tuple[str, str, str]]:
        """The UNet baseline's cells where it joins the grid's tables (`ablations.baseline_unet`
        enabled): scored, tabulated and compared with the PFMs like any cell of the grid."""
        a = self.ablations["baseline_unet"]
        return self.cells(a["datasets"], a["models"], a["strategies"]) if a["enabled"] else []

    @property
    def report_models(self) -> list[str]:
        """The models of the results table: the grid's, then the baseline's where it joins."""
        return list(dict.fromkeys([*self.models, *(c[1] for c in self.baseline_cells())]))

    def dataset_run_files(self, dataset: str, file: str) -> list[str]:
        """One file of every run in the results table on a dataset: the grid's cells' own runs
        and the joined baseline's."""
        cells = self.cells([dataset], self.models, self.strategies)
        cells += [c for c in self.baseline_cells() if c[0] == dataset and c not in cells]
        return [f"{run_folder(*cell)}/{file}" for cell in cells]

    def object_run_files(self, dataset: str) -> list[str]:
        """The object tallies (`objects.npz`) of every run `dataset_run_files` lists, where the
        dataset's card has instance labels; none otherwise."""
        from densebench.evaluate.object_tallies import OBJECT_FILE

        if self.instance_kind(dataset) is None:
            return []
        return self.dataset_run_files(dataset, OBJECT_FILE)

    def objects_identity(self, spec: RunSpec) -> dict[str, Any]:
        """What redoes a run's object tallies, given its trained weights and the instance store:
        its predictions, the kind of objects and the tallies' version."""
        from densebench.evaluate.object_tallies import TALLY_VERSION

        kind = self.instance_kind(spec.dataset)
        return {**spec.prediction_identity(), "objects": kind, "tallies": TALLY_VERSION}

    # ---- data and weights -----------------------------------------------------------------
    def datasets_with_access(self, *access: str) -> list[str]:
        """The registry's datasets of an access kind (synthetic, open, manual)."""
        return [d for d, card in self.registries.datasets.items() if card["access"] in access]

    def _local_copies(self, copies: Mapping[str, str]) -> dict[str, str]:
        """The config's local copies (`local_copies`: dataset -> folder or file, `~` expanded),
        their datasets checked: registry names with raw files (not synthetic ones)."""
        self.registries.check_names({"datasets": copies})
        cards = self.registries.datasets
        generated = [d for d in copies if cards[d]["access"] == "synthetic"]
        if generated:
            raise LocalCopyError(
                f"local_copies: {', '.join(generated)} is generated by the workflow (access "
                "synthetic) and has no raw files to copy; remove it from local_copies"
            )
        return {d: str(Path(path).expanduser()) for d, path in copies.items()}

    def hand_dropped(self) -> list[str]:
        """Datasets a person drops into resources/raw/<dataset>/ (the workflow never fetches
        them), unless the config points them at a local copy."""
        from densebench.data.download import needs_hand_drop

        cards = self.registries.datasets
        return [d for d, c in cards.items() if needs_hand_drop(c) and d not in self.local_copies]

    def downloaded(self) -> list[str]:
        """Open datasets the workflow downloads itself into resources/raw/<dataset>/ (neither
        dropped by hand nor taken from a local copy)."""
        skipped = {*self.hand_dropped(), *self.local_copies}
        return [d for d in self.datasets_with_access("open") if d not in skipped]

    def uses_paper_split(self, dataset: str) -> bool:
        """Whether a dataset's store takes the authors' published split list."""
        synthetic = self.registries.datasets[dataset]["access"] == "synthetic"
        return self.config["data"]["split_policy"] == "paper" and not synthetic

    def raw_inputs(self, dataset: str) -> dict[str, Any]:
        """Inputs of a dataset's unpack job: the download folder, every file of a complete hand
        drop or every source in its local copy (inputs, never outputs: no flag deletes them),
        or, while a drop is incomplete or the local copy missing, a marker that only manual_raw
        or missing_local_copy makes (by failing with the instructions)."""
        from densebench.data.download import local_sources, missing_sources

        raw = Path(f"resources/raw/{dataset}")
        card = self.registries.datasets[dataset]
        if dataset in self.local_copies:
            sources = local_sources(card, Path(self.local_copies[dataset]))
            if not sources:
                return {"missing": f"{raw}.missing_local_copy"}
            return {"local": [str(path) for path in sources.values()]}
        if dataset not in self.hand_dropped():
            return {"raw": str(raw)}
        if missing_sources(card, raw):
            return {"missing": f"{raw}.missing"}
        return {"drop": [str(raw / source["filename"]) for source in card["sources"]]}

    def convert_inputs(self, dataset: str) -> dict[str, str]:
        """Unpacked raw files and, under the paper split policy, the authors' split list."""
        inputs = {"unpacked": f"resources/unpacked/{dataset}"}
        if self.uses_paper_split(dataset):
            inputs["split_list"] = f"resources/splits/{dataset}.json"
        return inputs

    def instance_kind(self, dataset: str) -> str | None:
        """The kind of objects of a dataset's ground-truth instances (its card's
        `instance_labels`: nucleus or gland), or None where it has none."""
        from densebench.data.instances import instance_kind

        return instance_kind(self.registries.datasets[dataset])

    def instance_datasets(self) -> list[str]:
        """The registry's datasets with instance labels (their instance store has a rule)."""
        return [d for d in self.registries.datasets if self.instance_kind(d) is not None]

    def instance_inputs(self, dataset: str) -> dict[str, str]:
        """Inputs of a dataset's instance store: its unpacked raw files (converted again) and
        its semantic store (whose sample order and sizes the instances follow)."""
        return {
            "unpacked": f"resources/unpacked/{dataset}",
            "store": f"resources/datasets/{dataset}.zarr",
        }

    def model_inputs(self, dataset: str, model: str) -> dict[str, str]:
        """Inputs of every job that builds a model: the store and, if any, the weights."""
        inputs = {"store": f"resources/datasets/{dataset}.zarr"}
        if self.needs_weights(model):
            inputs["weights"] = f"resources/weights/{model}"
        return inputs

    def weights_models(self, pretrain: bool) -> list[str]:
        """The models whose snapshot pretrain_weights (`weights: pretrain` demo models) or
        download_weights (hub models) makes."""
        from densebench.models.weights import is_pretrain

        models = self.registries.models
        return [
            m for m, r in models.items() if self.needs_weights(m) and is_pretrain(r) == pretrain
        ]

    def identity(self, kind: str, wildcards: Mapping[str, str]) -> dict[str, Any] | Any:
        """What redoes a job (densebench.identity), per kind of job: `sources` (download or
        unpack a dataset's raw files), `split_list`, `store` (generate or convert), `instances`
        (a dataset's instance store), `weights` (download or pretrain a model's snapshot),
        `training`, `prediction`. The rules pass it as canonical JSON: their rerun trigger."""
        from densebench import identity
        from densebench.data.converters import converter_version
        from densebench.models.weights import is_pretrain, pretrain_identity, snapshot_manifest

        if kind in ("training", "prediction", "objects"):
            run = (wildcards["dataset"], wildcards["model"], wildcards["strategy"])
            spec = self.spec((*run, wildcards.get("variant", "")))
            if kind == "objects":
                return self.objects_identity(spec)
            return spec.training_identity() if kind == "training" else spec.prediction_identity()
        if kind == "weights":
            model, record = wildcards["model"], self.registries.models[wildcards["model"]]
            if is_pretrain(record):
                return pretrain_identity(model, record)
            snapshot = snapshot_manifest(Path(f"resources/weights/{model}"))
            return identity.weights_identity(record, snapshot)
        card = self.registries.datasets[wildcards["dataset"]]
        if kind == "sources":
            return identity.sources_identity(card)
        if kind == "split_list":
            return card.get("split_list")
        if kind in ("store", "instances"):
            version = converter_version(card["converter"]) if card.get("converter") else None
            if kind == "store":
                return identity.store_identity(card, self.config["data"], version)
            from densebench.data.instances import INSTANCE_VERSION

            return identity.instance_identity(card, version, INSTANCE_VERSION)
        raise ValueError(f"unknown identity kind {kind!r}")

    def needs_weights(self, model: str) -> bool:
        """Whether a model loads a weights snapshot (not a random-init model)."""
        return needs_weights(self.registries.models[model])

    def spec(self, run: Run) -> RunSpec:
        """The run spec of a run (cached: the rules ask for it per job and per field)."""
        if run not in self._specs:
            self._specs[run] = build_run_spec(self.config, *run[:3], self.registries, run[3])
        return self._specs[run]

    def resources(self, stage: str, run: Run, attempt: int = 1) -> Any:
        """Resources of a run's train or predict job at an attempt (densebench.resources); a
        `train` job that takes its outputs from a shared job only moves files (STAGED)."""
        key = (stage, run, attempt)
        if stage == "train" and self.sharing.staging(run) is not None:
            return STAGED
        if key not in self._resources:
            card = self.registries.datasets[run[0]]
            fractions = self.config["data"]["split_fractions"]
            policy = self.config["resources"]
            self._resources[key] = job_resources(
                self.spec(run), card, fractions, stage, attempt, policy
            )
        return self._resources[key]

    def shared_specs(self, dataset: str, model: str, members: str) -> list[RunSpec]:
        """The run specs of a shared job's members (its staging folder name)."""
        return [self.spec(run) for run in self.sharing.members(dataset, model, members)]

    def shared_resources(self, dataset: str, model: str, members: str, attempt: int = 1) -> Any:
        """Resources of a shared training job at an attempt (densebench.resources); a job no
        GPU class holds raises densebench.gpu_plan.PlanError."""
        key = ("shared", (dataset, model, members, ""), attempt)
        if key not in self._resources:
            card = self.registries.datasets[dataset]
            fractions = self.config["data"]["split_fractions"]
            specs = self.shared_specs(dataset, model, members)
            policy = self.config["resources"]
            self._resources[key] = shared_job_resources(specs, card, fractions, attempt, policy)
        return self._resources[key]

    def check_fits(self, run: Run) -> None:
        """Stop the plan, before any job, if a run's train or predict job fits no GPU class of
        the site (densebench.resources.check_gpu_fit raises its PlanError)."""
        if run not in self._fits:
            check_gpu_fit([self.spec(run)], self.config["resources"])
            self._fits.add(run)

    # ---- targets ------------------------------------------------------------------------
    def final_outputs(self) -> list[str]:
        """Targets of `all`: every run's checkpoint and predictions (and object tallies, on a
        dataset with instance labels), every training seed's (so a deleted run is redone with
        what depends on it), the results table, the report of our runs."""
        from densebench.evaluate.object_tallies import OBJECT_FILE

        runs = self.seed_runs()
        files = [f"{run_folder(*run)}/{f}" for run in runs for f in RUN_PRODUCTS]
        files += [  # the cells' own runs (a seed variant's objects are not scored)
            f"{run_folder(*r)}/{OBJECT_FILE}" for r in runs if self.instance_kind(r[0]) and not r[3]
        ]
        return [*files, "results/tables/results.csv", *self.report.report_files("reproduced")]

    @cached_property
    def ablation_products(self) -> dict[str, list[str]]:
        """The products of each ablation (a scored one's runs first, so a deleted run is
        redone)."""

        def scored(name: str, *products: str) -> list[str]:
            runs = [f for p in RUN_PRODUCTS for f in self.analysis_run_files(name, p)]
            return [*runs, *(f"results/ablations/{name}/{p}" for p in products)]

        shown = self.ablations["qualitative"]["datasets"]
        return {
            "lora_rank": scored("lora_rank", "figure5.png"),
            "input_size": scored("input_size", "figure.png"),
            "baseline_unet": scored("baseline_unet", "table.md", "figure.png"),
            "token_similarity": ["results/ablations/token_similarity/figure.png"],
            "qualitative": [f"results/ablations/qualitative/{d}.png" for d in shown],
        }

    def ablation_targets(self, name: str | None = None) -> list[str]:
        """The products of one ablation, or (no name) of every enabled one (part of `all`)."""
        if name is not None:
            return self.ablation_products[name]
        enabled = [n for n in ABLATIONS if self.ablations[n]["enabled"]]
        return [t for n in enabled for t in self.ablation_products[n]]

    def analysis_inputs(self, name: str, dataset: str, model: str) -> dict[str, Any]:
        """Inputs of an analysis job that reruns a model's runs on a dataset (token similarity,
        qualitative): the store, the weights and the best.pt of each strategy's run."""
        strategies = self.ablations[name]["strategies"]
        best = [f"{run_folder(dataset, model, s)}/best.pt" for s in strategies]
        return {**self.model_inputs(dataset, model), "best": best}

    def similarity_tables(self) -> list[str]:
        """The token-similarity tables of every (dataset, model) of that analysis."""
        a = self.ablations["token_similarity"]
        root = "results/ablations/token_similarity"
        return [f"{root}/{d}/{m}.csv" for d in a["datasets"] for m in a["models"]]
