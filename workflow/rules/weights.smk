# Weights stage: each pretrained model's snapshot, fetched once on the login node (local
# rules), and an access preflight that downloads nothing. The token comes from HF_TOKEN in the
# driver's environment and is read by huggingface_hub itself: it is never a parameter, never
# on a command line and never logged. (Not an `envvars:` declaration: that would make every
# run, the demo and dry-runs included, fail without a token.) Jobs load offline.


rule download_weights:
    output:
        weights=directory("resources/weights/{model}"),
    log:
        "logs/download_weights/{model}.log",
    localrule: True
    conda:
        "../../envs/train.yaml"
    params:
        identity=weights_identity_json,
        record=model_json,
    message:
        "Downloading the weights of {wildcards.model}"
    shell:
        "densebench weights --model {wildcards.model} --record {params.record:q}"
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
        models=preflight_models_json(),
    message:
        "Checking hub access to the weights of every model (nothing is downloaded)"
    shell:
        "densebench preflight --models {params.models:q} --out {output.table} > {log} 2>&1"
