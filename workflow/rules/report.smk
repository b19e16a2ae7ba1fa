# Report stage: one tidy table of all runs, then every table and figure rendered from it.
# Cluster jobs without a GPU (small: the profile's default-resources).


rule aggregate:
    input:
        scores=expand("results/scores/{dataset}.csv", dataset=DATASETS),
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


rule strategy_tables:
    input:
        table="results/tables/results.csv",
    output:
        tables=strategy_table_files(),
    log:
        "logs/strategy_tables/strategy_tables.log",
    conda:
        "../../envs/report.yaml"
    params:
        names=display_names_json(),
        out_dir=tables_root,
    message:
        "Rendering the per-(dataset, strategy) tables (no GPU)"
    shell:
        "densebench tables --table {input.table} --out-dir {params.out_dir}"
        " --display-names {params.names:q} > {log} 2>&1"


rule figure3:
    input:
        table="results/tables/results.csv",
    output:
        png="results/figures/figure3.png",
        pdf="results/figures/figure3.pdf",
    log:
        "logs/figure3/figure3.log",
    conda:
        "../../envs/report.yaml"
    params:
        metric=config["report"]["metric"],
        strategies=STRATEGIES,
        names=display_names_json(),
    message:
        "Rendering Figure 3 ({params.metric} per dataset and strategy across models; no GPU)"
    shell:
        "densebench figure3 --table {input.table} --png {output.png} --pdf {output.pdf}"
        " --metric {params.metric} --strategies {params.strategies}"
        " --display-names {params.names:q} > {log} 2>&1"


# Summaries of one results source (config `results_source`): best model per dataset and the
# average-rank leaderboard (densebench.report.ranking). The published source reads only the
# paper's files, so it schedules no training. fetch_published makes only the files absent from
# resources/published/: one present (downloaded or dropped by hand) is an input, never deleted.
rule fetch_published:
    output:
        json="resources/published/{stem}.json",
    log:
        "logs/fetch_published/{stem}.log",
    wildcard_constraints:
        stem=absent_published_pattern(),
    localrule: True
    conda:
        "../../envs/report.yaml"
    params:
        sha256=lambda wildcards: published_sha256(wildcards.stem),
    message:
        "Downloading the published results Data/{wildcards.stem}.json (pinned commit)"
    shell:
        "densebench fetch-published --stem {wildcards.stem} --sha256 {params.sha256}"
        " --out {output.json} > {log} 2>&1"


rule summaries:
    input:
        unpack(summaries_inputs),
    output:
        tables=summary_files("{source}"),
    log:
        "logs/summaries/{source}.log",
    wildcard_constraints:
        source="reproduced|published|merged",
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid_json(),
        sources=summaries_flags,
        out_dir=parent_dir,
    message:
        "Rendering the best-per-dataset and average-rank tables of the {wildcards.source} results"
    shell:
        "densebench summaries --grid {params.grid:q} --out-dir {params.out_dir}"
        " {params.sources} > {log} 2>&1"
