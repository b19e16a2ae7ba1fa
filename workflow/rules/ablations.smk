# Ablations (issue 12): extra runs through the same train / predict path as the grid (their
# strategies are registry records, e.g. lora_r4 ... lora_r128, full), scored together, each
# ablation its own target group; in `all` only when its config `ablations.<name>.enabled`.


rule ablation_scores:
    input:
        confusions=lambda wildcards: PLAN.analysis_run_files(
            wildcards.ablation, "confusion.npz"
        ),
    output:
        scores="results/ablations/{ablation}/scores.csv",
    log:
        "logs/ablation_scores/{ablation}.log",
    wildcard_constraints:
        ablation="|".join([*ABLATIONS, "seeds"]),
    conda:
        "../../envs/report.yaml"
    params:
        replicates=SCORING["replicates"],
        seed=SCORING["seed"],
        definitions=SCORING["definitions"],
        background="--exclude-background" if SCORING["exclude_background"] else "",
    message:
        "Metrics and bootstrap CIs of the {wildcards.ablation} ablation's runs (no GPU)"
    shell:
        "densebench score --replicates {params.replicates} --seed {params.seed}"
        " --definitions {params.definitions} {params.background} --variants"
        " --out {output.scores} {input.confusions} > {log} 2>&1"


rule figure5:
    input:
        scores="results/ablations/lora_rank/scores.csv",
    output:
        png=report(
            "results/ablations/lora_rank/figure5.png",
            caption="../report/figure5.rst",
            category="Ablations",
            labels={"figure": "Figure 5: LoRA rank"},
        ),
        pdf="results/ablations/lora_rank/figure5.pdf",
    log:
        "logs/figure5/figure5.log",
    conda:
        "../../envs/report.yaml"
    params:
        grid=ablation_grid_json("lora_rank"),
        ranks=canonical(PLAN.report.lora_ranks()),
    message:
        "Rendering Figure 5 (Mean Dice per LoRA rank, full fine-tuning as reference; no GPU)"
    shell:
        "densebench ablation-figure lora_rank --scores {input.scores} --grid {params.grid:q}"
        " --ranks {params.ranks:q} --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule token_similarity_run:
    input:
        unpack(lambda w: PLAN.analysis_inputs("token_similarity", w.dataset, w.model)),
    output:
        table="results/ablations/token_similarity/{dataset}/{model}.csv",
        maps="results/ablations/token_similarity/{dataset}/{model}.npz",
    log:
        "logs/token_similarity/{dataset}/{model}.log",
    conda:
        "../../envs/train.yaml"
    resources:
        gpu=similarity_resource("gpu"),
        mem_mb=similarity_resource("mem_mb"),
        runtime=similarity_resource("runtime"),
    params:
        images=config["ablations"]["token_similarity"]["images"],
        queries=config["ablations"]["token_similarity"]["queries"],
        weights=weights_flag,
    message:
        "Token similarity of the {wildcards.model} runs on {wildcards.dataset}"
    shell:
        "densebench token-similarity --store {input.store} {params.weights}"
        " --images {params.images} --queries {params.queries}"
        " --out {output.table} --maps {output.maps} {input.best} > {log} 2>&1"


rule token_similarity_figure:
    input:
        tables=PLAN.similarity_tables(),
        scores="results/ablations/token_similarity/scores.csv",
    output:
        png=report(
            "results/ablations/token_similarity/figure.png",
            caption="../report/token_similarity.rst",
            category="Ablations",
            labels={"figure": "token similarity"},
        ),
        pdf="results/ablations/token_similarity/figure.pdf",
    log:
        "logs/token_similarity_figure/figure.log",
    conda:
        "../../envs/report.yaml"
    params:
        grid=ablation_grid_json("token_similarity"),
    message:
        "Rendering token similarity against the Mean Dice gain over frozen (no GPU)"
    shell:
        "densebench ablation-figure token_similarity --scores {input.scores}"
        " --similarity {input.tables} --grid {params.grid:q}"
        " --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule qualitative_run:
    input:
        unpack(
            lambda w: PLAN.analysis_inputs("qualitative", w.dataset, QUALITATIVE_MODEL)
        ),
    output:
        predictions="results/ablations/qualitative/{dataset}.npz",
    log:
        "logs/qualitative/{dataset}.log",
    conda:
        "../../envs/train.yaml"
    params:
        images=config["ablations"]["qualitative"]["images"],
        weights=lambda wildcards: weights_flag(wildcards, QUALITATIVE_MODEL),
    message:
        "Predicting the qualitative figure's test images of {wildcards.dataset}"
    shell:
        "densebench qualitative --store {input.store} {params.weights}"
        " --images {params.images} --out {output.predictions} {input.best} > {log} 2>&1"


rule qualitative_figure:
    input:
        predictions="results/ablations/qualitative/{dataset}.npz",
    output:
        png=report(
            "results/ablations/qualitative/{dataset}.png",
            caption="../report/qualitative.rst",
            category="Ablations",
            labels={"figure": "qualitative", "dataset": "{dataset}"},
        ),
        pdf="results/ablations/qualitative/{dataset}.pdf",
    log:
        "logs/qualitative_figure/{dataset}.log",
    conda:
        "../../envs/report.yaml"
    params:
        grid=ablation_grid_json("qualitative"),
        classes=lambda wildcards: canonical(
            REGISTRIES.datasets[wildcards.dataset]["classes"]
        ),
    message:
        "Rendering the qualitative figure of {wildcards.dataset} (no GPU)"
    shell:
        "densebench ablation-figure qualitative --predictions {input.predictions}"
        " --grid {params.grid:q} --classes {params.classes:q}"
        " --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule input_size_figure:
    input:
        scores="results/ablations/input_size/scores.csv",
    output:
        png=report(
            "results/ablations/input_size/figure.png",
            caption="../report/input_size.rst",
            category="Ablations",
            labels={"figure": "input size"},
        ),
        pdf="results/ablations/input_size/figure.pdf",
    log:
        "logs/input_size_figure/figure.log",
    conda:
        "../../envs/report.yaml"
    params:
        grid=ablation_grid_json("input_size"),
    message:
        "Rendering Mean Dice against the input size (no GPU)"
    shell:
        "densebench variant-report input_size --scores {input.scores} --grid {params.grid:q}"
        " --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule seed_spread:
    input:
        scores="results/ablations/seeds/scores.csv",
    output:
        multiext(f"{REPORT_DIR}/tables/seed_spread", ".csv", ".md", ".tex"),
    log:
        "logs/seed_spread/{source}.log",
    wildcard_constraints:
        source="|".join(OUR_SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
        stem=output_stem,
    message:
        "Tabulating the spread across training seeds beside the bootstrap CI ({wildcards.source}; no GPU)"
    shell:
        "densebench variant-report seed_spread --scores {input.scores} --grid {params.grid:q}"
        " --stem {params.stem} > {log} 2>&1"


rule baseline_unet_report:
    input:
        scores="results/ablations/baseline_unet/scores.csv",
        pfms=baseline_pfms_table,
    output:
        table=multiext("results/ablations/baseline_unet/table", ".csv", ".md", ".tex"),
        png=report(
            "results/ablations/baseline_unet/figure.png",
            caption="../report/baseline_unet.rst",
            category="Ablations",
            labels={"figure": "UNet baseline"},
        ),
        pdf="results/ablations/baseline_unet/figure.pdf",
    log:
        "logs/baseline_unet_report/report.log",
    conda:
        "../../envs/report.yaml"
    params:
        grid=canonical(grid_record(PLAN.report.baseline_grid())),
        stem=output_stem,
    message:
        "Tabulating and drawing the UNet baseline beside the PFMs (no GPU)"
    shell:
        "densebench variant-report baseline_unet --scores {input.scores} --pfms {input.pfms}"
        " --grid {params.grid:q} --stem {params.stem} --png {output.png} --pdf {output.pdf}"
        " > {log} 2>&1"
