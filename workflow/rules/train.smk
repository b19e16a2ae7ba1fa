# Train stage: one job per (dataset, model, strategy). The job trains, then predicts the test
# split with the selected checkpoint into per-image confusion matrices (as the authors' training
# script tests once at the end), so the backbone is loaded once per run. It resumes from last.pt,
# which is deliberately not an output, so Snakemake keeps it across a killed attempt.


rule train:
    input:
        unpack(run_inputs),
    output:
        best=f"{RUN_DIR}/best.pt",
        history=f"{RUN_DIR}/train_log.csv",
        provenance=f"{RUN_DIR}/provenance.json",
        confusion=f"{RUN_DIR}/confusion.npz",
    log:
        "logs/train/{dataset}/{model}/{strategy}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{model}/{strategy}.tsv"
    conda:
        "../../envs/densebench.yaml"
    threads: 1
    params:
        spec=run_spec,
        weights=weights_flag,
        out_dir=parent_dir,
    message:
        "Training {wildcards.model} / {wildcards.strategy} on {wildcards.dataset}, then predicting its test split"
    shell:
        "densebench train --spec {params.spec:q} --store {input.store}"
        " --out-dir {params.out_dir} --confusion {output.confusion} {params.weights}"
        " --threads {threads} > {log} 2>&1"
