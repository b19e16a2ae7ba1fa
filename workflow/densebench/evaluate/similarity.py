"""Token similarity of an encoder's last-layer patch tokens (issue 12, the paper's Figure 7).

The paper's exact definition is not public (reference/protocol.md §7); this is the one
implemented, documented in config/README.md ("Token similarity"):

- ``mean_pairwise_cosine(tokens)``: for one image's patch tokens t_1..t_n (the encoder's last
  layer after its final norm, prefix tokens dropped, before the decoder), the mean cosine
  similarity over all ordered pairs i != j, mean_{i != j} <t_i, t_j> / (|t_i| |t_j|). With unit
  vectors u_i it equals (|sum_i u_i|^2 - n) / (n (n - 1)), computed in O(n d). A strategy's value
  is the mean over test images. High values mean the tokens of an image are alike (less spatial
  detail for the decoder); lower values after adaptation mean the tokens were made more distinct.
- ``query_maps(tokens, grid, queries)``: per query token q the cosine similarity of every token
  to t_q, as an (h, w) map over the patch grid (the similarity maps of the figure).

Zero-norm tokens have no direction and are left out (with fewer than 2 tokens left the value is
NaN).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EPS = 1e-12


def unit_rows(tokens: np.ndarray) -> np.ndarray:
    """Rows of a (n, d) token matrix scaled to unit length; zero rows dropped."""
    tokens = np.asarray(tokens, dtype=np.float64)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be (n, d), got shape {tokens.shape}")
    norms = np.linalg.norm(tokens, axis=1)
    keep = norms > EPS
    return tokens[keep] / norms[keep, None]


def mean_pairwise_cosine(tokens: np.ndarray) -> float:
    """Mean cosine similarity over the ordered pairs i != j of one image's tokens."""
    units = unit_rows(tokens)
    n = len(units)
    if n < 2:
        return float("nan")
    total = units.sum(axis=0)
    return float((total @ total - n) / (n * (n - 1)))


def mean_similarity(images: Sequence[np.ndarray]) -> float:
    """Mean over images of ``mean_pairwise_cosine`` (NaN images left out)."""
    values = [mean_pairwise_cosine(t) for t in images]
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def query_maps(tokens: np.ndarray, grid: tuple[int, int], queries: Sequence[int]) -> np.ndarray:
    """(len(queries), h, w) cosine similarity of every token to each query token."""
    h, w = grid
    tokens = np.asarray(tokens, dtype=np.float64)
    if tokens.shape[0] != h * w:
        raise ValueError(f"{tokens.shape[0]} tokens do not fill a {h} x {w} patch grid")
    norms = np.maximum(np.linalg.norm(tokens, axis=1), EPS)
    units = tokens / norms[:, None]
    bad = [q for q in queries if not 0 <= q < h * w]
    if bad:
        raise ValueError(f"query token(s) {bad} outside the {h} x {w} patch grid")
    return (units[list(queries)] @ units.T).reshape(len(queries), h, w)
