"""Off-policy evaluation: what would a policy have earned on the contacts a log holds?

The vocabulary is Open Bandit Pipeline's (Saito et al.), without the dependency: a log of
``n`` rounds holds, per round, the ``action`` the logging policy took (an index into the
catalog), the ``reward`` observed, and the ``pscore``, the probability with which the
logging policy took that action. The policy to evaluate is given as ``action_dist``, shape
``(n, n_actions)``: its probability of each action in each round (one row sums to at most
1; the rest is "nothing", worth 0). ``estimated_rewards`` (same shape) is a reward model's
prediction q(x, a), used by the direct method and doubly robust.

Estimators of the policy value V = E[sum_a pi(a|x) r(x, a)]:

- **DM** (direct method): mean of sum_a pi(a|x) q(x, a); biased when q is.
- **IPW**: mean of w r with w = pi(a_i|x_i) / pscore_i; unbiased, high variance.
- **SNIPW**: sum(w r) / sum(w), self-normalised; slightly biased, far less variance.
- **DR** (doubly robust): DM + mean of w (r - q(x_i, a_i)); unbiased if either the
  propensities or q are right.

Every estimate comes with a bootstrap percentile confidence interval (rounds resampled
with replacement). :func:`compare` estimates the *gain* of one policy over another with
a paired bootstrap (the same resamples for both), which is what a promotion gate needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nba.exceptions import NBAError

ESTIMATORS = ("dm", "ipw", "snipw", "dr")


class OPEError(NBAError):
    """The log or the policy's distribution is malformed."""


@dataclass(frozen=True)
class BanditFeedback:
    action: np.ndarray
    """Index of the logged action per round, shape ``(n,)``."""
    reward: np.ndarray
    """Observed reward per round."""
    pscore: np.ndarray
    """Probability with which the logging policy chose the logged action (> 0)."""

    def __post_init__(self) -> None:
        n = len(self.action)
        if len(self.reward) != n or len(self.pscore) != n:
            raise OPEError(
                f"action, reward and pscore must have one value per round: "
                f"{n}, {len(self.reward)}, {len(self.pscore)}"
            )
        if n == 0:
            raise OPEError("the log is empty")
        bad = ~(np.asarray(self.pscore) > 0) | (np.asarray(self.pscore) > 1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise OPEError(
                f"pscore must be in (0, 1]: {int(bad.sum())} rounds are not, "
                f"e.g. round {i}: {self.pscore[i]!r}"
            )
        if not np.isfinite(np.asarray(self.reward, dtype=float)).all():
            raise OPEError("reward has missing or infinite values")

    @property
    def n_rounds(self) -> int:
        return len(self.action)


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    low: float
    high: float
    """Bootstrap percentile interval at ``level``."""
    level: float

    def __str__(self) -> str:
        return f"{self.estimator}: {self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"


def _check(feedback: BanditFeedback, *tables: np.ndarray | None) -> None:
    for t in tables:
        if t is None:
            continue
        if t.ndim != 2 or t.shape[0] != feedback.n_rounds:
            raise OPEError(
                f"expected shape (n_rounds={feedback.n_rounds}, n_actions), got {t.shape}"
            )
        if int(np.max(feedback.action)) >= t.shape[1] or int(np.min(feedback.action)) < 0:
            raise OPEError(f"logged action index out of range 0..{t.shape[1] - 1}")


def _terms(
    feedback: BanditFeedback, action_dist: np.ndarray, estimated_rewards: np.ndarray | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-round numerator and denominator of every estimator (the value is the ratio of
    their means), so a bootstrap only resamples sums."""
    rows = np.arange(feedback.n_rounds)
    a = np.asarray(feedback.action, dtype=np.int64)
    r = np.asarray(feedback.reward, dtype=float)
    w = action_dist[rows, a] / np.asarray(feedback.pscore, dtype=float)
    ones = np.ones_like(r)
    out = {"ipw": (w * r, ones), "snipw": (w * r, w)}
    if estimated_rewards is not None:
        dm = (action_dist * estimated_rewards).sum(axis=1)
        out["dm"] = (dm, ones)
        out["dr"] = (dm + w * (r - estimated_rewards[rows, a]), ones)
    return out


def dr_terms(
    feedback: BanditFeedback, action_dist: np.ndarray, estimated_rewards: np.ndarray
) -> np.ndarray:
    """Per decision, the DR term of the policy ``action_dist``: their mean is its DR value."""
    _check(feedback, action_dist, estimated_rewards)
    return np.asarray(_terms(feedback, action_dist, estimated_rewards)["dr"][0], dtype=float)


def dm_terms(action_dist: np.ndarray, estimated_rewards: np.ndarray) -> np.ndarray:
    """Per decision, the reward model's value of the policy's choice."""
    return np.asarray((action_dist * estimated_rewards).sum(axis=1), dtype=float)


def _ratio(num: np.ndarray, den: np.ndarray) -> float:
    d = float(den.sum())
    return float(num.sum()) / d if d > 0 else 0.0


@dataclass(frozen=True)
class Bootstrap:
    """How confidence intervals are drawn: resamples, level, random seed."""

    n_boot: int = 500
    level: float = 0.95
    seed: int = 0


DEFAULT_BOOTSTRAP = Bootstrap()


def estimate(
    feedback: BanditFeedback,
    action_dist: np.ndarray,
    estimated_rewards: np.ndarray | None = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> dict[str, Estimate]:
    """DM, IPW, SNIPW and DR estimates of the policy's value (DM and DR only with
    ``estimated_rewards``), each with a bootstrap confidence interval."""
    return _contrast(feedback, [(1.0, action_dist)], estimated_rewards, bootstrap)


def compare(
    feedback: BanditFeedback,
    challenger: np.ndarray,
    champion: np.ndarray,
    estimated_rewards: np.ndarray | None = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> dict[str, Estimate]:
    """The estimated gain V(challenger) - V(champion) per estimator, with a paired
    bootstrap interval: both policies are evaluated on the same resamples."""
    policies = [(1.0, challenger), (-1.0, champion)]
    return _contrast(feedback, policies, estimated_rewards, bootstrap)


def _contrast(
    feedback: BanditFeedback,
    policies: list[tuple[float, np.ndarray]],
    estimated_rewards: np.ndarray | None,
    bootstrap: Bootstrap,
) -> dict[str, Estimate]:
    """Per estimator: sum of sign x value over the policies, with its bootstrap interval."""
    _check(feedback, *(dist for _, dist in policies), estimated_rewards)
    terms = [_terms(feedback, dist, estimated_rewards) for _, dist in policies]
    names = [e for e in ESTIMATORS if e in terms[0]]
    vectors = [v for e in names for t in terms for v in t[e]]
    sums = _resampled_sums(feedback.n_rounds, bootstrap.n_boot, bootstrap.seed, vectors)
    tail = (1 - bootstrap.level) / 2
    result = {}
    column = 0
    for name in names:
        value, boot = 0.0, np.zeros(bootstrap.n_boot)
        for (sign, _), t in zip(policies, terms, strict=True):
            value += sign * _ratio(*t[name])
            boot += sign * _ratios(sums[:, column], sums[:, column + 1])
            column += 2
        low, high = np.quantile(boot, [tail, 1 - tail])
        result[name] = Estimate(name, value, float(low), float(high), bootstrap.level)
    return result


def _resampled_sums(
    n: int, n_boot: int, seed: int, vectors: list[np.ndarray], block: int = 64
) -> np.ndarray:
    """Sums of each per-round vector over ``n_boot`` bootstrap resamples of the rounds,
    shape ``(n_boot, len(vectors))``. A resample is a multinomial count per round, so its
    sums are one matrix product; resamples are drawn in blocks to bound memory."""
    rng = np.random.default_rng(seed)
    stacked = np.column_stack(vectors)
    out = np.empty((n_boot, stacked.shape[1]))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(float)
        out[start : start + size] = counts @ stacked
    return out


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)
