# Weights stage: each pretrained model's snapshot, fetched once on the login node.


rule download_weights:
    output:
        weights=directory("resources/weights/{model}"),
    log:
        "logs/download_weights/{model}.log",
    localrule: True
    conda:
        "../../envs/densebench.yaml"
    params:
        record=model_json,
    message:
        "Downloading the weights of {wildcards.model}"
    shell:
        "densebench weights --model {wildcards.model} --record {params.record:q}"
        " --out {output.weights} > {log} 2>&1"
