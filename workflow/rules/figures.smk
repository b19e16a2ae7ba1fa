# The report's figures, one rule each: PNG + vector PDF under results/report/<source>/figures/,
# drawn from the source's table by `densebench figure <kind>` (densebench.report.figures).


rule figure3:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        png=report(
            f"{REPORT_DIR}/figures/figure3.png",
            caption="../report/figure3.rst",
            category="Figures",
            labels={"figure": "Figure 3: per dataset and strategy"},
        ),
        pdf=f"{REPORT_DIR}/figures/figure3.pdf",
    log:
        "logs/figure3/{source}.log",
    wildcard_constraints:
        source=SOURCE_PATTERN,
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
        metric=config["report"]["metric"],
    message:
        "Rendering Figure 3 of the {wildcards.source} results (no GPU)"
    shell:
        "densebench figure figure3 --table {input.table} --grid {params.grid:q}"
        " --metric {params.metric} --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule figure4:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        png=report(
            f"{REPORT_DIR}/figures/figure4.png",
            caption="../report/figure4.rst",
            category="Figures",
            labels={"figure": "Figure 4: scaling"},
        ),
        pdf=f"{REPORT_DIR}/figures/figure4.pdf",
    log:
        "logs/figure4/{source}.log",
    wildcard_constraints:
        source=SOURCE_PATTERN,
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid_sizes,
    message:
        "Rendering Figure 4 (parameters vs frozen Mean Dice) of the {wildcards.source} results"
        " (no GPU)"
    shell:
        "densebench figure figure4 --table {input.table} --grid {params.grid:q}"
        " --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule heatmap:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        png=report(
            f"{REPORT_DIR}/figures/heatmap_{{strategy}}.png",
            caption="../report/heatmap.rst",
            category="Figures",
            subcategory="heat maps",
            labels={"figure": "heat map", "strategy": "{strategy}"},
        ),
        pdf=f"{REPORT_DIR}/figures/heatmap_{{strategy}}.pdf",
    log:
        "logs/heatmap/{source}_{strategy}.log",
    wildcard_constraints:
        source=SOURCE_PATTERN,
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
    message:
        "Rendering the model x dataset heat map of {wildcards.strategy}"
        " ({wildcards.source} results; no GPU)"
    shell:
        "densebench figure heatmap --strategy {wildcards.strategy} --table {input.table}"
        " --grid {params.grid:q} --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule sota_chart:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        png=report(
            f"{REPORT_DIR}/figures/dataset_sota.png",
            caption="../report/sota_chart.rst",
            category="Leaderboard",
            labels={"figure": "best per dataset"},
        ),
        pdf=f"{REPORT_DIR}/figures/dataset_sota.pdf",
    log:
        "logs/sota_chart/{source}.log",
    wildcard_constraints:
        source=SOURCE_PATTERN,
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
    message:
        "Rendering the best-per-dataset bar chart of the {wildcards.source} results (no GPU)"
    shell:
        "densebench figure dataset_sota --table {input.table} --grid {params.grid:q}"
        " --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule rank_chart:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        png=report(
            f"{REPORT_DIR}/figures/average_rank.png",
            caption="../report/rank_chart.rst",
            category="Leaderboard",
            labels={"figure": "average rank"},
        ),
        pdf=f"{REPORT_DIR}/figures/average_rank.pdf",
    log:
        "logs/rank_chart/{source}.log",
    wildcard_constraints:
        source=SOURCE_PATTERN,
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
    message:
        "Rendering the average-rank bar chart of the {wildcards.source} results (no GPU)"
    shell:
        "densebench figure average_rank --table {input.table} --grid {params.grid:q}"
        " --png {output.png} --pdf {output.pdf} > {log} 2>&1"


rule cd_diagram:
    input:
        table=f"{REPORT_DIR}/results.csv",
    output:
        png=report(
            f"{REPORT_DIR}/figures/critical_difference.png",
            caption="../report/cd_diagram.rst",
            category="Statistical tests",
            labels={"figure": "critical difference"},
        ),
        pdf=f"{REPORT_DIR}/figures/critical_difference.pdf",
    log:
        "logs/cd_diagram/{source}.log",
    wildcard_constraints:
        source=SOURCE_PATTERN,
    conda:
        "../../envs/report.yaml"
    params:
        grid=report_grid,
    message:
        "Rendering the critical-difference diagram of the {wildcards.source} results (no GPU)"
    shell:
        "densebench figure critical_difference --table {input.table} --grid {params.grid:q}"
        " --png {output.png} --pdf {output.pdf} > {log} 2>&1"
