"""The report side of the plan: each results source's products (from the product table,
``densebench.report.products``) and the grids its figures and tables show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from densebench.registry import AXES
from densebench.report.grid import Grid
from densebench.report.products import (
    COMPUTE_FORMATS,
    COMPUTE_TABLE,
    TABLE_KINDS,
    figure_names,
)
from densebench.resources import train_gpu_hours

if TYPE_CHECKING:
    from densebench.plan.runs import Plan, Run

REPORT_DIR = "results/report/{source}"
SOURCES = ("reproduced", "published", "merged")
OUR_SOURCES = ("reproduced", "merged")
"""The sources holding our runs (per-class rows, per-image confusion matrices)."""


class ReportPlan:
    """The products and grids of a plan's report, per results source."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        """The plan (its runs: the compute table's)."""
        self.config = plan.config
        self.registries = plan.registries
        self.datasets, self.strategies = plan.datasets, plan.strategies
        self.models = plan.report_models
        """The results table's models: the grid's and, where it joins, the UNet baseline."""
        self.seeds = plan.seeds
        self.ablations = plan.ablations
        self.instance_kind = plan.instance_kind

    def published_strategies(self) -> list[str]:
        """The strategies with published results (a pinned `published_sha256`), config order
        first: the published source reports all of them."""
        records = self.registries.strategies
        pinned = [s for s in records if "published_sha256" in records[s]]
        return [
            *(s for s in self.strategies if s in pinned),
            *(s for s in pinned if s not in self.strategies),
        ]

    def published_file(self, strategy: str) -> str:
        """Where a strategy's published results file lives."""
        return f"resources/published/{self.registries.strategies[strategy]['published']}.json"

    def published_sha256(self, stem: str) -> str:
        """The pinned sha256 of the published file Data/<stem>.json."""
        records = self.registries.strategies.values()
        return next(r["published_sha256"] for r in records if r.get("published") == stem)

    def strategy_of_stem(self, stem: str) -> str:
        """The strategy whose published name (`published`, the file stem) is ``stem``."""
        records = self.registries.strategies
        return next(s for s, r in records.items() if r["published"] == stem)

    def export_files(self, source: str) -> list[str]:
        """A source written as the published files: `Data/<stem>.json` per strategy it reports
        (densebench.report.published_export)."""
        root = REPORT_DIR.format(source=source)
        records = self.registries.strategies
        return [
            f"{root}/Data/{records[s]['published']}.json" for s in self.report_strategies(source)
        ]

    def published_files(self) -> dict[str, dict[str, str]]:
        """The published files with their pinned sha256, {strategy: {path, sha256}}."""
        records = self.registries.strategies
        return {
            s: {"path": self.published_file(s), "sha256": records[s]["published_sha256"]}
            for s in self.published_strategies()
        }

    def source_inputs(self, source: str) -> dict[str, Any]:
        """Inputs of a source's table: the results table and/or the published files."""
        inputs: dict[str, Any] = {}
        if source in OUR_SOURCES:
            inputs["reproduced"] = "results/tables/results.csv"
        if source in ("published", "merged"):
            inputs["published"] = [self.published_file(s) for s in self.published_strategies()]
        return inputs

    def absent_published(self) -> list[str]:
        """The published stems not on disk: the only files fetch_published makes (a file
        present, downloaded or dropped by hand, is a plain input that no flag deletes)."""
        stems = [Path(self.published_file(s)).stem for s in self.published_strategies()]
        return [s for s in stems if not Path(f"resources/published/{s}.json").exists()]

    def report_strategies(self, source: str) -> list[str]:
        """The strategies a source's report covers (one heat map each)."""
        if source == "reproduced":
            return list(self.strategies)
        published = self.published_strategies()
        if source == "published":
            return published
        return [*self.strategies, *(s for s in published if s not in self.strategies)]

    def figure_names(self, source: str) -> list[str]:
        """The file stems of a source's figures (heat maps one per strategy)."""
        return figure_names(self.report_strategies(source), self.has_objects(source))

    def has_objects(self, source: str) -> bool:
        """Whether a source's table has object metrics: our runs on a dataset with instance
        labels (the published files have none)."""
        return source in OUR_SOURCES and any(
            self.instance_kind(d) is not None for d in self.datasets
        )

    def report_files(self, source: str) -> list[str]:
        """Every product of a source's report: tables, figures and the published files; for
        sources with our runs the per-class and paired-bootstrap tables (and the seed spread for
        several seeds); for reproduced the compute used; for merged the reproduction report."""
        root = REPORT_DIR.format(source=source)
        files = [f"{root}/tables/per_strategy", *self.export_files(source)]
        files += [f"{root}/tables/{n}.{e}" for n in TABLE_KINDS for e in ("csv", "md", "tex")]
        files += [
            f"{root}/figures/{n}.{e}" for n in self.figure_names(source) for e in ("png", "pdf")
        ]
        if self.has_objects(source):
            files.append(f"{root}/tables/objects")
        if source in OUR_SOURCES:
            files.append(f"{root}/tables/per_class")
            files += [
                f"{root}/tables/paired_bootstrap/{d}.{e}"
                for d in self.datasets
                for e in ("csv", "md")
            ]
            if len(self.seeds) > 1:
                files += [f"{root}/tables/seed_spread.{e}" for e in ("csv", "md", "tex")]
        if source == "reproduced":
            files += [f"{self.compute_stem()}.{e}" for e in COMPUTE_FORMATS]
        if source == "merged":
            files += [f"results/report/reproduction.{e}" for e in ("html", "md", "csv")]
        return files

    # ---- the compute our runs used (densebench.report.compute) ------------------------------
    def compute_stem(self) -> str:
        """The compute table's file stem (of the reproduced source; .csv and .md are added)."""
        return f"{REPORT_DIR.format(source='reproduced')}/tables/{COMPUTE_TABLE}"

    def compute_runs(self) -> list[Run]:
        """The runs whose compute the table sums: those of the results table (the grid's cells'
        own runs and the UNet baseline's where it joins, dataset by dataset), as the report's
        other tables (a cell's runs of further training seeds are the seed spread's)."""
        plan, runs = self.plan, []
        for dataset in self.datasets:
            cells = plan.cells([dataset], plan.models, self.strategies)
            cells += [c for c in plan.baseline_cells() if c[0] == dataset and c not in cells]
            runs += [(*cell, "") for cell in cells]
        return runs

    def compute_run_files(self) -> list[str]:
        """The provenance.json of every run `compute_runs` lists (the table's inputs:
        `Plan.dataset_run_files`)."""
        return [f for d in self.datasets for f in self.plan.dataset_run_files(d, "provenance.json")]

    def compute_estimate(self) -> list[dict[str, Any]]:
        """The FLOP rule's estimated train GPU-hours of `compute_runs` per (model, strategy),
        in plan order (densebench.resources.train_gpu_hours): trained alone (`gpu_h`) and with
        `train.share_frozen_backbone` on, whatever the config says (`shared_gpu_h`: the runs'
        shares of their shared jobs), to 6 significant digits."""
        runs = self.compute_runs()
        hours = train_gpu_hours(self.plan, runs)
        pairs: dict[tuple[str, str], list[float]] = {}
        for run in runs:
            total = pairs.setdefault((run[1], run[2]), [0.0, 0.0])
            total[0] += hours[run][0]
            total[1] += hours[run][1]
        return [
            {
                "model": m,
                "strategy": s,
                "gpu_h": float(f"{a:.6g}"),
                "shared_gpu_h": float(f"{b:.6g}"),
            }
            for (m, s), (a, b) in pairs.items()
        ]

    def _ordered(self, axis: str, first: Sequence[str], extend: bool) -> list[str]:
        """`first` (the config's names), then (`extend`) the registry's other names."""
        names = list(first)
        return (
            [*names, *(k for k in self.registries.axis(axis) if k not in names)]
            if extend
            else names
        )

    def grid(self, names: Mapping[str, Sequence[str]], sizes: bool = False) -> Grid:
        """A report grid of the given names per axis, with display names, dataset categories
        and (`sizes`) the models' parameter counts."""
        r = self.registries
        display = {
            axis: {k: r.axis(axis)[k].get("display_name", k) for k in names[axis]} for axis in AXES
        }
        params_m = (
            {m: r.models[m]["params_m"] for m in names["models"] if "params_m" in r.models[m]}
            if sizes
            else {}
        )
        return Grid(
            datasets=list(names["datasets"]),
            models=list(names["models"]),
            strategies=list(names["strategies"]),
            categories={d: r.datasets[d]["category"] for d in names["datasets"]},
            names=display,
            params_m=params_m,
        )

    def report_grid(self, source: str, sizes: bool = False) -> Grid:
        """The grid a source's report shows: the config's grid for our runs (so a record added
        outside it re-renders nothing), extended by every other registry record for the
        published and merged sources (a source's table then picks its own)."""
        return self.config_grid(extend=source != "reproduced", sizes=sizes)

    def config_grid(self, extend: bool = False, sizes: bool = False) -> Grid:
        """The config's names in config order, then (`extend`) the registry's others."""
        first = {"datasets": self.datasets, "models": self.models, "strategies": self.strategies}
        return self.grid({a: self._ordered(a, n, extend) for a, n in first.items()}, sizes)

    def ablation_grid(self, name: str) -> Grid:
        """The order and display names of an ablation's figure."""
        a = self.ablations[name]
        return self.grid({axis: a[axis] for axis in AXES})

    def baseline_grid(self) -> Grid:
        """The report grid of the UNet baseline's comparison source, with the baseline's name."""
        a = self.ablations["baseline_unet"]
        grid = self.report_grid(a["compare_with"])
        baseline = a["models"][0]
        name = self.registries.models[baseline].get("display_name", baseline)
        names = {**grid.names, "models": {**grid.names["models"], baseline: name}}
        return Grid(**{**grid.__dict__, "names": names})

    def cards(self, axis: str, source: str, fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The `fields` of the cards of an axis, per record of the source's grid (config names
        first, so an edit of another field re-renders no card)."""
        records = self.registries.axis(axis)
        first = self.models if axis == "models" else self.config[axis]
        names = self._ordered(axis, first, extend=source != "reproduced")
        return {k: {f: records[k][f] for f in fields if f in records[k]} for k in names}

    def lora_ranks(self) -> dict[str, int]:
        """The LoRA rank of each LoRA strategy of the rank ablation (Figure 5's x axis)."""
        records = self.registries.strategies
        strategies = self.ablations["lora_rank"]["strategies"]
        return {s: records[s]["rank"] for s in strategies if records[s]["encoder"] == "lora"}


def grid_record(grid: Grid, sizes: bool = False) -> dict[str, Any]:
    """A grid in its JSON form (the jobs' `--grid` param; ``Grid.from_json`` reads it back)."""
    out: dict[str, Any] = {
        **{axis: list(getattr(grid, axis)) for axis in AXES},
        "names": {axis: dict(grid.names[axis]) for axis in AXES},
        "categories": dict(grid.categories),
    }
    if sizes:
        out["params_m"] = dict(grid.params_m)
    return out
