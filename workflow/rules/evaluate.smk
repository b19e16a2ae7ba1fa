# Evaluate stage: each trained run predicts its test split into per-image confusion matrices
# (from best.pt: a prediction change never retrains), then metrics + bootstrap CIs.
# Scoring is one job per dataset: every run of a dataset is bootstrapped with the same seed
# (the authors' practice), and the grid's DAG stays small.


rule predict:
    input:
        unpack(run_inputs),
        best=f"{RUN_DIR}/best.pt",
    output:
        confusion=f"{RUN_DIR}/confusion.npz",
    log:
        "logs/predict/{dataset}/{model}/{strategy}.log",
    benchmark:
        "logs/benchmarks/predict/{dataset}/{model}/{strategy}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: run_threads("predict")
    resources:
        gpu=run_resource("predict", "gpu"),
        gpu_model=run_resource("predict", "gpu_model"),
        gres=run_resource("predict", "gres"),
        constraint=run_resource("predict", "constraint"),
        gpu_note=run_resource("predict", "gpu_note"),
        attempt=attempt_number,
        cpus_per_gpu=run_resource("predict", "cpus_per_gpu"),
        mem_mb=run_resource("predict", "mem_mb"),
        runtime=run_resource("predict", "runtime"),
    params:
        identity=identity_json("prediction"),
        spec=job_spec,
        weights=weights_flag,
        objects="",
    message:
        "Predicting the test split of {wildcards.model} / {wildcards.strategy} on {wildcards.dataset}"
        " ({resources.gpu_note}, {resources.cpus_per_gpu} CPUs, {resources.mem_mb} MB, {resources.runtime} min)"
    shell:
        "densebench predict --spec {params.spec:q} --checkpoint {input.best}"
        " --store {input.store} --out {output.confusion} {params.weights} {params.objects}"
        " --threads {threads} > {log} 2>&1"


# A variant run's predictions (densebench.variants), in its folder `<strategy>__<variant>`.
use rule predict as predict_variant with:
    input:
        unpack(run_inputs),
        best=f"{VARIANT_RUN_DIR}/best.pt",
    output:
        confusion=f"{VARIANT_RUN_DIR}/confusion.npz",
    log:
        "logs/predict/{dataset}/{model}/{strategy}__{variant}.log",
    benchmark:
        "logs/benchmarks/predict/{dataset}/{model}/{strategy}__{variant}.tsv"
    message:
        "Predicting the test split of {wildcards.model} / {wildcards.strategy}"
        " ({wildcards.variant}) on {wildcards.dataset}"
        " ({resources.gpu_note}, {resources.cpus_per_gpu} CPUs, {resources.mem_mb} MB, {resources.runtime} min)"


# On a dataset with instance labels, the same prediction also writes the run's object tallies
# (nucleus instances, gland objects): deleting objects.npz re-predicts that run only.
use rule predict as predict_with_objects with:
    input:
        unpack(run_inputs),
        best=f"{RUN_DIR}/best.pt",
        instances="resources/datasets/{dataset}.instances.zarr",
    output:
        confusion=f"{RUN_DIR}/confusion.npz",
        objects=f"{RUN_DIR}/objects.npz",
    wildcard_constraints:
        dataset=alternatives(PLAN.instance_datasets()),
    params:
        identity=identity_json("objects"),
        spec=job_spec,
        weights=weights_flag,
        objects=objects_flags,


ruleorder: predict_with_objects > predict


rule score:
    input:
        confusions=dataset_run_files("confusion.npz"),
        objects=dataset_object_files,
    output:
        scores="results/scores/{dataset}.csv",
    log:
        "logs/score/{dataset}.log",
    conda:
        "../../envs/report.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        replicates=SCORING["replicates"],
        seed=SCORING["seed"],
        definitions=SCORING["definitions"],
        background="--exclude-background" if SCORING["exclude_background"] else "",
        objects=objects_flag,
    message:
        "Metrics and bootstrap CIs of every run on {wildcards.dataset} (no GPU)"
    shell:
        "densebench score --replicates {params.replicates} --seed {params.seed}"
        " --definitions {params.definitions} {params.background}"
        " --out {output.scores} {input.confusions} {params.objects} > {log} 2>&1"
