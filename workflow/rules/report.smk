# Report stage: one tidy table of our runs, then per results source (config `results_source`)
# its own table and every figure and table of the paper under results/report/<source>/.
# Cluster jobs without a GPU (small: the profile's default-resources), except the downloads.
# Products marked report() make up `snakemake --report` (captions: workflow/report/*.rst).


rule aggregate:
    input:
        scores=[f"results/scores/{d}.csv" for d in PLAN.datasets],
    output:
        table="results/tables/results.csv",
    log:
        "logs/aggregate/aggregate.log",
    conda:
        "../../envs/report.yaml"
    message:
        "Collecting the metrics of every run into one table (no GPU)"
    shell:
        "densebench aggregate --out {output.table} {input.scores} > {log} 2>&1"


# fetch_published makes only the files absent from resources/published/: one present
# (downloaded or dropped by hand) is an input, never an output, so nothing deletes it.
rule fetch_published:
    output:
        json="resources/published/{stem}.json",
    log:
        "logs/fetch_published/{stem}.log",
    wildcard_constraints:
        stem=alternatives(PLAN.report.absent_published()),
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        sha256=lambda wildcards: PLAN.report.published_sha256(wildcards.stem),
    message:
        "Downloading the published results Data/{wildcards.stem}.json (pinned commit)"
    shell:
        "densebench fetch-published --stem {wildcards.stem} --sha256 {params.sha256}"
        " --out {output.json} > {log} 2>&1"


rule source_table:
    input:
        unpack(lambda wildcards: PLAN.report.source_inputs(wildcards.source)),
    output:
        table=f"{REPORT_DIR}/results.csv",
    log:
        "logs/source_table/{source}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        sources=source_flags,
    message:
        "Collecting the {wildcards.source} results into one table (no GPU)"
    shell:
        "densebench source-table --source {wildcards.source} --out {output.table}"
        " {params.sources} > {log} 2>&1"


# The source as the authors' results site stores it (Data/<stem>.json per strategy, byte for
# byte their format), so their site and its dashboards show reproduced or merged results.
rule export_published:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        json=f"{REPORT_DIR}/Data/{{stem}}.json",
    log:
        "logs/export_published/{source}_{stem}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
        stem=alternatives(r["published"] for r in REGISTRIES.strategies.values()),
    conda:
        "../../envs/report.yaml"
    params:
        strategy=lambda wildcards: PLAN.report.strategy_of_stem(wildcards.stem),
        grid=report_grid,
    message:
        "Writing the {wildcards.source} results as the published Data/{wildcards.stem}.json"
        " (no GPU)"
    shell:
        "densebench export-published --table {input.table} --grid {params.grid:q}"
        " --strategy {params.strategy} --out {output.json} > {log} 2>&1"


rule strategy_tables:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        tables=report(
            directory(f"{REPORT_DIR}/tables/per_strategy"),
            patterns=["{dataset}/{strategy}.md"],
            caption="../report/strategy_tables.rst",
            category="Tables per dataset and strategy",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "strategy": "{strategy}"},
        ),
    log:
        "logs/strategy_tables/{source}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
    message:
        "Rendering the per-(dataset, strategy) tables of the {wildcards.source} results (no GPU)"
    shell:
        "densebench table per_strategy --table {input.table} --grid {params.grid:q}"
        " --out {output.tables} > {log} 2>&1"


rule class_tables:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        tables=report(
            directory(f"{REPORT_DIR}/tables/per_class"),
            patterns=["{dataset}/{strategy}.md"],
            caption="../report/class_tables.rst",
            category="Per-class tables",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "strategy": "{strategy}"},
        ),
    log:
        "logs/class_tables/{source}.log",
    wildcard_constraints:
        source="|".join(OUR_SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
    message:
        "Rendering the per-class tables of the {wildcards.source} results (no GPU)"
    shell:
        "densebench table per_class --table {input.table} --grid {params.grid:q}"
        " --out {output.tables} > {log} 2>&1"


rule object_tables:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        tables=report(
            directory(f"{REPORT_DIR}/tables/objects"),
            patterns=["{dataset}/{strategy}.md"],
            caption="../report/object_tables.rst",
            category="Object metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "strategy": "{strategy}"},
        ),
    log:
        "logs/object_tables/{source}.log",
    wildcard_constraints:
        source="|".join(OUR_SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
    message:
        "Rendering the nucleus and gland object tables of the {wildcards.source} results (no GPU)"
    shell:
        "densebench table objects --table {input.table} --grid {params.grid:q}"
        " --out {output.tables} > {log} 2>&1"


rule summaries:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        sota=report(
            f"{REPORT_DIR}/tables/dataset_sota.md",
            caption="../report/dataset_sota.rst",
            category="Leaderboard",
            labels={"table": "best per dataset"},
        ),
        sota_other=multiext(f"{REPORT_DIR}/tables/dataset_sota", ".csv", ".tex"),
        ranks=report(
            f"{REPORT_DIR}/tables/average_rank.md",
            caption="../report/average_rank.rst",
            category="Leaderboard",
            labels={"table": "average rank"},
        ),
        ranks_other=multiext(f"{REPORT_DIR}/tables/average_rank", ".csv", ".tex"),
    log:
        "logs/summaries/{source}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
        out_dir=parent_dir,
    message:
        "Rendering the best-per-dataset and average-rank tables of the {wildcards.source} results"
        " (no GPU)"
    shell:
        "densebench summaries --table {input.table} --grid {params.grid:q}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule strategy_comparison:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        md=report(
            f"{REPORT_DIR}/tables/strategy_comparison.md",
            caption="../report/strategy_comparison.rst",
            category="Leaderboard",
            labels={"table": "strategy comparison"},
        ),
        other=multiext(f"{REPORT_DIR}/tables/strategy_comparison", ".csv", ".tex"),
    log:
        "logs/strategy_comparison/{source}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
        stem=output_stem,
    message:
        "Comparing the strategies of the {wildcards.source} results (no GPU)"
    shell:
        "densebench table strategy_comparison --table {input.table} --grid {params.grid:q}"
        " --out {params.stem} > {log} 2>&1"


rule friedman:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        md=report(
            f"{REPORT_DIR}/tables/friedman.md",
            caption="../report/friedman.rst",
            category="Statistical tests",
            labels={"table": "Friedman and Nemenyi"},
        ),
        other=multiext(f"{REPORT_DIR}/tables/friedman", ".csv", ".tex"),
    log:
        "logs/friedman/{source}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
        stem=output_stem,
    message:
        "Friedman test and Nemenyi critical difference of the {wildcards.source} results (no GPU)"
    shell:
        "densebench table friedman --table {input.table} --grid {params.grid:q}"
        " --out {params.stem} > {log} 2>&1"


# The leaderboard's rank intervals and P(first): image-level over our runs' confusion files
# (the scoring's replicates, seed and definitions), dataset-level over published cells.
rule rank_uncertainty:
    input:
        table=f"{REPORT_DIR}/results.csv",
        confusions=source_run_files("confusion.npz"),
    output:
        md=report(
            f"{REPORT_DIR}/tables/rank_uncertainty.md",
            caption="../report/rank_uncertainty.rst",
            category="Leaderboard",
            labels={"table": "rank uncertainty"},
        ),
        other=multiext(f"{REPORT_DIR}/tables/rank_uncertainty", ".csv", ".tex"),
    log:
        "logs/rank_uncertainty/{source}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
        replicates=SCORING["replicates"],
        seed=SCORING["seed"],
        definitions=SCORING["definitions"],
        background="--exclude-background" if SCORING["exclude_background"] else "",
        stem=output_stem,
    message:
        "Bootstrapping the leaderboard's rank intervals of the {wildcards.source} results (no GPU)"
    shell:
        "densebench rank-uncertainty --table {input.table} --grid {params.grid:q}"
        " --replicates {params.replicates} --seed {params.seed}"
        " --definitions {params.definitions} {params.background}"
        " --out {params.stem} {input.confusions} > {log} 2>&1"


rule cards:
    output:
        md=report(
            f"{REPORT_DIR}/tables/{{axis}}_cards.md",
            caption="../report/cards.rst",
            category="Model and dataset cards",
            labels={"cards": "{axis}"},
        ),
        other=multiext(f"{REPORT_DIR}/tables/{{axis}}_cards", ".csv", ".tex"),
    log:
        "logs/cards/{source}_{axis}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
        axis="model|dataset",
    conda:
        "../../envs/report.yaml"
    params:
        records=cards_json,
        stem=output_stem,
    message:
        "Rendering the {wildcards.axis} cards from the registry (no GPU)"
    shell:
        "densebench cards {wildcards.axis}s --records {params.records:q}"
        " --out {params.stem} > {log} 2>&1"


rule paired_bootstrap:
    input:
        confusions=dataset_run_files("confusion.npz"),
    output:
        md=report(
            f"{REPORT_DIR}/tables/paired_bootstrap/{{dataset}}.md",
            caption="../report/paired_bootstrap.rst",
            category="Statistical tests",
            subcategory="paired bootstrap",
            labels={"dataset": "{dataset}"},
        ),
        csv=f"{REPORT_DIR}/tables/paired_bootstrap/{{dataset}}.csv",
    log:
        "logs/paired_bootstrap/{source}_{dataset}.log",
    wildcard_constraints:
        source="|".join(OUR_SOURCES),
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
        replicates=SCORING["replicates"],
        seed=SCORING["seed"],
        definitions=SCORING["definitions"],
        background="--exclude-background" if SCORING["exclude_background"] else "",
    message:
        "Paired bootstrap of the runs on {wildcards.dataset} (same test images; no GPU)"
    shell:
        "densebench paired-bootstrap --dataset {wildcards.dataset} --grid {params.grid:q}"
        " --replicates {params.replicates} --seed {params.seed}"
        " --definitions {params.definitions} {params.background}"
        " --csv {output.csv} --md {output.md} {input.confusions} > {log} 2>&1"


rule reproduction:
    input:
        reproduced="results/tables/results.csv",
        published=[
            PLAN.report.published_file(s) for s in PLAN.report.published_strategies()
        ],
    output:
        html=report(
            "results/report/reproduction.html",
            caption="../report/reproduction.rst",
            category="Reproduction",
        ),
        other=multiext("results/report/reproduction", ".md", ".csv"),
    log:
        "logs/reproduction/reproduction.log",
    conda:
        "../../envs/report.yaml"
    params:
        grid=canonical(grid_record(PLAN.report.config_grid())),
        published=canonical(PLAN.report.published_files()),
        stem=output_stem,
    message:
        "Comparing our runs with the published results, cell by cell (no GPU)"
    shell:
        "densebench reproduction --reproduced {input.reproduced}"
        " --published {params.published:q} --grid {params.grid:q}"
        " --out {params.stem} > {log} 2>&1"


# The compute our runs used: each run's measured device-hours (its provenance.json) summed per
# model and strategy, beside the FLOP rule's estimate of the same runs, alone and with
# train.share_frozen_backbone (densebench.report.compute). The estimate is output-derived, not
# a rerun trigger: the table is redone when a run is (re)trained, not when only the estimate's
# constants or a record's size change.
rule compute_used:
    input:
        provenance=PLAN.report.compute_run_files(),
    output:
        csv=f"{PLAN.report.compute_stem()}.csv",
        md=f"{PLAN.report.compute_stem()}.md",
    log:
        "logs/compute_used/compute_used.log",
    conda:
        "../../envs/report.yaml"
    params:
        estimate=lambda wildcards, output: canonical(PLAN.report.compute_estimate()),
        stem=output_stem,
    message:
        "Summing the measured device-hours of our runs beside the estimate (no GPU)"
    shell:
        "densebench compute --estimate {params.estimate:q} --out {params.stem}"
        " {input.provenance} > {log} 2>&1"
