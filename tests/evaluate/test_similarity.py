"""Token similarity on hand-made token sets with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from densebench.evaluate.similarity import mean_pairwise_cosine, mean_similarity, query_maps


def test_identical_tokens_are_fully_similar():
    assert mean_pairwise_cosine(np.tile([[3.0, 4.0]], (5, 1))) == pytest.approx(1.0)


def test_orthogonal_tokens_have_zero_similarity():
    assert mean_pairwise_cosine(np.eye(4) * 7.0) == pytest.approx(0.0)


def test_two_opposite_groups():
    # 2 tokens along +x, 2 along -x: of the 12 ordered pairs, 4 are +1 and 8 are -1
    tokens = np.array([[1.0, 0], [2.0, 0], [-1.0, 0], [-5.0, 0]])
    assert mean_pairwise_cosine(tokens) == pytest.approx((4 - 8) / 12)


def test_equals_the_pairwise_definition_on_random_tokens():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(30, 8)) + 0.5
    units = tokens / np.linalg.norm(tokens, axis=1, keepdims=True)
    sims = units @ units.T
    expected = (sims.sum() - np.trace(sims)) / (30 * 29)
    assert mean_pairwise_cosine(tokens) == pytest.approx(expected)


def test_zero_tokens_are_left_out_and_too_few_give_nan():
    assert mean_pairwise_cosine(np.array([[1.0, 0], [0, 0], [1.0, 0]])) == pytest.approx(1.0)
    assert math.isnan(mean_pairwise_cosine(np.array([[1.0, 0], [0, 0]])))
    assert mean_similarity([np.eye(3), np.ones((2, 2)), np.zeros((2, 2))]) == pytest.approx(0.5)


def test_query_maps_on_a_patch_grid():
    # a 2 x 3 grid: left column along x, the rest along y
    tokens = np.array([[1.0, 0], [0, 1.0], [0, 2.0], [3.0, 0], [0, 1.0], [0, 1.0]])
    maps = query_maps(tokens, (2, 3), [0, 1])
    assert maps.shape == (2, 2, 3)
    np.testing.assert_allclose(maps[0], [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(maps[1], [[0, 1, 1], [0, 1, 1]])
    with pytest.raises(ValueError, match="patch grid"):
        query_maps(tokens, (2, 2), [0])
    with pytest.raises(ValueError, match="outside"):
        query_maps(tokens, (2, 3), [6])
