# Train stage: one job per (dataset, model, strategy), writing the trainable state of the selected
# epoch (best.pt), the per-epoch log and the run's provenance. A killed job resumes from last.pt
# (deliberately not an output, so Snakemake keeps it across attempts), which the job removes once
# training is complete. The job reruns only when the run's training identity changes
# (densebench.identity): editing a record's description or an execution setting retrains nothing.
# Training and prediction are separate cluster jobs, not one group job: Snakemake removes the
# outputs of every job of a failed group, so a group killed while predicting would lose best.pt
# and retrain.


rule train:
    input:
        unpack(train_inputs),
    output:
        best=f"{RUN_DIR}/best.pt",
        history=f"{RUN_DIR}/train_log.csv",
        provenance=f"{RUN_DIR}/provenance.json",
    log:
        "logs/train/{dataset}/{model}/{strategy}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{model}/{strategy}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: run_threads("train")
    resources:
        gpu=run_resource("train", "gpu"),
        gpu_model=run_resource("train", "gpu_model"),
        gres=run_resource("train", "gres"),
        constraint=run_resource("train", "constraint"),
        gpu_note=run_resource("train", "gpu_note"),
        attempt=attempt_number,
        cpus_per_gpu=run_resource("train", "cpus_per_gpu"),
        mem_mb=run_resource("train", "mem_mb"),
        runtime=run_resource("train", "runtime"),
    params:
        identity=identity_json("training"),
        spec=job_spec,
        weights=weights_flag,
        out_dir=parent_dir,
        site=SITE_JSON,
        staged=staged_flag,
    message:
        "Training {wildcards.model} / {wildcards.strategy} on {wildcards.dataset}"
        " ({resources.gpu_note}, {resources.cpus_per_gpu} CPUs, {resources.mem_mb} MB, {resources.runtime} min)"
    shell:
        "densebench train --spec {params.spec:q} --store {input.store}"
        " --out-dir {params.out_dir} {params.weights} --threads {threads}"
        " --attempt {resources.attempt} --site {params.site:q} {params.staged} > {log} 2>&1"


# The frozen-encoder runs of a (dataset, model[, variant]) that need training, trained together
# on one encoder forward pass per batch (train.share_frozen_backbone; densebench.plan.sharing
# decides the members when the workflow starts). Each finished run lands in the temporary
# staging folder, from which the run's own `train` job takes it, so a run's outputs always come
# from `train`. Each member's last.pt stays in its run folder: a killed job resumes every run.
rule train_shared:
    input:
        unpack(shared_inputs),
    output:
        staged=temp(directory(f"{SHARED_DIR}/{{members}}")),
    log:
        "logs/train_shared/{dataset}/{model}/{members}.log",
    benchmark:
        "logs/benchmarks/train_shared/{dataset}/{model}/{members}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: shared_threads
    resources:
        gpu=shared_resource("gpu"),
        gpu_model=shared_resource("gpu_model"),
        gres=shared_resource("gres"),
        constraint=shared_resource("constraint"),
        gpu_note=shared_resource("gpu_note"),
        attempt=attempt_number,
        cpus_per_gpu=shared_resource("cpus_per_gpu"),
        mem_mb=shared_resource("mem_mb"),
        runtime=shared_resource("runtime"),
    params:
        runs=shared_runs,
        weights=weights_flag,
        site=SITE_JSON,
    message:
        "Training {wildcards.model} / {wildcards.members} on {wildcards.dataset} on one encoder forward"
        " ({resources.gpu_note}, {resources.cpus_per_gpu} CPUs, {resources.mem_mb} MB, {resources.runtime} min)"
    shell:
        "densebench train {params.runs} --store {input.store} --shared-out {output.staged}"
        " {params.weights} --threads {threads} --attempt {resources.attempt}"
        " --site {params.site:q} > {log} 2>&1"


# A variant run of a cell (another input size or training seed, densebench.variants): the same
# job in the folder `<strategy>__<variant>`.
use rule train as train_variant with:
    output:
        best=f"{VARIANT_RUN_DIR}/best.pt",
        history=f"{VARIANT_RUN_DIR}/train_log.csv",
        provenance=f"{VARIANT_RUN_DIR}/provenance.json",
    log:
        "logs/train/{dataset}/{model}/{strategy}__{variant}.log",
    benchmark:
        "logs/benchmarks/train/{dataset}/{model}/{strategy}__{variant}.tsv"
    message:
        "Training {wildcards.model} / {wildcards.strategy} ({wildcards.variant}) on {wildcards.dataset}"
        " ({resources.gpu_note}, {resources.cpus_per_gpu} CPUs, {resources.mem_mb} MB, {resources.runtime} min)"
