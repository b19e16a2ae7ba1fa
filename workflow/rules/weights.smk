# Weights stage: each pretrained model's snapshot, fetched once on the login node.


rule download_weights:
    output:
        weights=directory("resources/weights/{model}"),
    params:
        record=model_json,
    log:
        "logs/download_weights/{model}.log",
    localrule: True
    conda:
        "../../envs/densebench.yaml"
    message:
        "Downloading the weights of {wildcards.model}"
    shell:
        "densebench weights --model {wildcards.model} --record {params.record:q}"
        " --out {output.weights} > {log} 2>&1"
