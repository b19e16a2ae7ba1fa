# PFM-DenseBench: dense prediction with pathology foundation models, as a Snakemake workflow.
# Results-path convention: results/runs/{dataset}/{model}/{strategy}/<file>, the results table
# results/tables/results.csv, each results source's report under results/report/<source>/,
# logs under logs/<rule>/.
# Default config: the paper grid (config/config.yaml). The demo: --configfile config/demo.yaml.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


# `snakemake --report results/report.html`: the workflow's description (captions per product).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


# The job image (containers/) of every rule under --sdm apptainer (set before any rule).
container: config["container"]


include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/ablations.smk"


onstart:
    check_manual_drops()
    report_sharing()


rule all:
    default_target: True
    input:
        PLAN.final_outputs(),
        PLAN.ablation_targets(),


# Every figure and table of one results source (config results_source), nothing else:
# `snakemake --cores 2 report --config results_source=published` trains nothing.
rule report:
    input:
        PLAN.report.report_files(config["results_source"]),


# The LoRA-rank ablation (config ablations.lora_rank): its runs, scores and Figure 5.
rule ablation_lora_rank:
    input:
        PLAN.ablation_targets("lora_rank"),


# Frozen runs trained and tested at each input size S (ablations.input_size) and their figure.
rule ablation_input_size:
    input:
        PLAN.ablation_targets("input_size"),


# The authors' UNet from scratch beside the PFMs (ablations.baseline_unet): table and figure.
rule baseline_unet:
    input:
        PLAN.ablation_targets("baseline_unet"),


# Token similarity of the last layer's patch tokens per strategy (ablations.token_similarity).
rule token_similarity:
    input:
        PLAN.ablation_targets("token_similarity"),


# The qualitative figure per dataset (ablations.qualitative).
rule qualitative:
    input:
        PLAN.ablation_targets("qualitative"),
