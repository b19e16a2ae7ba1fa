# Evaluate stage: test-split predictions -> per-image confusion matrices -> metrics + CIs.
# Scoring is one job per dataset: every run of a dataset is bootstrapped with the same seed
# (the authors' practice), and the grid's DAG stays small.


rule predict:
    input:
        unpack(run_inputs),
        checkpoint=f"{RUN_DIR}/best.pt",
    output:
        confusion=f"{RUN_DIR}/confusion.npz",
    params:
        weights=weights_flag,
    threads: 1
    log:
        "logs/predict/{dataset}/{model}/{strategy}.log",
    conda:
        "../../envs/densebench.yaml"
    message:
        "Predicting the test split of {wildcards.dataset} with {wildcards.model} / {wildcards.strategy}"
    shell:
        "densebench predict --checkpoint {input.checkpoint} --store {input.store}"
        " --out {output.confusion} {params.weights} --threads {threads} > {log} 2>&1"


rule score:
    input:
        confusions=dataset_run_files("confusion.npz"),
    output:
        scores="results/scores/{dataset}.csv",
    params:
        replicates=config["evaluate"]["bootstrap_replicates"],
        seed=config["evaluate"]["bootstrap_seed"],
    log:
        "logs/score/{dataset}.log",
    conda:
        "../../envs/densebench.yaml"
    message:
        "Metrics and bootstrap CIs of every run on {wildcards.dataset}"
    shell:
        "densebench score --replicates {params.replicates} --seed {params.seed}"
        " --out {output.scores} {input.confusions} > {log} 2>&1"
