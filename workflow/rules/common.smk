# Shared helpers: config validation, the three registries, the grid, run specs.
import json
import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from densebench.config import export_source, expose_commands
from densebench.data.converters import converter_version
from densebench.registry import Registries
from densebench.report.tables import card_fields
from densebench.resources import job_resources
from densebench.spec import build_run_spec
from densebench.identity import (
    canonical,
    scoring_identity,
    snapshot_manifest,
    sources_identity,
    store_identity,
    weights_identity,
)
from densebench.variants import PATTERN as VARIANT_PATTERN
from densebench.variants import Variant, seed_variant, training_seeds
from functools import lru_cache
import re

validate(config, schema="../schemas/config.schema.yaml")

# Jobs call `densebench`: take it from the environment Snakemake itself runs from, unless they
# run in the job image or in conda environments (--sdm apptainer / conda), which have their own.
if not workflow.deployment_settings.deployment_method:
    expose_commands(os.environ, sys.executable)
# Where the conda environments' post-deploy scripts (envs/*.post-deploy.sh) install it from.
export_source(os.environ, workflow.basedir)


def registry_file(axis):
    """Registry path of the config, relative to the workflow root unless absolute."""
    path = Path(config["registries"][axis])
    return path if path.is_absolute() else Path(workflow.basedir) / path


REGISTRIES = Registries.load(
    *(registry_file(a) for a in ("models", "datasets", "strategies"))
)
for axis in ("models", "datasets", "strategies"):
    validate(REGISTRIES.axis(axis), schema=f"../schemas/{axis}.schema.yaml")
REGISTRIES.check_names(
    {axis: config[axis] for axis in ("models", "datasets", "strategies")}
)

DATASETS, MODELS, STRATEGIES = (
    config["datasets"],
    config["models"],
    config["strategies"],
)
SCORING = scoring_identity(config)
SYNTHETIC = [
    d for d, card in REGISTRIES.datasets.items() if card["access"] == "synthetic"
]
MANUAL = [d for d, card in REGISTRIES.datasets.items() if card["access"] == "manual"]
OPEN = [d for d, card in REGISTRIES.datasets.items() if card["access"] == "open"]
RUN_DIR = "results/runs/{dataset}/{model}/{strategy}"
# A variant run of a cell (densebench.variants: another input size or training seed).
VARIANT_RUN_DIR = f"{RUN_DIR}__{{variant}}"
SEEDS = training_seeds(config["train"])


def alternatives(names):
    """Regex matching exactly one of the names (wildcard constraint)."""
    return "|".join(re.escape(n) for n in sorted(names))


wildcard_constraints:
    dataset=alternatives(REGISTRIES.datasets),
    model=alternatives(REGISTRIES.models),
    strategy=alternatives(REGISTRIES.strategies),
    variant=VARIANT_PATTERN,


def needs_weights(model):
    """Whether a model loads a weights snapshot (not a random-init demo model): downloaded
    from the hub, or made by pretrain_weights for a `weights: pretrain` demo model."""
    return REGISTRIES.models[model].get("weights") != "random"


def weights_models(pretrain):
    """Regex of the models whose snapshot pretrain_weights (pretrain: `weights: pretrain`
    demo models) or download_weights (not pretrain: hub models) makes; "a^" if none."""
    from densebench.models.weights import is_pretrain, is_random_init

    names = [
        m
        for m, r in REGISTRIES.models.items()
        if not is_random_init(r) and is_pretrain(r) == pretrain
    ]
    return alternatives(names) if names else "a^"  # a^: matches no name


def uses_paper_split(dataset):
    """Whether a dataset's store takes the authors' published split list."""
    return config["data"]["split_policy"] == "paper" and dataset not in SYNTHETIC


def convert_inputs(wildcards):
    """Unpacked raw files and, under the paper split policy, the authors' split list."""
    inputs = {"unpacked": f"resources/unpacked/{wildcards.dataset}"}
    if uses_paper_split(wildcards.dataset):
        inputs["split_list"] = f"resources/splits/{wildcards.dataset}.json"
    return inputs


def split_list_flag(wildcards, input):
    """CLI flag passing the split list to the converter, if the policy uses one."""
    return f"--split-list {input.split_list}" if "split_list" in input.keys() else ""


def check_manual_drops():
    """Before any job runs: stop, with instructions for all of them, if a scheduled dataset's
    hand drop is missing (manual_raw is scheduled exactly for incomplete drops)."""
    from densebench.data.download import RawDataError, manual_instructions

    jobs = [j for j in workflow.dag.needrun_jobs() if j.rule.name == "manual_raw"]
    missing = sorted({job.wildcards["dataset"] for job in jobs})
    texts = [
        manual_instructions(d, REGISTRIES.datasets[d], Path(f"resources/raw/{d}"))
        for d in missing
    ]
    if texts:
        raise RawDataError("\n\n".join(texts))


def hand_dropped_datasets():
    """Datasets a person drops into resources/raw/<dataset>/: the workflow never fetches them."""
    from densebench.data.download import needs_hand_drop

    return [d for d, card in REGISTRIES.datasets.items() if needs_hand_drop(card)]


def downloaded_datasets():
    """Open datasets the workflow downloads itself into resources/raw/<dataset>/."""
    return [d for d in OPEN if d not in hand_dropped_datasets()]


def raw_inputs(wildcards):
    """Inputs of unpack_raw: the download folder, every file of a complete hand drop (an input,
    never an output: no flag deletes it), or, while a drop is incomplete, a marker that only
    manual_raw makes (by failing with the instructions)."""
    from densebench.data.download import missing_sources

    dataset = wildcards.dataset
    raw = Path(f"resources/raw/{dataset}")
    card = REGISTRIES.datasets[dataset]
    if dataset not in hand_dropped_datasets():
        return {"raw": str(raw)}
    if missing_sources(card, raw):
        return {"missing": f"{raw}.missing"}
    return {"drop": [str(raw / source["filename"]) for source in card["sources"]]}


def card_json(wildcards, output):
    """The dataset card of a job, as canonical JSON (output-derived: not a rerun trigger)."""
    return canonical(REGISTRIES.datasets[wildcards.dataset])


def sources_identity_json(wildcards):
    """What re-downloads or re-unpacks a dataset's raw files: a rerun trigger."""
    return canonical(sources_identity(REGISTRIES.datasets[wildcards.dataset]))


def split_list_identity_json(wildcards):
    """What re-downloads the authors' split list of a dataset: a rerun trigger."""
    return canonical(REGISTRIES.datasets[wildcards.dataset].get("split_list"))


def store_identity_json(wildcards):
    """What regenerates or re-converts a dataset (its card's content, the split settings and
    the store layout; not its description): a rerun trigger."""
    card = REGISTRIES.datasets[wildcards.dataset]
    version = converter_version(card["converter"]) if card.get("converter") else None
    return canonical(store_identity(card, config["data"], version))


def model_json(wildcards, output):
    """The model record of a job, as canonical JSON (output-derived: not a rerun trigger)."""
    return canonical(REGISTRIES.models[wildcards.model])


def weights_identity_json(wildcards):
    """What redoes a model's weights snapshot (hub repo and revision; for a pretrain demo
    model its architecture and pretraining settings): a rerun trigger."""
    from densebench.models.weights import is_pretrain, pretrain_identity

    record = REGISTRIES.models[wildcards.model]
    if is_pretrain(record):
        return canonical(pretrain_identity(wildcards.model, record))
    snapshot = snapshot_manifest(Path(f"resources/weights/{wildcards.model}"))
    return canonical(weights_identity(record, snapshot))


@lru_cache(maxsize=None)
def cell_spec(dataset, model, strategy, variant=""):
    """The run spec of a (dataset, model, strategy) cell or of a variant run of it (a frozen
    densebench.spec.RunSpec)."""
    return build_run_spec(config, dataset, model, strategy, REGISTRIES, variant)


def run_of(wildcards):
    """(dataset, model, strategy, variant) of a job's run ('' for a cell's own run)."""
    variant = wildcards.get("variant", "")
    return wildcards.dataset, wildcards.model, wildcards.strategy, variant


def run_folder(dataset, model, strategy, variant=""):
    """The folder of a run: its cell's, suffixed `__<variant>` for a variant run."""
    folder = RUN_DIR.format(dataset=dataset, model=model, strategy=strategy)
    return f"{folder}__{variant}" if variant else folder


def run_resources(stage, wildcards, attempt=1):
    """Resources of a train or predict job (densebench.resources), scaled with the attempt."""
    return cell_resources(stage, *run_of(wildcards), attempt)


@lru_cache(maxsize=None)
def cell_resources(stage, dataset, model, strategy, variant, attempt):
    """Resources of one run's train or predict job at an attempt (cached: asked per field)."""
    spec = cell_spec(dataset, model, strategy, variant)
    card = REGISTRIES.datasets[dataset]
    fractions = config["data"]["split_fractions"]
    return job_resources(spec, card, fractions, stage, attempt, config["resources"])


def run_resource(stage, name):
    """Resource callable (wildcards, attempt) of one field of a job's resources."""

    def value(wildcards, attempt):
        return getattr(run_resources(stage, wildcards, attempt), name)

    return value


def run_threads(wildcards):
    """Threads of a train or predict job: the CPUs it is given (its cpus_per_gpu, which
    depends on the run, not on the stage)."""
    return run_resources("train", wildcards).threads


def job_spec(wildcards, input):
    """The run spec of a job, as canonical JSON: everything the job reads. Input-derived, so
    Snakemake does not record it; the job's identity params below decide reruns."""
    return cell_spec(*run_of(wildcards)).to_json()


def training_identity_json(wildcards):
    """What retrains a run (densebench.identity), as canonical JSON: a rerun trigger."""
    return canonical(cell_spec(*run_of(wildcards)).training_identity())


def prediction_identity_json(wildcards):
    """What re-predicts a trained run (densebench.identity), as canonical JSON: a trigger."""
    return canonical(cell_spec(*run_of(wildcards)).prediction_identity())


def weights_flag(wildcards):
    """CLI flag pointing a job at its model's local weights, if it has any."""
    if needs_weights(wildcards.model):
        return f"--weights resources/weights/{wildcards.model}"
    return ""


def preflight_models_json():
    """Records of the config's models, as JSON, for the access preflight."""
    return canonical({name: REGISTRIES.models[name] for name in MODELS})


def run_inputs(wildcards):
    """Inputs every job that builds a model needs: the store and, if any, the weights."""
    inputs = {"store": f"resources/datasets/{wildcards.dataset}.zarr"}
    if needs_weights(wildcards.model):
        inputs["weights"] = f"resources/weights/{wildcards.model}"
    return inputs


def parent_dir(wildcards, output):
    """Folder of a job's first output."""
    return str(Path(output[0]).parent)


def output_stem(wildcards, output):
    """A job's first output without its extension (the stem its CLI writes formats to)."""
    return str(Path(output[0]).with_suffix(""))


def dataset_run_files(name):
    """Input function: one file of every run of the job's dataset."""

    def files(wildcards):
        return expand(
            f"{RUN_DIR}/{name}",
            dataset=wildcards.dataset,
            model=MODELS,
            strategy=STRATEGIES,
        )

    return files


def seed_runs():
    """(dataset, model, strategy, variant) of every run of the grid, every training seed."""
    variants = [seed_variant(seed, config["train"]).name for seed in SEEDS]
    return [
        (d, m, s, v)
        for d in DATASETS
        for m in MODELS
        for s in STRATEGIES
        for v in variants
    ]


RUN_PRODUCTS = ("best.pt", "confusion.npz")
"""The products of a run that `all` asks for (so a deleted run is redone)."""


def final_outputs():
    """Targets of `all`: every run's checkpoint and predictions, every training seed's
    (so a deleted run is redone with what depends on it), the results table, the report
    of our runs."""
    files = [f"{run_folder(*run)}/{f}" for run in seed_runs() for f in RUN_PRODUCTS]
    return [*files, "results/tables/results.csv", *report_files("reproduced")]


# ---- report (workflow/rules/report.smk): one folder per results source -----------------
REPORT_DIR = "results/report/{source}"
SOURCE_PATTERN = "reproduced|published|merged"
OURS_PATTERN = (
    "reproduced|merged"  # the sources holding our runs (per-class rows, matrices)
)


def published_strategies():
    """The strategies with published results (a pinned `published_sha256`), config order
    first: the published source reports all of them."""
    pinned = [
        s
        for s in REGISTRIES.strategies
        if "published_sha256" in REGISTRIES.strategies[s]
    ]
    return [
        *(s for s in STRATEGIES if s in pinned),
        *(s for s in pinned if s not in STRATEGIES),
    ]


def report_strategies(source):
    """The strategies a source's report covers (one heat map each)."""
    if source == "reproduced":
        return list(STRATEGIES)
    if source == "published":
        return published_strategies()
    return [*STRATEGIES, *(s for s in published_strategies() if s not in STRATEGIES)]


def published_file(strategy):
    """Where a strategy's published results file lives: resources/published/<stem>.json."""
    return f"resources/published/{REGISTRIES.strategies[strategy]['published']}.json"


def published_sha256(stem):
    """The pinned sha256 of the published file Data/<stem>.json."""
    records = REGISTRIES.strategies.values()
    return next(r["published_sha256"] for r in records if r.get("published") == stem)


def absent_published_pattern():
    """Regex of the published stems not on disk, the only files fetch_published makes: a
    file present (downloaded earlier or dropped by hand) is then a plain input of the report,
    never an output, so no flag (-F, --forcerun, --delete-all-output) deletes it."""
    stems = [REGISTRIES.strategies[s]["published"] for s in published_strategies()]
    absent = [s for s in stems if not Path(f"resources/published/{s}.json").exists()]
    return alternatives(absent) if absent else "a^"  # a^: matches no name


def published_files_json():
    """The published files with their pinned sha256, {strategy: {path, sha256}}."""
    files = {
        s: {
            "path": published_file(s),
            "sha256": REGISTRIES.strategies[s]["published_sha256"],
        }
        for s in published_strategies()
    }
    return canonical(files)


def source_inputs(wildcards):
    """Inputs of a source's table: the results table and/or the published files."""
    inputs = {}
    if wildcards.source in ("reproduced", "merged"):
        inputs["reproduced"] = "results/tables/results.csv"
    if wildcards.source in ("published", "merged"):
        inputs["published"] = [published_file(s) for s in published_strategies()]
    return inputs


def source_flags(wildcards, input):
    """CLI flags of a source's inputs (input-derived: not a rerun trigger; the files are)."""
    flags = []
    if "reproduced" in input.keys():
        flags.append(f"--reproduced {input.reproduced}")
    if "published" in input.keys():
        flags.append(f"--published '{published_files_json()}'")
    return " ".join(flags)


def registry_order(axis, first):
    """`first` (the config's names), then the registry's other names of an axis."""
    return [*first, *(k for k in REGISTRIES.axis(axis) if k not in first)]


def grid_json(grid, sizes=False):
    """A grid's names in order ({axis: [names]}) with their display names, dataset
    categories and (`sizes`) the models' parameter counts, as JSON (densebench.report.grid).
    """
    names = {
        axis: {k: REGISTRIES.axis(axis)[k].get("display_name", k) for k in grid[axis]}
        for axis in grid
    }
    categories = {d: REGISTRIES.datasets[d]["category"] for d in grid["datasets"]}
    out = {**grid, "names": names, "categories": categories}
    if sizes:
        models = REGISTRIES.models
        out["params_m"] = {
            m: models[m]["params_m"] for m in grid["models"] if "params_m" in models[m]
        }
    return canonical(out)


def report_grid_json(extend=True, sizes=False):
    """The grid the report shows: the config's names first, then (`extend`) every other
    registry record, of which a source's table picks its own; without `extend` the config's
    grid alone (the reproduction report's); `sizes`: with Figure 4's parameter counts.
    """
    first = {"datasets": DATASETS, "models": MODELS, "strategies": STRATEGIES}
    grid = {
        a: registry_order(a, names) if extend else list(names)
        for a, names in first.items()
    }
    return grid_json(grid, sizes)


def report_grid(wildcards):
    """The grid param of a source's products: the config's grid for our runs (so a record
    added outside it re-renders nothing), extended by the registry for the published and
    merged sources (the paper's names)."""
    return report_grid_json(extend=wildcards.source != "reproduced")


def report_grid_sizes(wildcards):
    """`report_grid` with the models' parameter counts (Figure 4)."""
    return report_grid_json(extend=wildcards.source != "reproduced", sizes=True)


def cards_json(axis, source):
    """The fields the cards of an axis show, per record of the source's grid (`report_grid`),
    config names first (so an edit of another field re-renders no card)."""
    records, fields = REGISTRIES.axis(axis), card_fields(axis)
    names = (
        registry_order(axis, config[axis]) if source != "reproduced" else config[axis]
    )
    return canonical(
        {k: {f: records[k][f] for f in fields if f in records[k]} for k in names}
    )


REPORT_TABLES = (
    "dataset_sota",
    "average_rank",
    "strategy_comparison",
    "friedman",
    "model_cards",
    "dataset_cards",
)
REPORT_FIGURES = (
    "figure3",
    "figure4",
    "dataset_sota",
    "average_rank",
    "critical_difference",
)


def report_files(source):
    """Every product of a source's report: tables and figures; for sources with our runs the
    per-class and paired-bootstrap tables; for merged the reproduction report."""
    root = REPORT_DIR.format(source=source)
    files = [f"{root}/tables/per_strategy"]
    files += [
        f"{root}/tables/{n}.{e}" for n in REPORT_TABLES for e in ("csv", "md", "tex")
    ]
    names = [*REPORT_FIGURES, *(f"heatmap_{s}" for s in report_strategies(source))]
    files += [f"{root}/figures/{n}.{e}" for n in names for e in ("png", "pdf")]
    if source != "published":
        files.append(f"{root}/tables/per_class")
        files += expand(
            "{root}/tables/paired_bootstrap/{dataset}.{ext}",
            root=root,
            dataset=DATASETS,
            ext=("csv", "md"),
        )
    if source != "published" and len(SEEDS) > 1:
        files += [f"{root}/tables/seed_spread.{e}" for e in ("csv", "md", "tex")]
    if source == "merged":
        files += expand("results/report/reproduction.{ext}", ext=("html", "md", "csv"))
    return files


# ---- ablations (workflow/rules/ablations.smk): config `ablations.<name>` -----------------
ABLATIONS = config["ablations"]
if ABLATIONS["baseline_unet"]["datasets"] is None:  # null: the config's datasets
    ABLATIONS["baseline_unet"]["datasets"] = list(DATASETS)
for _name, _ablation in ABLATIONS.items():
    REGISTRIES.check_names(
        {axis: _ablation[axis] for axis in ("models", "datasets", "strategies")}
    )


def input_size_runs():
    """(dataset, model, strategy, variant) of the input-size ablation: each S of each
    dataset (only the S its shortest side reaches, unless `upsample`)."""
    a = ABLATIONS["input_size"]
    return [
        (d, m, s, Variant(size=size).name)
        for d in a["datasets"]
        for m in a["models"]
        for s in a["strategies"]
        for size in a["sizes"]
        if a["upsample"] or REGISTRIES.datasets[d]["min_side"] >= size
    ]


def ablation_cells(name):
    """(dataset, model, strategy, variant) of an analysis' runs, in config order: the seed
    runs of the grid (`seeds`), the input-size runs, or an ablation's cells."""
    if name == "seeds":
        return seed_runs()
    if name == "input_size":
        return input_size_runs()
    a = ABLATIONS[name]
    return [
        (d, m, s, "")
        for d in a["datasets"]
        for m in a["models"]
        for s in a["strategies"]
    ]


def ablation_run_files(name, file):
    """One file of every run of an analysis (a cell it shares with the grid is the same run,
    in the same folder)."""
    return [f"{run_folder(*run)}/{file}" for run in ablation_cells(name)]


def ablation_grid_json(name):
    """The order and display names of an ablation's figure."""
    a = ABLATIONS[name]
    return grid_json({axis: a[axis] for axis in ("datasets", "models", "strategies")})


def lora_ranks_json():
    """The LoRA rank of each LoRA strategy of the rank ablation (the figure's x axis)."""
    records = REGISTRIES.strategies
    strategies = ABLATIONS["lora_rank"]["strategies"]
    return canonical(
        {s: records[s]["rank"] for s in strategies if records[s]["encoder"] == "lora"}
    )


def scored_runs(name, *products):
    """The run products of a scored analysis (so a deleted run is redone, as in `all`),
    then its products."""
    runs = [f for p in RUN_PRODUCTS for f in ablation_run_files(name, p)]
    return [*runs, *(f"results/ablations/{name}/{p}" for p in products)]


ABLATION_TARGETS = {
    "lora_rank": scored_runs("lora_rank", "figure5.png"),
    "input_size": scored_runs("input_size", "figure.png"),
    "baseline_unet": scored_runs("baseline_unet", "table.md", "figure.png"),
    "token_similarity": ["results/ablations/token_similarity/figure.png"],
    "qualitative": expand(
        "results/ablations/qualitative/{dataset}.png",
        dataset=ABLATIONS["qualitative"]["datasets"],
    ),
}
ABLATION_PATTERN = "|".join([*ABLATION_TARGETS, "seeds"])  # seeds: the grid's seed runs


def similarity_files(wildcards):
    """The token-similarity tables of every (dataset, model) of that analysis."""
    a = ABLATIONS["token_similarity"]
    return expand(
        "results/ablations/token_similarity/{dataset}/{model}.csv",
        dataset=a["datasets"],
        model=a["models"],
    )


def similarity_inputs(wildcards):
    """A (dataset, model)'s store, weights and the best.pt of each strategy's run."""
    inputs = run_inputs(wildcards)
    strategies = ABLATIONS["token_similarity"]["strategies"]
    inputs["best"] = [
        f"results/runs/{wildcards.dataset}/{wildcards.model}/{s}/best.pt"
        for s in strategies
    ]
    return inputs


def ablation_targets(name=None):
    """The products of one ablation, or (no name) of every enabled one (part of `all`)."""
    if name is not None:
        return ABLATION_TARGETS[name]
    enabled = [n for n, a in ABLATIONS.items() if a["enabled"]]
    return [t for n in enabled for t in ABLATION_TARGETS[n]]


def similarity_resource(name):
    """Resource callable of the token-similarity job: a prediction's (it runs the test images
    through the model), of the analysis' first strategy."""
    first = ABLATIONS["token_similarity"]["strategies"][0]

    def value(wildcards, attempt):
        cell = (wildcards.dataset, wildcards.model, first, "")
        return getattr(cell_resources("predict", *cell, attempt), name)

    return value


def qualitative_inputs(wildcards):
    """A dataset's store, the shown model's weights and the best.pt of each strategy's run."""
    a = ABLATIONS["qualitative"]
    model = a["models"][0]
    inputs = {"store": f"resources/datasets/{wildcards.dataset}.zarr"}
    if needs_weights(model):
        inputs["weights"] = f"resources/weights/{model}"
    inputs["best"] = [
        f"results/runs/{wildcards.dataset}/{model}/{s}/best.pt" for s in a["strategies"]
    ]
    return inputs


def qualitative_weights_flag(wildcards):
    """--weights of the qualitative figure's model, if it has any."""
    model = ABLATIONS["qualitative"]["models"][0]
    return f"--weights resources/weights/{model}" if needs_weights(model) else ""


def class_names_json(wildcards):
    """A dataset's class names (the figure's legend)."""
    return canonical(REGISTRIES.datasets[wildcards.dataset]["classes"])


def baseline_pfms_table(wildcards):
    """The results source table whose PFMs the UNet baseline is shown beside."""
    source = ABLATIONS["baseline_unet"]["compare_with"]
    return f"{REPORT_DIR.format(source=source)}/results.csv"


def baseline_grid_json():
    """The report grid of the baseline's comparison source, with the baseline's name."""
    source = ABLATIONS["baseline_unet"]["compare_with"]
    grid = json.loads(report_grid_json(extend=source != "reproduced"))
    baseline = ABLATIONS["baseline_unet"]["models"][0]
    record = REGISTRIES.models[baseline]
    grid["names"]["models"][baseline] = record.get("display_name", baseline)
    return canonical(grid)
