# The rules' view of the plan (densebench.plan.Plan): paths formatted from it, and the
# identities passed as params (the rerun triggers, plain strings). No planning logic here.
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package beside these rule files (also when the workflow runs as a Snakemake module).
SOURCE_ROOT = Path(str(workflow.current_basedir)).parents[1]
sys.path.insert(0, str(SOURCE_ROOT / "workflow"))

from densebench.config import export_source, expose_commands
from densebench.plan import (
    InapplicablePairError,
    LocalCopyError,
    OUR_SOURCES,
    REPORT_DIR,
    RUN_DIR,
    SHARED_DIR,
    SOURCES,
    Plan,
    grid_record,
    run_folder,
)
from densebench.registry import AXES, SINGULAR
from densebench.report.products import figure_kind_pattern, figure_product
from densebench.report.tables import card_fields
from densebench.gpu_plan import PlanError
from densebench.canonical import canonical
from densebench.identity import scoring_identity
from densebench.variants import PATTERN as VARIANT_PATTERN
from densebench.sharing import MEMBERS_PATTERN
import re

validate(config, schema="../schemas/config.schema.yaml")

# Jobs call `densebench`: take it from the environment Snakemake itself runs from, unless they
# run in the job image or in conda environments (--sdm apptainer / conda), which have their own.
if not workflow.deployment_settings.deployment_method:
    expose_commands(os.environ, sys.executable)
# Where the conda environments' post-deploy scripts (envs/*.post-deploy.sh) install it from.
export_source(os.environ, str(SOURCE_ROOT))

try:
    PLAN = Plan.from_config(config, Path(workflow.basedir))
except (InapplicablePairError, LocalCopyError) as error:
    raise WorkflowError(str(error)) from None
REGISTRIES = PLAN.registries
for _axis in AXES:
    validate(REGISTRIES.axis(_axis), schema=f"../schemas/{_axis}.schema.yaml")
SCORING = scoring_identity(config)
VARIANT_RUN_DIR = f"{RUN_DIR}__{{variant}}"
SITE_JSON = canonical(config["resources"])
"""The site policy (GPU classes) a train job reads to explain an out-of-memory failure."""


def alternatives(names):
    """Regex matching exactly one of the names (wildcard constraint); "a^" (none) if empty."""
    return "|".join(re.escape(n) for n in sorted(names)) or "a^"


wildcard_constraints:
    dataset=alternatives(REGISTRIES.datasets),
    model=alternatives(REGISTRIES.models),
    strategy=alternatives(REGISTRIES.strategies),
    variant=VARIANT_PATTERN,
    members=MEMBERS_PATTERN,


# ---- data and weights (data.smk, weights.smk) ---------------------------------------------
def split_list_flag(wildcards, input):
    """CLI flag passing the split list to the converter, if the policy uses one."""
    return f"--split-list {input.split_list}" if "split_list" in input.keys() else ""


def check_manual_drops():
    """Before any job runs: stop, with instructions for all of them, if a scheduled dataset's
    hand drop or local copy is missing (manual_raw and missing_local_copy are scheduled exactly
    for incomplete drops and missing or unusable local copies)."""
    from densebench.data.download import (
        RawDataError,
        local_copy_problem,
        manual_instructions,
    )

    def missing(rule):
        jobs = [j for j in workflow.dag.needrun_jobs() if j.rule.name == rule]
        return sorted({job.wildcards["dataset"] for job in jobs})

    cards = REGISTRIES.datasets
    texts = [
        manual_instructions(d, cards[d], Path(f"resources/raw/{d}"))
        for d in missing("manual_raw")
    ]
    problems = [
        local_copy_problem(d, cards[d], Path(PLAN.local_copies[d]))
        for d in missing("missing_local_copy")
    ]
    texts += [problem for problem in problems if problem]
    if texts:
        raise RawDataError("\n\n".join(texts))


def raw_flag(wildcards, output):
    """CLI flag naming where a dataset's raw files are read from: its local copy (config
    local_copies) or resources/raw/<dataset>/ (output-derived: not a rerun trigger; the files,
    the unpack job's inputs, are)."""
    local = PLAN.local_copies.get(wildcards.dataset)
    if local is not None:
        return f"--local {shlex.quote(local)}"
    return f"--raw resources/raw/{wildcards.dataset}"


def local_copy(wildcards, output):
    """A dataset's local copy (config local_copies), output-derived: not a rerun trigger."""
    return PLAN.local_copies[wildcards.dataset]


def identity_json(kind):
    """Param: what redoes a job of that kind (densebench.plan.Plan.identity): a rerun trigger."""
    return lambda wildcards: canonical(PLAN.identity(kind, wildcards))


def record_json(axis):
    """Param: the job's registry record, as canonical JSON (output-derived: not a rerun
    trigger; the identity param is)."""
    singular = {"datasets": "dataset", "models": "model"}[axis]
    return lambda wildcards, output: canonical(
        REGISTRIES.axis(axis)[wildcards[singular]]
    )


# ---- runs (train.smk, evaluate.smk) --------------------------------------------------------
def run_of(wildcards):
    """(dataset, model, strategy, variant) of a job's run ('' for a cell's own run)."""
    variant = wildcards.get("variant", "")
    return wildcards.dataset, wildcards.model, wildcards.strategy, variant


def run_inputs(wildcards):
    """A run's train or predict job inputs, once the run is known to fit a GPU class (the
    plan stops while the DAG is built, before any job, if not)."""
    try:
        PLAN.check_fits(run_of(wildcards))
    except PlanError as error:
        raise WorkflowError(str(error)) from None
    return PLAN.model_inputs(wildcards.dataset, wildcards.model)


def weights_flag(wildcards, model=None):
    """CLI flag pointing a job at its model's local weights, if it has any."""
    model = model or wildcards.model
    return f"--weights resources/weights/{model}" if PLAN.needs_weights(model) else ""


def run_resource(stage, name):
    """Resource callable (wildcards, attempt) of one field of a run's job resources."""

    def value(wildcards, attempt):
        return getattr(PLAN.resources(stage, run_of(wildcards), attempt), name)

    return value


def run_threads(stage):
    """Threads of a train or predict job: the CPUs it is given (its cpus_per_gpu)."""
    return lambda wildcards: PLAN.resources(stage, run_of(wildcards)).threads


def train_inputs(wildcards):
    """A train job's inputs: the run's (`run_inputs`) and, where a shared job trains or
    trained the run (densebench.plan.sharing), that job's staging folder (a temporary
    output: while the run's outputs are current, Snakemake does not remake it)."""
    inputs = run_inputs(wildcards)
    staging = PLAN.sharing.staging(run_of(wildcards))
    return {**inputs, "staged": staging} if staging else inputs


def staged_flag(wildcards, input):
    """CLI flag of a train job whose run a shared job trained (input-derived: not recorded)."""
    return f"--from-shared {input.staged}" if "staged" in input.keys() else ""


def shared_inputs(wildcards):
    """A shared training job's inputs (store, weights), once it is known to fit a GPU class."""
    try:
        PLAN.shared_resources(wildcards.dataset, wildcards.model, wildcards.members)
    except PlanError as error:
        raise WorkflowError(str(error)) from None
    return PLAN.model_inputs(wildcards.dataset, wildcards.model)


def shared_resource(name):
    """Resource callable (wildcards, attempt) of one field of a shared job's resources."""

    def value(wildcards, attempt):
        job = PLAN.shared_resources(
            wildcards.dataset, wildcards.model, wildcards.members, attempt
        )
        return getattr(job, name)

    return value


def shared_threads(wildcards):
    """Threads of a shared training job."""
    return PLAN.shared_resources(
        wildcards.dataset, wildcards.model, wildcards.members
    ).threads


def shared_runs(wildcards, input):
    """CLI flags of a shared job's members: each run's spec and folder (input-derived: not
    recorded). A shared job has no rerun trigger of its own: its output is temporary, and
    Snakemake remakes it when a member's `train` job reruns (on that run's identity); a
    trigger here would remake it for trained members whose cell-mate's identity changed.
    """
    runs = PLAN.sharing.members(wildcards.dataset, wildcards.model, wildcards.members)
    return " ".join(
        f"--spec {shlex.quote(PLAN.spec(run).to_json())} --out-dir {run_folder(*run)}"
        for run in runs
    )


def report_sharing():
    """Say which models' frozen-encoder runs train separately though sharing is on, and why."""
    if PLAN.sharing.enabled:
        for why in PLAN.sharing.refusals().values():
            logger.warning(f"train.share_frozen_backbone: {why}")


def attempt_number(wildcards, attempt):
    """The job's attempt, as a resource: the train job's checkpointing and GPU class follow it."""
    return attempt


def job_spec(wildcards, input):
    """The run spec of a job, as canonical JSON (input-derived: not recorded; the identities
    below decide reruns)."""
    return PLAN.spec(run_of(wildcards)).to_json()


def dataset_run_files(name):
    """Input function: one file of every run of the grid on the job's dataset."""
    return lambda wildcards: PLAN.dataset_run_files(wildcards.dataset, name)


def dataset_object_files(wildcards):
    """Input function: the object tallies of every run on the job's dataset, if it has
    instance labels (densebench.plan.Plan.object_run_files)."""
    return PLAN.object_run_files(wildcards.dataset)


def objects_flag(wildcards, input):
    """CLI flag listing a score job's object tallies, if it has any."""
    return f"--objects {' '.join(input.objects)}" if input.objects else ""


def objects_flags(wildcards, input, output):
    """CLI flags of a prediction that also writes the run's object tallies."""
    kind = PLAN.instance_kind(wildcards.dataset)
    return f"--instances {input.instances} --kind {kind} --objects-out {output.objects}"


def parent_dir(wildcards, output):
    """Folder of a job's first output."""
    return str(Path(output[0]).parent)


def output_stem(wildcards, output):
    """A job's first output without its extension (the stem its CLI writes formats to)."""
    return str(Path(output[0]).with_suffix(""))


# ---- report (report.smk, figures.smk) -------------------------------------------------------
def source_flags(wildcards, input):
    """CLI flags of a source's inputs (input-derived: not a rerun trigger; the files are)."""
    flags = []
    if "reproduced" in input.keys():
        flags.append(f"--reproduced {input.reproduced}")
    if "published" in input.keys():
        flags.append(f"--published '{canonical(PLAN.report.published_files())}'")
    return " ".join(flags)


def report_grid(wildcards):
    """The grid param of a source's products (densebench.plan.Plan.report_grid)."""
    return canonical(grid_record(PLAN.report.report_grid(wildcards.source)))


FIGURE_PATTERN = figure_kind_pattern(REGISTRIES.strategies)


def figure_grid(wildcards):
    """The grid param of a figure: with the models' sizes where its kind shows them."""
    sizes = figure_product(wildcards.kind).sizes
    return canonical(
        grid_record(PLAN.report.report_grid(wildcards.source, sizes), sizes)
    )


def figure_field(name):
    """Report field (category, subcategory) of a figure, from the product table."""
    return lambda wildcards: getattr(figure_product(wildcards.kind), name)


def figure_labels(wildcards):
    """The report labels of a figure (a heat map's strategy among them)."""
    return figure_product(wildcards.kind).labels(wildcards.kind)


def figure_options(wildcards):
    """The CLI options of a figure's kind (e.g. Figure 3's metric): a rerun trigger."""
    return figure_product(wildcards.kind).cli_options(config)


def figure_tables(wildcards):
    """The report tables a figure's kind is drawn from (their CSV), inputs of its job."""
    root = REPORT_DIR.format(source=wildcards.source)
    return [f"{root}/tables/{k}.csv" for k in figure_product(wildcards.kind).tables]


def source_run_files(name):
    """Input function: one file of every run of the grid on every dataset, for the sources
    holding our runs (none for published)."""
    return lambda wildcards: (
        [f for d in PLAN.datasets for f in PLAN.dataset_run_files(d, name)]
        if wildcards.source in OUR_SOURCES
        else []
    )


def cards_json(wildcards):
    """The card fields of an axis per record of the source's grid (an edit of another field
    re-renders no card)."""
    axis = f"{wildcards.axis}s"
    return canonical(PLAN.report.cards(axis, wildcards.source, card_fields(axis)))


# ---- ablations (ablations.smk) -------------------------------------------------------------
ABLATIONS = PLAN.ablations


def ablation_grid_json(name):
    """The order and display names of an ablation's figure."""
    return canonical(grid_record(PLAN.report.ablation_grid(name)))


def similarity_resource(name):
    """Resource callable of the token-similarity job: a prediction's (it runs the test images
    through the model), of the analysis' first strategy."""
    first = ABLATIONS["token_similarity"]["strategies"][0]

    def value(wildcards, attempt):
        run = (wildcards.dataset, wildcards.model, first, "")
        return getattr(PLAN.resources("predict", run, attempt), name)

    return value


QUALITATIVE_MODEL = ABLATIONS["qualitative"]["models"][0]


def baseline_pfms_table(wildcards):
    """The results source table whose PFMs the UNet baseline is shown beside."""
    source = ABLATIONS["baseline_unet"]["compare_with"]
    return f"{REPORT_DIR.format(source=source)}/results.csv"
