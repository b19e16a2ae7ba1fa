# Weights stage: each pretrained model's snapshot, fetched once on the login node (local
# rules), and an access preflight that downloads nothing. The token comes from HF_TOKEN in the
# driver's environment and is read by huggingface_hub itself: it is never a parameter, never
# on a command line and never logged. (Not an `envvars:` declaration: that would make every
# run, the demo and dry-runs included, fail without a token.) Jobs load offline.
# The demo's `weights: pretrain` models get the same snapshot folder from pretrain_weights
# (densebench.models.pretrain, a few seconds on the CPU, nothing downloaded).


rule download_weights:
    output:
        weights=directory("resources/weights/{model}"),
    log:
        "logs/download_weights/{model}.log",
    wildcard_constraints:
        model=alternatives(PLAN.weights_models(pretrain=False)),
    localrule: True
    conda:
        "../../envs/train.yaml"
    params:
        identity=identity_json("weights"),
        record=record_json("models"),
    message:
        "Downloading the weights of {wildcards.model}"
    shell:
        "densebench weights --model {wildcards.model} --record {params.record:q}"
        " --out {output.weights} > {log} 2>&1"


# The snapshot of a `weights: pretrain` demo model: its encoder pretrained on fresh synthetic
# images (not the demo datasets'), reproducibly; redone when its architecture or `pretrain`
# settings change (identity "weights").
rule pretrain_weights:
    output:
        weights=directory("resources/weights/{model}"),
    log:
        "logs/pretrain_weights/{model}.log",
    benchmark:
        "logs/benchmarks/pretrain_weights/{model}.tsv"
    wildcard_constraints:
        model=alternatives(PLAN.weights_models(pretrain=True)),
    conda:
        "../../envs/train.yaml"
    params:
        identity=identity_json("weights"),
        record=record_json("models"),
    message:
        "Pretraining the demo backbone {wildcards.model} on synthetic images"
    shell:
        "densebench pretrain --model {wildcards.model} --record {params.record:q}"
        " --out {output.weights} > {log} 2>&1"


rule preflight:
    output:
        table="results/weights/preflight.tsv",
    log:
        "logs/preflight/preflight.log",
    localrule: True
    conda:
        "../../envs/train.yaml"
    params:
        models=canonical({m: REGISTRIES.models[m] for m in PLAN.models}),
    message:
        "Checking hub access to the weights of every model (nothing is downloaded)"
    shell:
        "densebench preflight --models {params.models:q} --out {output.table} > {log} 2>&1"
