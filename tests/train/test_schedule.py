"""LR schedule: the paper's warmup + cosine with the fixed period quirk."""

from __future__ import annotations

import math

import pytest

from densebench.train.schedule import cosine_period, lr_at


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [(0, 0.0), (1, 0.5e-3), (2, 1e-3), (51, 0.5e-3), (100, 0.0), (149, 0.5e-3)],
)
def test_paper_schedule(epoch, expected):
    lr = lr_at(epoch, 1e-3, warmup=2, t_max=100)
    assert lr == pytest.approx(expected, abs=1e-12)


def test_paper_formula_between_warmup_and_period():
    for k in (3, 17, 77, 120):
        expected = 0.5e-3 * (1 + math.cos(math.pi * (k - 2) / 98))
        assert lr_at(k, 1e-3, 2, 100) == pytest.approx(expected)


def test_period_per_fix():
    assert cosine_period(150, 100, period_is_epochs=False) == 100
    assert cosine_period(150, 100, period_is_epochs=True) == 150
    assert lr_at(149, 1e-3, 2, 150) < 1e-6  # corrected: annealed at the end
