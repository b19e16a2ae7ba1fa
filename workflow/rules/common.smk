# Shared helpers: config validation, the three registries, the grid, run specs.
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from densebench.registry import Registries
from densebench.fixes import scoring_options
from densebench.spec import build_run_spec, dumps
import re

validate(config, schema="../schemas/config.schema.yaml")


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
SCORING = scoring_options(config)
SYNTHETIC = [
    d for d, card in REGISTRIES.datasets.items() if card["access"] == "synthetic"
]
MANUAL = [d for d, card in REGISTRIES.datasets.items() if card["access"] == "manual"]
OPEN = [d for d, card in REGISTRIES.datasets.items() if card["access"] == "open"]
RUN_DIR = "results/runs/{dataset}/{model}/{strategy}"


def alternatives(names):
    """Regex matching exactly one of the names (wildcard constraint)."""
    return "|".join(re.escape(n) for n in sorted(names))


wildcard_constraints:
    dataset=alternatives(REGISTRIES.datasets),
    model=alternatives(REGISTRIES.models),
    strategy=alternatives(REGISTRIES.strategies),


def needs_weights(model):
    """Whether a model loads pretrained weights (not a random-init demo model)."""
    return REGISTRIES.models[model].get("weights") != "random"


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
    """Before any job runs: fail with instructions if a scheduled run needs a manual drop."""
    from densebench.download import check_manual_drop

    for job in workflow.dag.needrun_jobs():
        if job.rule.name == "manual_raw":
            dataset = job.wildcards["dataset"]
            card = REGISTRIES.datasets[dataset]
            check_manual_drop(dataset, card, Path(f"resources/raw/{dataset}"))


def card_json(wildcards):
    """The dataset card of a job, as canonical JSON."""
    return dumps(REGISTRIES.datasets[wildcards.dataset])


def model_json(wildcards):
    """The model record of a job, as canonical JSON."""
    return dumps(REGISTRIES.models[wildcards.model])


def run_spec(wildcards):
    """The run spec of a (dataset, model, strategy) job, as canonical JSON."""
    spec = build_run_spec(
        config, wildcards.dataset, wildcards.model, wildcards.strategy, REGISTRIES
    )
    return dumps(spec)


def weights_flag(wildcards):
    """CLI flag pointing a job at its model's local weights, if it has any."""
    if needs_weights(wildcards.model):
        return f"--weights resources/weights/{wildcards.model}"
    return ""


def preflight_models_json():
    """Records of the config's models, as JSON, for the access preflight."""
    return dumps({name: REGISTRIES.models[name] for name in MODELS})


def run_inputs(wildcards):
    """Inputs every job that builds a model needs: the store and, if any, the weights."""
    inputs = {"store": f"resources/datasets/{wildcards.dataset}.zarr"}
    if needs_weights(wildcards.model):
        inputs["weights"] = f"resources/weights/{wildcards.model}"
    return inputs


def parent_dir(wildcards, output):
    """Folder of a job's first output."""
    return str(Path(output[0]).parent)


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


def display_names_json():
    """Display names of the three axes for tables and figures, as JSON."""
    names = {
        axis: {k: r.get("display_name", k) for k, r in REGISTRIES.axis(axis).items()}
        for axis in ("models", "datasets", "strategies")
    }
    return dumps(names)


def strategy_table_files():
    """Every per-(dataset, strategy) table, CSV and Markdown."""
    return expand(
        "results/tables/{dataset}/{strategy}.{ext}",
        dataset=DATASETS,
        strategy=STRATEGIES,
        ext=("csv", "md"),
    )


def tables_root(wildcards, output):
    """Folder holding the per-dataset table folders (parent of a table's dataset folder)."""
    return str(Path(output[0]).parent.parent)


def run_files(name):
    """One file of every run of the grid."""
    return expand(
        f"{RUN_DIR}/{name}", dataset=DATASETS, model=MODELS, strategy=STRATEGIES
    )


def final_outputs():
    """Targets of `all`: every run's checkpoint and predictions (so a deleted run is redone
    with what depends on it), the results table, every strategy table and Figure 3."""
    return [
        *run_files("best.pt"),
        *run_files("confusion.npz"),
        "results/tables/results.csv",
        *strategy_table_files(),
        "results/figures/figure3.png",
        "results/figures/figure3.pdf",
    ]
