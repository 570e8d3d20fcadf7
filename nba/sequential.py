"""Anytime-valid confidence sequences for the promotion gate.

A fixed-sample confidence interval is valid for one look. The gate looks after every
round, and a challenger that is no better will, by chance, once poke its 95% lower bound
above zero if it is looked at often enough. A *confidence sequence* holds at every
sample size at once: the chance that it *ever* misses the true value, over all looks, is
at most ``alpha``. So the gate may look as often as it likes.

The boundary is the two-sided normal-mixture boundary (Robbins' mixture; Howard,
Ramdas, McAuliffe & Sekhon 2021, eq. 14), applied to the running mean with the running
standard deviation as in the *asymptotic confidence sequence* of Waudby-Smith, Arnold,
Wu, McAuliffe & Ramdas (2023, "Time-uniform central limit theory and asymptotic
confidence sequences", Theorem 2.2). Its coverage is asymptotic (no bound on the outcomes
is needed, which DR terms with importance weights lack), so it is tested against the
coverage it promises in ``tests/unit/test_sequential.py``. The formula is that of
``confseq``'s ``normal_mixture_bound`` (``uniform_boundaries.h``, by the method's
authors); the package itself is not a dependency because it builds a C++ extension
against Boost with a pybind11 pin older than Python 3.11 (README, "The promotion gate").

``rho`` tunes where the boundary is tightest: at ``planned_n`` observations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from nba.exceptions import NBAError

Verdict = Literal["promote", "retire", "continue"]


@dataclass(frozen=True)
class ConfidenceSequence:
    """The confidence sequence of a mean after ``n`` observations."""

    n: int
    mean: float
    low: float
    high: float
    alpha: float


def mixture_radius(n: int, sd: float, alpha: float, planned_n: int) -> float:
    """Half-width of the two-sided normal-mixture confidence sequence of a mean of ``n``
    observations with standard deviation ``sd``: ``sd * B(n) / n`` where
    ``B(v) = sqrt((v + rho) (log(1 + v / rho) + 2 log(1 / alpha)))`` in standardised units
    and ``rho`` is chosen so that the boundary is tightest at ``planned_n``."""
    if n <= 0:
        return math.inf
    if not 0 < alpha < 1:
        raise NBAError(f"alpha must be between 0 and 1, got {alpha}")
    log_inv = math.log(1 / alpha)
    rho = max(planned_n, 1) / (2 * log_inv + math.log(1 + 2 * log_inv))
    return sd * math.sqrt((n + rho) * (math.log(1 + n / rho) + 2 * log_inv)) / n


def confidence_sequence(
    terms: np.ndarray, alpha: float = 0.05, planned_n: int = 10_000
) -> ConfidenceSequence:
    """The anytime-valid confidence sequence, at ``len(terms)`` observations, of the mean
    of ``terms`` (one per decision, e.g. the per-decision DR gain)."""
    x = np.asarray(terms, dtype=float)
    n = len(x)
    if n < 2:
        return ConfidenceSequence(n, float(x.mean()) if n else 0.0, -math.inf, math.inf, alpha)
    mean = float(x.mean())
    r = mixture_radius(n, float(x.std(ddof=1)), alpha, planned_n)
    return ConfidenceSequence(n, mean, mean - r, mean + r, alpha)


def running_sequence(
    terms: np.ndarray, looks: list[int], alpha: float = 0.05, planned_n: int = 10_000
) -> list[ConfidenceSequence]:
    """The confidence sequence after each of ``looks`` (numbers of observations)."""
    x = np.asarray(terms, dtype=float)
    return [confidence_sequence(x[:n], alpha, planned_n) for n in looks]


def difference_sequence(
    a: np.ndarray, b: np.ndarray, alpha: float = 0.05, planned_n: int = 10_000
) -> ConfidenceSequence:
    """Mean of ``a`` minus mean of ``b`` from two independent samples (e.g. the rewards of
    the challenger's and the champion's customers): each side's sequence at ``alpha / 2``,
    so the difference's holds at ``alpha`` (a union bound)."""
    sa = confidence_sequence(a, alpha / 2, planned_n)
    sb = confidence_sequence(b, alpha / 2, planned_n)
    return ConfidenceSequence(
        min(sa.n, sb.n), sa.mean - sb.mean, sa.low - sb.high, sa.high - sb.low, alpha
    )


def verdict(
    gain: ConfidenceSequence, min_gain: float, looks: int, max_looks: int | None
) -> Verdict:
    """Promote when the gain's lower bound is above ``min_gain``; retire when its upper
    bound is below it, or when ``max_looks`` looks have not decided; else keep looking."""
    if gain.low > min_gain:
        return "promote"
    if gain.high < min_gain or (max_looks is not None and looks >= max_looks):
        return "retire"
    return "continue"
