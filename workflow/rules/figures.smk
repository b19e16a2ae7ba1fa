# The report's figures, one rule over the figure kinds of the product table
# (densebench.report.products): PNG + vector PDF under results/report/<source>/figures/,
# drawn from the source's table by `densebench figure <kind>`; heat maps are `heatmap_<strategy>`.
# A kind drawn from a report table as well (the rank uncertainty) gets its CSV as an input.


rule figure:
    input:
        table=f"{REPORT_DIR}/results.csv",
        tables=figure_tables,
    output:
        png=report(
            f"{REPORT_DIR}/figures/{{kind}}.png",
            caption="../report/figure.rst",
            category=figure_field("category"),
            subcategory=figure_field("subcategory"),
            labels=figure_labels,
        ),
        pdf=f"{REPORT_DIR}/figures/{{kind}}.pdf",
    log:
        "logs/figure/{source}_{kind}.log",
    wildcard_constraints:
        source="|".join(SOURCES),
        kind=FIGURE_PATTERN,
    conda:
        "../../envs/report.yaml"
    params:
        grid=figure_grid,
        options=figure_options,
    message:
        "Rendering the figure {wildcards.kind} of the {wildcards.source} results (no GPU)"
    shell:
        "densebench figure {wildcards.kind} --table {input.table} --grid {params.grid:q}"
        " {params.options} --tables {input.tables} --png {output.png} --pdf {output.pdf}"
        " > {log} 2>&1"
