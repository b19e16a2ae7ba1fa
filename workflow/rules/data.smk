# Data stage: raw files (downloaded, dropped by hand, or generated) -> verified and unpacked ->
# converted -> validated zarr store, one per dataset.
# A hand drop (registration-only datasets, Drive folders too large for gdown) is never the output
# of a rule, only an input of unpack_raw, so no flag (-F, --forcerun, --delete-all-output) can
# delete it. While it is incomplete, unpack_raw waits on a marker that only manual_raw "makes",
# and the onstart check stops the run before any job with the instructions.
# A local copy (config local_copies: a folder or an archive anywhere) replaces the download or
# the hand drop: the same, an input of unpack_raw only, read and never changed; while it is
# missing (or not shaped like the card's sources), unpack_raw waits on a marker only
# missing_local_copy "makes", and the onstart check stops the run. No identity holds its path.
# Each rule's `identity` param is what redoes its product (densebench.identity); the whole card
# reaches the job through an output-derived param, which Snakemake does not record, so editing a
# card's description (notes, display name) redoes nothing.


rule synthesize_raw:
    output:
        unpacked=directory("resources/unpacked/{dataset}"),
    log:
        "logs/synthesize_raw/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PLAN.datasets_with_access("synthetic")),
    conda:
        "../../envs/data.yaml"
    params:
        identity=identity_json("store"),
        card=record_json("datasets"),
    message:
        "Generating the synthetic raw files of {wildcards.dataset}"
    shell:
        "densebench synthesize --card {params.card:q} --out {output.unpacked} > {log} 2>&1"


rule download_raw:
    output:
        raw=directory("resources/raw/{dataset}"),
    log:
        "logs/download_raw/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PLAN.downloaded()),
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        identity=identity_json("sources"),
        card=record_json("datasets"),
    message:
        "Downloading the raw files of {wildcards.dataset}"
    shell:
        "densebench download --dataset {wildcards.dataset} --card {params.card:q}"
        " --out {output.raw} > {log} 2>&1"


rule manual_raw:
    output:
        missing="resources/raw/{dataset}.missing",
    log:
        "logs/manual_raw/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PLAN.hand_dropped()),
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        card=record_json("datasets"),
    message:
        "{wildcards.dataset} needs a manual download: see the instructions below"
    shell:
        "densebench manual-check --dataset {wildcards.dataset} --card {params.card:q}"
        " --raw resources/raw/{wildcards.dataset} 2>&1 | tee {log}; exit 1"


rule missing_local_copy:
    output:
        missing="resources/raw/{dataset}.missing_local_copy",
    log:
        "logs/missing_local_copy/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PLAN.local_copies),
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        card=record_json("datasets"),
        local=local_copy,
    message:
        "{wildcards.dataset}: its local copy (config local_copies) is missing or not its card's"
    shell:
        "densebench local-check --dataset {wildcards.dataset} --card {params.card:q}"
        " --local {params.local:q} 2>&1 | tee {log}; exit 1"


rule unpack_raw:
    input:
        unpack(lambda wildcards: PLAN.raw_inputs(wildcards.dataset)),
    output:
        unpacked=directory("resources/unpacked/{dataset}"),
    log:
        "logs/unpack_raw/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PLAN.datasets_with_access("open", "manual")),
    conda:
        "../../envs/data.yaml"
    params:
        identity=identity_json("sources"),
        card=record_json("datasets"),
        raw=raw_flag,
    message:
        "Verifying and unpacking the raw files of {wildcards.dataset}"
    shell:
        "densebench unpack --dataset {wildcards.dataset} --card {params.card:q}"
        " {params.raw} --out {output.unpacked} > {log} 2>&1"


rule download_split_list:
    output:
        listing="resources/splits/{dataset}.json",
    log:
        "logs/download_split_list/{dataset}.log",
    localrule: True
    conda:
        "../../envs/data.yaml"
    params:
        identity=identity_json("split_list"),
        card=record_json("datasets"),
    message:
        "Downloading the authors' split list of {wildcards.dataset}"
    shell:
        "densebench split-list --dataset {wildcards.dataset} --card {params.card:q}"
        " --out {output.listing} > {log} 2>&1"


rule convert:
    input:
        unpack(lambda wildcards: PLAN.convert_inputs(wildcards.dataset)),
    output:
        store=directory("resources/datasets/{dataset}.zarr"),
    log:
        "logs/convert/{dataset}.log",
    conda:
        "../../envs/data.yaml"
    params:
        identity=identity_json("store"),
        card=record_json("datasets"),
        policy=config["data"]["split_policy"],
        seed=config["data"]["split_seed"],
        fractions=" ".join(str(f) for f in config["data"]["split_fractions"]),
        split_list=split_list_flag,
    message:
        "Converting {wildcards.dataset} into a validated zarr store"
    shell:
        "densebench convert --dataset {wildcards.dataset} --card {params.card:q}"
        " --raw {input.unpacked} --out {output.store} --split-policy {params.policy}"
        " --seed {params.seed} --fractions {params.fractions} {params.split_list}"
        " > {log} 2>&1"


# Ground-truth instances (nuclei, glands) of a dataset whose card has `instance_labels`: their
# own product, from the same converter, following the semantic store's samples; the card's
# `instance_labels` is no part of the store's identity, so adding them rebuilds no store.
rule convert_instances:
    input:
        unpack(lambda wildcards: PLAN.instance_inputs(wildcards.dataset)),
    output:
        instances=directory("resources/datasets/{dataset}.instances.zarr"),
    log:
        "logs/convert_instances/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(PLAN.instance_datasets()),
    conda:
        "../../envs/data.yaml"
    params:
        identity=identity_json("instances"),
        card=record_json("datasets"),
    message:
        "Writing the ground-truth instances of {wildcards.dataset}"
    shell:
        "densebench convert-instances --dataset {wildcards.dataset} --card {params.card:q}"
        " --raw {input.unpacked} --store {input.store} --out {output.instances} > {log} 2>&1"
