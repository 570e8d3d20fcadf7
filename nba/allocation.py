"""One action per contact under capacity and budget limits, by linear programming.

The call centre can make only so many installment calls; the retention budget is finite.
Given each contact's ranked candidates (the ``recommendations`` rows), choose at most one
per contact to maximise the total expected net value (``priority``) subject to:

- capacity ``action_id=N``: at most N contacts get that action;
- budget ``family=AMOUNT``: the expected spend of the family's chosen actions, propensity x
  the action's cost (what is paid out if the customer accepts), is at most AMOUNT.

The LP relaxation (SciPy's HiGHS) is solved on the contacts that touch a limit; with few
limits its optimum is integral but for at most one contact per limit. Those are rounded
down and the spare room is filled greedily, so every limit holds. The answer is compared
with greedy top-1 (contacts by their best value, each gets its top-1 if it still fits);
should rounding ever leave the LP below greedy, greedy's choice is kept, so the result is
never worse. Without limits the result is every contact's top-1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from nba.exceptions import NBAError

N = TypeVar("N", int, float)


class AllocationError(NBAError):
    """A limit is malformed or names an unknown action or family."""


@dataclass(frozen=True)
class Limits:
    capacity: dict[str, int] = field(default_factory=dict)
    budget: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.capacity or self.budget)


def parse_limits(
    capacity: list[str], budget: list[str], action_ids: set[str], families: set[str]
) -> Limits:
    """``["installment_plan_6m=500"]``, ``["retention_gesture=20000"]`` -> Limits."""
    caps = _parse("--capacity", capacity, action_ids, "action", int, "a whole number")
    budgets = _parse("--budget", budget, families, "family", float, "a number")
    return Limits(caps, budgets)


def _parse(
    option: str,
    texts: list[str],
    known: set[str],
    kind: str,
    convert: Callable[[str], N],
    what: str,
) -> dict[str, N]:
    limits: dict[str, N] = {}
    for text in texts:
        key, value = _split(option, text)
        if key not in known:
            raise AllocationError(f"{option} {text!r}: unknown {kind} {key!r} ({sorted(known)})")
        try:
            limits[key] = convert(value)
        except ValueError:
            raise AllocationError(f"{option} {text!r}: {value!r} is not {what}") from None
        if not limits[key] >= 0:  # also rejects NaN
            raise AllocationError(f"{option} {text!r}: must be {what} >= 0")
    return limits


def _split(option: str, text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise AllocationError(f"{option} {text!r}: expected NAME=NUMBER")
    return key.strip(), value.strip()


@dataclass
class Allocation:
    chosen: np.ndarray
    """Row index (into the candidates) chosen per contact, -1 for nothing."""
    value: float
    greedy_value: float
    top1_value: float
    lp_bound: float
    method: str
    usage: dict[str, tuple[float, float]]
    """Per limit (``capacity action`` / ``budget family``): (used, limit)."""
    seconds: float


def allocate(
    contact: np.ndarray,
    action: np.ndarray,
    family: np.ndarray,
    value: np.ndarray,
    spend: np.ndarray,
    limits: Limits,
) -> Allocation:
    """Choose at most one candidate row per contact.

    ``contact`` holds contact indices ``0..n-1`` (rows of a contact together, best first);
    ``action``/``family`` the row's action id and family; ``value`` its expected net value
    (> 0); ``spend`` its expected cost, propensity x cost.
    """
    started = time.perf_counter()
    n = int(contact.max()) + 1 if contact.size else 0
    first = np.full(n, -1, dtype=np.int64)
    if contact.size:
        order = np.argsort(-value, kind="stable")
        best = order[np.unique(contact[order], return_index=True)[1]]
        first[contact[best]] = best
    top1 = float(value[first[first >= 0]].sum())
    if not limits:
        return Allocation(
            first, top1, top1, top1, top1, "no limits: top-1", {}, time.perf_counter() - started
        )
    use = _usage_matrix(action, family, spend, limits)
    room = np.array([*map(float, limits.capacity.values()), *limits.budget.values()])
    greedy = _greedy_top1(first, value, use, room)
    lp, bound = _lp(contact, value, use, room, n, first)
    lp = _fill(lp, contact, value, use, room)
    value_of = {
        "lp": float(value[lp[lp >= 0]].sum()),
        "greedy": float(value[greedy[greedy >= 0]].sum()),
    }
    method = "LP (HiGHS), rounded and filled"
    chosen = lp
    if value_of["lp"] < value_of["greedy"]:
        chosen, method = greedy, "greedy top-1 (the rounded LP came out lower)"
    used = use[:, chosen[chosen >= 0]].sum(axis=1) if use.shape[0] else np.zeros(0)
    names = [f"capacity {a}" for a in limits.capacity] + [f"budget {f}" for f in limits.budget]
    return Allocation(
        chosen,
        float(value[chosen[chosen >= 0]].sum()),
        value_of["greedy"],
        top1,
        bound,
        method,
        {k: (float(u), float(r)) for k, u, r in zip(names, used, room, strict=True)},
        time.perf_counter() - started,
    )


def _usage_matrix(
    action: np.ndarray, family: np.ndarray, spend: np.ndarray, limits: Limits
) -> np.ndarray:
    """Shape ``(n_limits, n_rows)``: what each row uses of each limit."""
    rows = [np.where(action == a, 1.0, 0.0) for a in limits.capacity]
    rows += [np.where(family == f, spend, 0.0) for f in limits.budget]
    return np.vstack(rows)


def _fits(used: np.ndarray, need: np.ndarray, room: np.ndarray) -> bool:
    return bool(np.all(used + need <= room * (1 + 1e-12) + 1e-9))


def _greedy_top1(
    first: np.ndarray, value: np.ndarray, use: np.ndarray, room: np.ndarray
) -> np.ndarray:
    """Contacts by their top-1 value, best first; each gets its top-1 if it still fits."""
    out = np.full(first.size, -1, dtype=np.int64)
    has = np.flatnonzero(first >= 0)
    free = ~use[:, first[has]].any(axis=0)
    out[has[free]] = first[has[free]]  # top-1 touches no limit: always fits
    used = np.zeros(room.size)
    tied = has[~free]
    for c in tied[np.argsort(-value[first[tied]], kind="stable")].tolist():
        need = use[:, first[c]]
        if _fits(used, need, room):
            out[c] = first[c]
            used += need
    return out


def _lp(
    contact: np.ndarray,
    value: np.ndarray,
    use: np.ndarray,
    room: np.ndarray,
    n: int,
    first: np.ndarray,
) -> tuple[np.ndarray, float]:
    """The LP on contacts with a candidate under a limit; integral choices kept, fractional
    contacts left open. Returns (choice per contact, LP optimum incl. the fixed contacts)."""
    from scipy import sparse
    from scipy.optimize import linprog

    limited_row = np.asarray(use.any(axis=0), dtype=bool)
    touched = np.zeros(n, dtype=bool)
    touched[contact[limited_row]] = True
    chosen = np.where(touched, -1, first)
    fixed_value = float(value[chosen[chosen >= 0]].sum())
    # Per touched contact: its limited rows plus its best unlimited row (which dominates
    # the other unlimited ones).
    rows = np.flatnonzero(touched[contact])
    free_rows = rows[~limited_row[rows]]
    order = free_rows[np.argsort(-value[free_rows], kind="stable")]
    best_free = order[np.unique(contact[order], return_index=True)[1]]
    keep = np.concatenate([rows[limited_row[rows]], best_free])
    if keep.size == 0:
        return chosen, fixed_value
    var_contact = np.unique(contact[keep], return_inverse=True)[1]
    m = int(var_contact.max()) + 1
    one_each = sparse.csr_matrix(
        (np.ones(keep.size), (var_contact, np.arange(keep.size))), shape=(m, keep.size)
    )
    a_ub = sparse.vstack([one_each, sparse.csr_matrix(use[:, keep])]).tocsr()
    b_ub = np.concatenate([np.ones(m), room])
    res = linprog(-value[keep], A_ub=a_ub, b_ub=b_ub, bounds=(0, 1), method="highs")
    if res.status != 0:
        raise AllocationError(f"the LP solver failed: {res.message}")
    y = res.x
    whole = y > 1 - 1e-7
    chosen[contact[keep[whole]]] = keep[whole]
    return chosen, fixed_value - float(res.fun)


def _fill(
    chosen: np.ndarray, contact: np.ndarray, value: np.ndarray, use: np.ndarray, room: np.ndarray
) -> np.ndarray:
    """Give open contacts their best candidate that still fits, best values first."""
    out = chosen.copy()
    taken = out[out >= 0]
    used = use[:, taken].sum(axis=1)
    if np.any(used > room * (1 + 1e-12) + 1e-9):  # never expected: the LP respects limits
        raise AllocationError("the LP's integral part breaks a limit")
    open_rows = np.flatnonzero(out[contact] < 0)
    for r in open_rows[np.argsort(-value[open_rows], kind="stable")].tolist():
        c = contact[r]
        if out[c] >= 0:
            continue
        need = use[:, r]
        if _fits(used, need, room):
            out[c] = r
            used += need
    return out
