"""Honest statistics at small n: the floor of a bootstrap p-value and the small-test-split mark.

- A p-value estimated from B bootstrap replicates counts replicates, so it cannot resolve
  values below ``p_floor(B)`` = 1/B: an estimate under it (0: no replicate on one side of 0) is
  shown as ``< 1/B`` (``< 0.001`` for B = 1000), never as 0. CSVs keep the estimate (a float)
  beside the floor; only the Markdown, LaTeX and captions say ``<``.
- A test split of fewer than ``MIN_IMAGES`` (10) images gives 95% intervals and paired tests
  that are not to be trusted (3 images have only 10 distinct bootstrap resamples). Tables mark
  such rows with ``SMALL_N_MARK``, a double dagger (the dagger marks our runs in a merged table),
  and a footnote "‡ unreliable (n = 3 test images)"; their CSVs carry ``n_images`` and
  ``unreliable``. Published cells (no image count) are never marked.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from densebench.report.formats import format_p

MIN_IMAGES = 10
"""The smallest test split whose intervals and paired tests the report takes at face value."""
SMALL_N_MARK = "\u2021"
"""The mark of a row resting on fewer than ``MIN_IMAGES`` test images."""


def p_floor(replicates: int) -> float:
    """The resolution 1/B of a p-value estimated from B bootstrap replicates."""
    if int(replicates) < 1:
        raise ValueError(f"replicates must be >= 1, got {replicates}")
    return 1.0 / int(replicates)


def below_floor(value: float, floor: float) -> bool:
    """Whether a p-value estimate lies under its floor (shown as ``< floor``)."""
    return not math.isnan(float(value)) and float(value) < float(floor)


def format_bound(bound: float) -> str:
    """An upper bound of a p-value for reading: ``< 0.001`` (4 significant digits)."""
    return f"< {float(bound):.4g}"


def format_bootstrap_p(value: float, floor: float) -> str:
    """A bootstrap p-value for reading: ``< floor`` (e.g. ``< 0.001``) when the estimate is under
    its floor, else ``format_p`` of the estimate."""
    return format_bound(floor) if below_floor(value, floor) else format_p(float(value))


def known_count(n_images: Any) -> int | None:
    """An image count as an int, None when missing (a published cell)."""
    import pandas as pd

    return None if pd.isna(n_images) else int(n_images)


def is_unreliable(n_images: Any) -> bool:
    """Whether a test split of ``n_images`` is too small to trust (unknown: no)."""
    count = known_count(n_images)
    return count is not None and count < MIN_IMAGES


def marked(text: str, n_images: Any) -> str:
    """``text`` with ``SMALL_N_MARK`` appended when ``n_images`` is too small."""
    return f"{text}{SMALL_N_MARK}" if is_unreliable(n_images) else text


def small_n_note(counts: Iterable[Any]) -> str:
    """The footnote of the marked rows among ``counts`` ("" when none is marked)."""
    small = sorted({known_count(n) for n in counts if is_unreliable(n)})
    if not small:
        return ""
    n = ", ".join(str(k) for k in small)
    noun = "image" if small == [1] else "images"
    return (
        f"{SMALL_N_MARK} unreliable (n = {n} test {noun}): with fewer than {MIN_IMAGES} test "
        "images the 95% intervals and paired tests are not to be trusted."
    )


def with_note(note: str, counts: Iterable[Any]) -> str:
    """A table's note followed by the small-n footnote when a row is marked."""
    extra = small_n_note(counts)
    return f"{note} {extra}" if extra else note
