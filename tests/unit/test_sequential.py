"""The confidence sequence keeps the coverage it promises over repeated looks, where a
fixed-sample interval looked at as often does not."""

import numpy as np
import pytest

from nba.exceptions import NBAError
from nba.sequential import (
    confidence_sequence,
    difference_sequence,
    mixture_radius,
    running_sequence,
    verdict,
)

LOOKS = [2_000 * k for k in range(1, 9)]


def _skewed(rng: np.random.Generator, n: int) -> np.ndarray:
    """Like a DR gain term: mostly a small cost, rarely a large importance-weighted value."""
    accepted = rng.random(n) < 0.1
    weight = rng.choice([1.0, 3.0, 10.0], size=n, p=[0.7, 0.2, 0.1])
    return accepted * weight * rng.exponential(50, size=n) - 20


SKEWED_MEAN = 0.1 * (0.7 + 0.6 + 1.0) * 50 - 20


def _ever_missed(rng, draw, mean, runs=600):
    seq = fixed = 0
    for _ in range(runs):
        x = draw(rng, LOOKS[-1])
        seq += any(c.low > mean or c.high < mean for c in running_sequence(x, LOOKS, 0.05, 8_000))
        fixed += any(
            abs(x[:n].mean() - mean) > 1.96 * x[:n].std(ddof=1) / np.sqrt(n) for n in LOOKS
        )
    return seq / runs, fixed / runs


@pytest.mark.parametrize(
    "draw,mean",
    [
        (lambda rng, n: rng.normal(0.0, 1.0, n), 0.0),
        (lambda rng, n: (rng.random(n) < 0.1).astype(float), 0.1),
        (_skewed, SKEWED_MEAN),
    ],
    ids=["normal", "rare-binary", "skewed"],
)
def test_coverage_over_eight_looks(draw, mean):
    seq, fixed = _ever_missed(np.random.default_rng(7), draw, mean)
    # 600 runs: a true 5% rate is under 7.5% with probability > 99%.
    assert seq <= 0.075
    # The plain 95% interval, looked at 8 times, misses far more often than 5%.
    assert fixed > 0.10
    assert fixed > 2 * seq


def test_sequence_shrinks_and_contains_mean():
    x = np.random.default_rng(0).normal(3.0, 2.0, 50_000)
    seqs = running_sequence(x, [1_000, 10_000, 50_000], 0.05, 10_000)
    widths = [c.high - c.low for c in seqs]
    assert widths[0] > widths[1] > widths[2] > 0
    assert all(c.low < 3.0 < c.high for c in seqs)
    # Wider than a one-look 95% interval at the same n: the price of looking any time.
    assert widths[1] / 2 > 1.96 * 2.0 / np.sqrt(10_000)


def test_radius_is_tightest_near_planned_n():
    # Scaled by sqrt(n), the radius is smallest around the planned sample size.
    scaled = {n: mixture_radius(n, 1.0, 0.05, 10_000) * np.sqrt(n) for n in (100, 10_000, 10**6)}
    assert scaled[10_000] < scaled[100] and scaled[10_000] < scaled[10**6]
    with pytest.raises(NBAError):
        mixture_radius(10, 1.0, 1.5, 100)


def test_difference_and_verdicts():
    rng = np.random.default_rng(3)
    better = difference_sequence(rng.normal(1.0, 1, 20_000), rng.normal(0.0, 1, 20_000))
    assert better.low > 0 and verdict(better, 0.0, 1, 8) == "promote"
    worse = confidence_sequence(rng.normal(-1.0, 1, 20_000))
    assert worse.high < 0 and verdict(worse, 0.0, 1, 8) == "retire"
    unsure = confidence_sequence(rng.normal(0.0, 1, 500))
    assert verdict(unsure, 0.0, 3, 8) == "continue"
    assert verdict(unsure, 0.0, 8, 8) == "retire"  # out of looks
    assert confidence_sequence(np.array([1.0])).low == -np.inf
