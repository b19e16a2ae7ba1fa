# Train stage: one job per (dataset, model, strategy). The job resumes from last.pt, which is
# deliberately not an output, so Snakemake keeps it across a killed attempt.


rule train:
    input:
        unpack(run_inputs),
    output:
        best=f"{RUN_DIR}/best.pt",
        history=f"{RUN_DIR}/train_log.csv",
        provenance=f"{RUN_DIR}/provenance.json",
    params:
        spec=run_spec,
        weights=weights_flag,
        out_dir=parent_dir,
    threads: 1
    log:
        "logs/train/{dataset}/{model}/{strategy}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{model}/{strategy}.tsv"
    conda:
        "../../envs/densebench.yaml"
    message:
        "Training {wildcards.model} / {wildcards.strategy} on {wildcards.dataset}"
    shell:
        "densebench train --spec {params.spec:q} --store {input.store}"
        " --out-dir {params.out_dir} {params.weights} --threads {threads} > {log} 2>&1"
