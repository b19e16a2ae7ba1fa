# PFM-DenseBench: dense prediction with pathology foundation models, as a Snakemake workflow.
# Results-path convention: results/runs/{dataset}/{model}/{strategy}/<file>; tables under
# results/tables/, figures under results/figures/, logs under logs/<rule>/.
# Default config: the paper grid (config/config.yaml). The demo: --configfile config/demo.yaml.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"


# The job image (containers/) of every rule under --sdm apptainer (set before any rule).
container: config["container"]


include: "workflow/rules/data.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


onstart:
    check_manual_drops()


rule all:
    default_target: True
    input:
        final_outputs(),


rule report:
    input:
        summary_files(config["results_source"]),
