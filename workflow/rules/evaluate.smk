# Evaluate stage: per-image confusion matrices (written by each training job) -> metrics + CIs.
# Scoring is one job per dataset: every run of a dataset is bootstrapped with the same seed
# (the authors' practice), and the grid's DAG stays small.


rule score:
    input:
        confusions=dataset_run_files("confusion.npz"),
    output:
        scores="results/scores/{dataset}.csv",
    log:
        "logs/score/{dataset}.log",
    conda:
        "../../envs/densebench.yaml"
    params:
        replicates=config["evaluate"]["bootstrap_replicates"],
        seed=config["evaluate"]["bootstrap_seed"],
        definitions=SCORING["definitions"],
        background="--exclude-background" if SCORING["exclude_background"] else "",
    message:
        "Metrics and bootstrap CIs of every run on {wildcards.dataset}"
    shell:
        "densebench score --replicates {params.replicates} --seed {params.seed}"
        " --definitions {params.definitions} {params.background}"
        " --out {output.scores} {input.confusions} > {log} 2>&1"
