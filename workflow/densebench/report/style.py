"""The report figures' style: one colour-blind-safe palette, per-model styles, print sizes.

- Colours are the Okabe-Ito palette (Okabe & Ito 2008, "Color Universal Design"), safe for the
  common colour-vision deficiencies. ``strategy_colours`` gives the grid's strategies the first
  five of ``STRATEGY_ORDER`` in grid order (six or more cycle through the rest).
- ``model_styles`` gives each model a (colour, marker) pair by its position in ``grid.models``:
  colours cycle through the 8 Okabe-Ito colours and markers through 7 shapes; 8 and 7 are
  coprime, so the first 56 models all get distinct pairs and neighbours differ in both. A model
  keeps its style in every figure drawn from the same grid, whatever subset a table holds.
- Models from our runs in a merged table (``grid.marked``) are drawn with ``MARKED_EDGE`` (a
  thick black edge) and bars with ``MARKED_HATCH``; the figure notes ``MARKED_NOTE``.
- ``print_style`` is the rc context of every figure: fonts of at least ``MIN_FONT_PT`` at the
  figure's final width (``DOUBLE_COLUMN_IN`` or ``SINGLE_COLUMN_IN``), constrained layout,
  TrueType fonts in the PDF.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from densebench.report.grid import Grid

OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
"""The eight Okabe-Ito colours."""
STRATEGY_ORDER: tuple[str, ...] = (
    "blue",
    "orange",
    "bluish_green",
    "vermillion",
    "reddish_purple",
    "sky_blue",
    "yellow",
    "black",
)
"""Okabe-Ito colours given to strategies in grid order (the first five for the paper's five)."""
MODEL_ORDER: tuple[str, ...] = (*STRATEGY_ORDER[:6], "black", "yellow")
"""Okabe-Ito colours cycled over the models in grid order."""
MODEL_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X")
"""Marker shapes cycled over the models (7, coprime with the 8 colours)."""
MARKED_EDGE = {"edgecolor": "black", "linewidth": 1.2}
"""Edge of the markers and bars of a marked model (ours, in a merged table)."""
UNMARKED_EDGE = {"edgecolor": "white", "linewidth": 0.3}
"""Edge of the markers of the other models."""
MARKED_HATCH = "////"
MARKED_NOTE = "\u2020 our runs"
MISSING_COLOUR = "#DDDDDD"
MISSING_HATCH = "xxx"
"""Background and hatch of a missing heat-map cell."""
SEQUENTIAL_CMAP = "cividis"
"""Colour map of the heat maps: sequential, perceptually uniform, colour-blind safe."""

DOUBLE_COLUMN_IN = 7.0
SINGLE_COLUMN_IN = 3.5
DPI = 300
MIN_FONT_PT = 7.0
PRINT_RC: dict[str, Any] = {
    "font.size": 7.5,
    "axes.titlesize": 8.0,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 7.0,
    "legend.title_fontsize": 7.5,
    "figure.titlesize": 8.5,
    "figure.labelsize": 7.5,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 0.8,
    "patch.linewidth": 0.6,
    "hatch.linewidth": 0.6,
    "hatch.color": "#777777",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "figure.constrained_layout.use": True,
    "pdf.fonttype": 42,
}
"""rc settings of every report figure (sizes in points at the final print width)."""


def strategy_colours(grid: Grid) -> dict[str, str]:
    """Strategy -> Okabe-Ito colour, by position in ``grid.strategies``."""
    return {
        s: OKABE_ITO[STRATEGY_ORDER[i % len(STRATEGY_ORDER)]] for i, s in enumerate(grid.strategies)
    }


def model_style(position: int) -> tuple[str, str]:
    """The (colour, marker) of the model at ``position`` in the grid's model order."""
    colour = OKABE_ITO[MODEL_ORDER[position % len(MODEL_ORDER)]]
    return colour, MODEL_MARKERS[position % len(MODEL_MARKERS)]


def model_styles(grid: Grid) -> dict[str, tuple[str, str]]:
    """Model -> (colour, marker), by position in ``grid.models``."""
    return {m: model_style(i) for i, m in enumerate(grid.models)}


def edge(grid: Grid, model: str) -> dict[str, Any]:
    """Marker edge keywords of ``model``: thick black when marked (our runs)."""
    return dict(MARKED_EDGE if model in grid.marked else UNMARKED_EDGE)


@contextlib.contextmanager
def print_style() -> Iterator[dict[str, Any]]:
    """Context in which a figure is built with ``PRINT_RC``; yields the rc dict."""
    import matplotlib

    with matplotlib.rc_context(PRINT_RC):
        yield dict(PRINT_RC)
