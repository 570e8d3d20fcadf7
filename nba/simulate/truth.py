"""The simulator's ground truth of what each action changes, by Monte Carlo rollouts.

For every held-out contact, the customer's hidden state at that moment is rolled forward
``horizon_days`` days, ``rollouts`` times, with the world's own weekly dynamics
(:mod:`nba.simulate.dynamics`) and no further actions. What an action can change is one of
a few *branches*: nothing changes (declined, no response, an accepted e-mail request or
product), an accepted retention gesture, an accepted installment offer, or a declined
product offer that annoys or angers the customer. All branches of a contact share the same random
numbers (common random numbers), so the difference between two actions carries only the
effect, not the noise of two separate draws; acceptance itself is averaged exactly
(``p x accepted branch + (1 - p) x the rest``), not drawn.

The long-term outcome is the engine's: the revenue of the contracts held at the contact,
over the horizon (their monthly fees x the days the customer stays / 30.44).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nba.catalog import Catalog
from nba.simulate import dynamics as dyn

WEEK = 7 * 86400.0
DAY = 86400.0
MONTH_DAYS = 30.44
DECLINE_SHARE = 0.65
"""Share of the offers not accepted that are declined (the rest get no response)."""
_CHUNK = 2_000
"""Contacts rolled out together (memory: about 40 bytes x rollouts x 4 branches each)."""


@dataclass
class HeldOut:
    """Held-out contacts of one week: hidden state at each contact (arrays of shape
    ``(m,)``), contact times and the week's start (seconds), fees of the contracts held,
    and the true acceptance probabilities, shape ``(m, n_actions)``."""

    state: dyn.State
    t: np.ndarray
    week_start: float
    fees: np.ndarray
    p_accept: np.ndarray


@dataclass
class Outcomes:
    """Per contact and action (``(n, n_actions + 1)``, last column: nothing): the
    expected revenue over the horizon and the Monte Carlo standard error of its
    difference from nothing's."""

    revenue: np.ndarray
    se_vs_nothing: np.ndarray


def expected_outcomes(
    held_out: list[HeldOut], catalog: Catalog, horizon_days: int, rollouts: int, seed: int
) -> Outcomes:
    """Expected long-term revenue of every action (and nothing) at every held-out contact."""
    families = np.array([a.family for a in catalog.actions])
    rng = np.random.default_rng([seed, 14])
    revenue, se = [], []
    for week in held_out:
        for lo in range(0, week.t.shape[0], _CHUNK):
            rows = slice(lo, lo + _CHUNK)
            part = HeldOut(
                week.state.take(np.arange(week.t.shape[0])[rows]),
                week.t[rows],
                week.week_start,
                week.fees[rows],
                week.p_accept[rows],
            )
            r, s = _contact_outcomes(part, families, horizon_days, rollouts, rng)
            revenue.append(r)
            se.append(s)
    k = len(catalog.actions) + 1
    if not revenue:
        return Outcomes(np.empty((0, k)), np.empty((0, k)))
    return Outcomes(np.vstack(revenue), np.vstack(se))


def _contact_outcomes(
    h: HeldOut,
    families: np.ndarray,
    horizon_days: int,
    rollouts: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    m, r = h.t.shape[0], rollouts
    base = h.state.take(np.repeat(np.arange(m), r), np.float32)  # bandwidth: half of float64
    every = np.arange(m * r)
    kept = base.copy()
    dyn.retention_accepted(kept, every)
    eased = base.copy()
    dyn.installment_accepted(eased, every, np.asarray(rng.random(m * r, dtype=np.float32)))
    angered = base.copy()
    dyn.product_declined(angered, every)
    branches = [base, kept, eased, angered]
    y = _rollout(branches, np.repeat(h.t, r), h.week_start, horizon_days, rng)
    fees = np.repeat(h.fees, r)
    y = [(yb * fees).reshape(m, r) for yb in y]
    y_base, y_kept, y_eased, y_angered = y
    k = families.shape[0]
    revenue = np.empty((m, k + 1))
    se = np.zeros((m, k + 1))
    revenue[:, k] = y_base.mean(axis=1)
    for j in range(k):
        p = h.p_accept[:, j : j + 1]
        accepted = {"retention_gesture": y_kept, "installment_offer": y_eased}.get(
            str(families[j]), y_base
        )
        declined = y_angered if families[j] == "product_offer" else y_base
        diff = p * (accepted - y_base) + (1 - p) * DECLINE_SHARE * (declined - y_base)
        revenue[:, j] = revenue[:, k] + diff.mean(axis=1)
        se[:, j] = diff.std(axis=1, ddof=1) / np.sqrt(r)
    return revenue, se


def _rollout(
    branches: list[dyn.State],
    t: np.ndarray,
    week_start: float,
    horizon_days: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """Months of the horizon each rollout stays (its revenue / monthly fees), per branch.

    Week 0 is the contact's own week (churn after the contact, as in the world's run);
    every later week starts with the latent step, then cancellation requests, then churn.
    All branches use the same uniforms.
    """
    n = t.shape[0]
    end = t + horizon_days * DAY
    left = [np.full(n, np.nan) for _ in branches]  # when each rollout leaves
    weeks = int(np.ceil(horizon_days / 7.0)) + 1
    for w in range(weeks):
        start = week_start + w * WEEK
        if w > 0:
            u: list[np.ndarray] = [np.asarray(rng.random(n, dtype=np.float32)) for _ in range(6)]
            for s in branches:
                dyn.week_step(s, u[0], u[1], u[2], u[3])
                asked = u[4] < 1.0 - np.exp(-dyn.cancellation_rate(s.dissat))
                dyn.ask_or_reconsider(s, asked, u[5])
        u_churn = rng.random(n, dtype=np.float32)
        u_when = rng.random(n, dtype=np.float32)
        lo = np.maximum(start, t)
        when = lo + u_when * (start + WEEK - lo)
        for s, gone in zip(branches, left, strict=True):
            new = np.isnan(gone) & (u_churn < dyn.churn_hazard(s))
            gone[new] = when[new]
        if start > end.max():
            break
    out = []
    for gone in left:
        stay = np.where(np.isnan(gone), end, np.minimum(gone, end)) - t
        out.append(stay / (MONTH_DAYS * DAY))
    return out
