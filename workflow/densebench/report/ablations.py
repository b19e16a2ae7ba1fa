"""Figures of the paper's ablations (issue 12), drawn from the tidy table of the ablation's runs.

- ``build_token_similarity`` (the paper's Figure 7): per run the mean token cosine similarity
  (``densebench.evaluate.similarity``) against its Mean Dice gain over the frozen run of the
  same (dataset, model), coloured by strategy, one marker per dataset.
- ``build_lora_rank`` (the paper's Figure 5): one panel per dataset; per model its Mean Dice
  with the 95% bootstrap CI at each LoRA rank (log2 x axis), and full fine-tuning (the
  ``reference`` strategy) as a dashed line in the model's colour with its CI as a band.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from densebench.report import style
from densebench.report.grid import Grid
from densebench.report.ranking import RANK_METRIC, metric_cells

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PANEL_IN: tuple[float, float] = (2.6, 2.4)


def dataset_panels(n: int) -> tuple[Figure, list[Axes]]:
    """A figure with one row of ``n`` panels (one per dataset); call inside ``print_style``."""
    from matplotlib.figure import Figure

    width, height = PANEL_IN
    fig = Figure(figsize=(width * n, height), layout="constrained")
    return fig, list(fig.subplots(1, n, squeeze=False)[0])


def ci_errorbar(ax: Axes, x: pd.Series, rows: pd.DataFrame, **style_kw) -> None:
    """Bootstrap means of ``rows`` at ``x`` with their 95% CIs as error bars."""
    errors = [
        (rows["boot_mean"] - rows["ci_lower"]).clip(lower=0),
        (rows["ci_upper"] - rows["boot_mean"]).clip(lower=0),
    ]
    ax.errorbar(x, rows["boot_mean"], yerr=errors, capsize=2, **style_kw)


def build_lora_rank(
    table: pd.DataFrame, grid: Grid, ranks: Mapping[str, int], reference: str | None = "full"
) -> Figure:
    """Mean Dice [95% CI] per LoRA rank (``ranks``: strategy -> rank) and the full fine-tuning
    reference line, one panel per dataset."""
    cells = metric_cells(table, grid)
    datasets = [d for d in grid.datasets if d in set(cells["dataset"])]
    if not datasets:
        raise ValueError(f"LoRA-rank figure: no {RANK_METRIC} cells of the ablation's runs")
    styles = style.model_styles(grid)
    with style.print_style():
        fig, axes = dataset_panels(len(datasets))
        for ax, dataset in zip(axes, datasets, strict=True):
            part = cells[cells["dataset"] == dataset]
            for model in grid.models:
                rows = part[part["model"] == model]
                if rows.empty:
                    continue
                colour, marker = styles[model]
                lora = rows[rows["strategy"].isin(list(ranks))]
                lora = lora.assign(rank=lora["strategy"].map(ranks)).sort_values("rank")
                if not lora.empty:
                    label = grid.name("models", model)
                    ci_errorbar(ax, lora["rank"], lora, color=colour, marker=marker, label=label)
                full = rows[rows["strategy"] == reference]
                if not full.empty:
                    ref = full.iloc[0]
                    ax.axhline(ref["boot_mean"], color=colour, linestyle="--", linewidth=1)
                    ax.axhspan(ref["ci_lower"], ref["ci_upper"], color=colour, alpha=0.12)
            ax.set_xscale("log", base=2)
            present = sorted({ranks[s] for s in part["strategy"] if s in ranks})
            ax.set_xticks(present, [str(r) for r in present])
            ax.set_title(grid.name("datasets", dataset))
            ax.set_xlabel("LoRA rank")
        axes[0].set_ylabel("Mean Dice (95% CI)")
        handles, labels = axes[0].get_legend_handles_labels()
        if handles:
            note = f"dashed: {grid.name('strategies', reference)}" if reference else ""
            fig.legend(handles, labels, loc="outside lower center", ncols=4, title=note)
    return fig


def similarity_gains(similarity: pd.DataFrame, table: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Per run: its mean similarity, Mean Dice and gain over the frozen run (NaN without one)."""
    cells = metric_cells(table, grid).loc[:, ["dataset", "model", "strategy", "boot_mean"]]
    runs = similarity.merge(cells, on=["dataset", "model", "strategy"], how="inner")
    frozen = runs[runs["strategy"] == "frozen"].loc[:, ["dataset", "model", "boot_mean"]]
    runs = runs.merge(frozen, on=["dataset", "model"], how="left", suffixes=("", "_frozen"))
    return runs.assign(gain=runs["boot_mean"] - runs["boot_mean_frozen"])


def build_token_similarity(similarity: pd.DataFrame, table: pd.DataFrame, grid: Grid) -> Figure:
    """Mean token similarity (x) against the Mean Dice gain over frozen (y) of every run."""
    from matplotlib.figure import Figure

    runs = similarity_gains(similarity, table, grid)
    if runs.empty:
        raise ValueError("token-similarity figure: no run has both a similarity and a score")
    colours = style.strategy_colours(grid)
    markers = {d: style.model_style(i)[1] for i, d in enumerate(grid.datasets)}
    with style.print_style():
        fig = Figure(figsize=(style.SINGLE_COLUMN_IN * 1.4, 3.0), layout="constrained")
        ax = fig.subplots()
        for strategy in grid.strategies:
            for dataset in grid.datasets:
                part = runs[(runs["strategy"] == strategy) & (runs["dataset"] == dataset)]
                if part.empty:
                    continue
                ax.scatter(
                    part["mean_similarity"], part["gain"], color=colours[strategy],
                    marker=markers[dataset], s=28, edgecolors="black", linewidths=0.4,
                    label=f"{grid.name('strategies', strategy)}, {grid.name('datasets', dataset)}",
                )  # fmt: skip
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xlabel("mean pairwise cosine similarity of patch tokens")
        ax.set_ylabel("Mean Dice gain over frozen")
        fig.legend(loc="outside right upper", fontsize=style.MIN_FONT_PT)
    return fig


def class_palette(n_classes: int) -> np.ndarray:
    """(n, 3) uint8 colours of a dataset's classes: background (0) black, then tab10 (tab20
    beyond 10 classes), as the authors' ``infer_bootstrap.py --save_vis`` masks."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n_classes <= 10 else "tab20"]
    colours = [(0.0, 0.0, 0.0)] + [cmap(i % cmap.N)[:3] for i in range(n_classes - 1)]
    return (np.array(colours) * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, classes: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """A class map blended 50/50 over the image; background and ignored pixels show the image."""
    mask = palette[np.clip(classes, 0, len(palette) - 1)]
    blend = (0.5 * image + 0.5 * mask).round().astype(np.uint8)
    plain = (classes == 0) | (classes >= len(palette))
    return np.where(plain[..., None], image, blend)


def build_qualitative(
    predictions: Mapping[str, np.ndarray], grid: Grid, classes: list[str] | None = None
) -> Figure:
    """Rows: test images; columns: image, ground truth, each strategy's prediction (overlays in
    one class palette). ``predictions`` holds ``image``, ``truth`` and ``pred_<strategy>``."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    strategies = [s for s in grid.strategies if f"pred_{s}" in predictions]
    if not strategies:
        raise ValueError("qualitative figure: no prediction of the grid's strategies")
    images, truths = predictions["image"], predictions["truth"]
    n_classes = len(classes) if classes else int(max(truths.max(), 1)) + 1
    palette = class_palette(n_classes)
    columns = [("Image", None), ("Ground truth", truths)]
    columns += [(grid.name("strategies", s), predictions[f"pred_{s}"]) for s in strategies]
    with style.print_style():
        size = 1.3
        fig = Figure(figsize=(size * len(columns), size * len(images) + 0.6), layout="constrained")
        axes = fig.subplots(len(images), len(columns), squeeze=False)
        for row, image in enumerate(images):
            for col, (title, maps) in enumerate(columns):
                ax = axes[row][col]
                ax.imshow(image if maps is None else overlay(image, maps[row], palette))
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0:
                    ax.set_title(title)
        names = classes or [str(c) for c in range(n_classes)]
        handles = [Patch(color=palette[c] / 255, label=names[c]) for c in range(1, n_classes)]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6))
    return fig
