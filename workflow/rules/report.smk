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
