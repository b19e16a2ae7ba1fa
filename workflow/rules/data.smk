# Data stage: raw files (generated, downloaded or dropped by hand) -> validated zarr store.


rule synthesize_raw:
    output:
        raw=directory("resources/raw/{dataset}"),
    log:
        "logs/synthesize_raw/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(SYNTHETIC),
    conda:
        "../../envs/densebench.yaml"
    params:
        card=card_json,
    message:
        "Generating the synthetic raw files of {wildcards.dataset}"
    shell:
        "densebench synthesize --card {params.card:q} --out {output.raw} > {log} 2>&1"


rule download_raw:
    output:
        raw=directory("resources/raw/{dataset}"),
    log:
        "logs/download_raw/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(DOWNLOADED),
    localrule: True
    conda:
        "../../envs/densebench.yaml"
    params:
        card=card_json,
    message:
        "Downloading the raw files of {wildcards.dataset}"
    shell:
        "densebench download --dataset {wildcards.dataset} --card {params.card:q}"
        " --out {output.raw} > {log} 2>&1"


rule convert:
    input:
        raw="resources/raw/{dataset}",
    output:
        store=directory("resources/datasets/{dataset}.zarr"),
    log:
        "logs/convert/{dataset}.log",
    conda:
        "../../envs/densebench.yaml"
    params:
        card=card_json,
        policy=config["data"]["split_policy"],
        seed=config["data"]["split_seed"],
        fractions=" ".join(str(f) for f in config["data"]["split_fractions"]),
    message:
        "Converting {wildcards.dataset} into a validated zarr store"
    shell:
        "densebench convert --dataset {wildcards.dataset} --card {params.card:q}"
        " --raw {input.raw} --out {output.store} --split-policy {params.policy}"
        " --seed {params.seed} --fractions {params.fractions} > {log} 2>&1"
