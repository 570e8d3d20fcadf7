"""One action per contact under capacity and budget limits, by linear programming.

The call centre can make only so many installment calls; the retention budget is finite.
Given each contact's ranked candidates (the ``recommendations`` rows), choose at most one
per contact to maximise the total expected net value (``priority``) subject to:

- capacity ``action_id=N``: at most N contacts get that action;
- budget ``family=AMOUNT``: the expected spend of the family's chosen actions, propensity x
  the action's cost (what is paid out if the customer accepts), is at most AMOUNT.

A million contacts make an LP of millions of columns that HiGHS alone needs tens of
minutes for, but it has only a handful of coupling rows: one per limit. So it is solved by
its Lagrangian dual, a convex function of one price per limit. Given prices, every contact
independently takes the row with the best value minus priced usage (a compiled pass over
the rows); each such pass is a cut of the dual, and HiGHS solves the small cutting-plane
LP over the prices (Kelley's method, i.e. Dantzig-Wolfe on the LP) until the bounds meet.
The prices' choice is then made feasible (contacts whose choice costs least to change move
to their best unlimited row) and the room left is filled greedily, so every limit holds.
The best dual value is an upper bound on any allocation; the result is also compared with
greedy top-1 under the same limits (contacts by their top-1 value, each gets its top-1,
or its best action that still fits once a limit is used up) and never falls below it.
Without limits the result is every contact's top-1.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numba
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
    """An upper bound on the value of any allocation under the limits (the LP's dual)."""
    method: str
    usage: dict[str, tuple[float, float]]
    """Per limit (``capacity action`` / ``budget family``): (used, limit)."""
    seconds: float
    iterations: int = 0
    """Cutting-plane iterations of the dual."""


# Relative tolerance of the limits (sums of floats) and of the dual's convergence.
_ROOM_TOL = 1e-9
_GAP_TOL = 1e-7
_MAX_ITERATIONS = 500


def allocate(
    contact: np.ndarray,
    action: np.ndarray,
    family: np.ndarray,
    value: np.ndarray,
    spend: np.ndarray,
    limits: Limits,
) -> Allocation:
    """Choose at most one candidate row per contact.

    ``contact`` holds contact indices ``0..n-1``; ``action``/``family`` the row's action id
    and family; ``value`` its expected net value; ``spend`` its expected cost, propensity x
    cost. Rows of a contact that tie keep their order (the first wins).
    """
    started = time.perf_counter()
    contact = np.asarray(contact, dtype=np.int64)
    value = np.asarray(value, dtype=np.float64)
    n = int(contact.max()) + 1 if contact.size else 0
    # Work in contact order (rows of one contact contiguous); map back at the end.
    order = np.argsort(contact, kind="stable")
    starts = np.searchsorted(contact[order], np.arange(n + 1)).astype(np.int64)
    v = value[order]
    no_limits = np.zeros((0, v.size))
    first = _choose(starts, v, no_limits, np.zeros(0))[0]
    top1 = _total(v, first)
    if not limits:
        return Allocation(
            _unsort(first, order),
            top1,
            top1,
            top1,
            top1,
            "no limits: top-1",
            {},
            time.perf_counter() - started,
        )
    use = _usage_matrix(
        np.asarray(action)[order],
        np.asarray(family)[order],
        np.asarray(spend, dtype=np.float64)[order],
        limits,
    )
    room = np.array([*map(float, limits.capacity.values()), *limits.budget.values()])
    slack = room * (1 + _ROOM_TOL) + _ROOM_TOL
    greedy = _greedy(starts, first, v, use, slack)
    prices, bound, iterations = _dual(starts, v, use, room)
    chosen = _choose(starts, v, use, prices)[0]
    chosen = _repair(starts, chosen, v, use, prices, slack)
    chosen = _fill(starts, chosen, v, use, slack)
    method = f"LP dual (HiGHS cutting planes, {iterations} iterations), repaired and filled"
    value_of, greedy_value = _total(v, chosen), _total(v, greedy)
    if value_of < greedy_value:
        chosen, value_of = greedy, greedy_value
        method = "greedy (the LP's rounding came out lower)"
    used = _used(use, chosen)
    if np.any(used > slack):  # never expected: repair and fill check every step
        raise AllocationError(f"internal error: the allocation breaks a limit ({used} > {room})")
    names = [f"capacity {a}" for a in limits.capacity] + [f"budget {f}" for f in limits.budget]
    return Allocation(
        _unsort(chosen, order),
        value_of,
        greedy_value,
        top1,
        max(bound, value_of),
        method,
        {k: (float(u), float(r)) for k, u, r in zip(names, used, room, strict=True)},
        time.perf_counter() - started,
        iterations,
    )


def _unsort(chosen: np.ndarray, order: np.ndarray) -> np.ndarray:
    return np.where(chosen >= 0, order[np.maximum(chosen, 0)], -1)


def _total(value: np.ndarray, chosen: np.ndarray) -> float:
    return float(value[chosen[chosen >= 0]].sum())


def _used(use: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    return use[:, chosen[chosen >= 0]].sum(axis=1)


def _usage_matrix(
    action: np.ndarray, family: np.ndarray, spend: np.ndarray, limits: Limits
) -> np.ndarray:
    """Shape ``(n_limits, n_rows)``: what each row uses of each limit."""
    rows = [np.where(action == a, 1.0, 0.0) for a in limits.capacity]
    rows += [np.where(family == f, spend, 0.0) for f in limits.budget]
    return np.ascontiguousarray(np.vstack(rows))


@numba.njit(cache=True, nogil=True)
def _choose(
    starts: np.ndarray, value: np.ndarray, use: np.ndarray, prices: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """Per contact the row of best priced value ``value - prices @ use`` if positive, else
    nothing (-1). Returns (choice, sum of priced values, usage)."""
    k_n = use.shape[0]
    chosen = np.full(starts.size - 1, -1, dtype=np.int64)
    usage = np.zeros(k_n)
    priced_total = 0.0
    for c in range(starts.size - 1):
        best, best_priced = -1, 0.0
        for r in range(starts[c], starts[c + 1]):
            priced = value[r]
            for k in range(k_n):
                priced -= prices[k] * use[k, r]
            if priced > best_priced:
                best, best_priced = r, priced
        chosen[c] = best
        if best >= 0:
            priced_total += best_priced
            for k in range(k_n):
                usage[k] += use[k, best]
    return chosen, priced_total, usage


def _dual(
    starts: np.ndarray, value: np.ndarray, use: np.ndarray, room: np.ndarray
) -> tuple[np.ndarray, float, int]:
    """Minimise the Lagrangian dual ``D(p) = sum_c max(0, max_r v_r - p.use_r) + p.room``
    over prices ``p >= 0`` by Kelley's cutting planes; each master is a tiny LP for HiGHS.
    Returns (best prices, best dual value = an upper bound, iterations)."""
    from scipy.optimize import linprog

    k_n = room.size
    # Beyond these prices no row that uses the limit is worth choosing.
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(use > 0, np.maximum(value, 0) / np.where(use > 0, use, 1), 0.0)
    cap = ratio.max(axis=1) * 1.01 + 1e-9 if ratio.size else np.zeros(k_n)
    cuts_a: list[np.ndarray] = []
    cuts_b: list[float] = []
    prices = np.zeros(k_n)
    best_prices, upper, lower = prices, np.inf, -np.inf
    iterations = 0
    while iterations < _MAX_ITERATIONS:
        iterations += 1
        _, priced_total, usage = _choose(starts, value, use, prices)
        dual = priced_total + float(prices @ room)
        if dual < upper:
            best_prices, upper = prices, dual
        if upper - lower <= _GAP_TOL * max(abs(upper), 1.0):
            break
        # D(q) >= priced_total + prices.usage - q.usage + q.room for all q: a cut.
        # As rows of the master LP over x = (q, t): (room - usage).q - t <= -(value part).
        cuts_a.append(np.append(room - usage, -1.0))
        cuts_b.append(-(priced_total + float(prices @ usage)))
        res = linprog(
            np.append(np.zeros(k_n), 1.0),
            A_ub=np.vstack(cuts_a),
            b_ub=np.array(cuts_b),
            bounds=[*[(0.0, float(c)) for c in cap], (None, None)],
            method="highs",
        )
        if res.status != 0:
            raise AllocationError(f"the LP solver failed on the dual's master: {res.message}")
        prices, lower = res.x[:k_n], float(res.fun)
    return best_prices, upper, iterations


@numba.njit(cache=True, nogil=True)
def _switch_costs(
    starts: np.ndarray,
    chosen: np.ndarray,
    value: np.ndarray,
    use: np.ndarray,
    prices: np.ndarray,
    over: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For contacts whose row uses an over-full limit: their best row that uses none
    (or nothing) and the priced value lost by moving there."""
    k_n = use.shape[0]
    n = starts.size - 1
    alternative = np.full(n, -2, dtype=np.int64)  # -2: not affected
    loss = np.full(n, np.inf)
    for c in range(n):
        r0 = chosen[c]
        if r0 < 0:
            continue
        hit = False
        for k in range(k_n):
            if over[k] and use[k, r0] > 0:
                hit = True
        if not hit:
            continue
        own = value[r0]
        for k in range(k_n):
            own -= prices[k] * use[k, r0]
        best, best_priced = -1, 0.0
        for r in range(starts[c], starts[c + 1]):
            ok = True
            priced = value[r]
            for k in range(k_n):
                priced -= prices[k] * use[k, r]
                if over[k] and use[k, r] > 0:
                    ok = False
            if ok and priced > best_priced:
                best, best_priced = r, priced
        alternative[c] = best
        loss[c] = own - best_priced
    return alternative, loss


@numba.njit(cache=True, nogil=True)
def _fits(use: np.ndarray, usage: np.ndarray, slack: np.ndarray, r0: int, r1: int) -> bool:
    """Whether moving a contact from row ``r0`` to ``r1`` (-1: nothing) keeps every limit
    whose usage grows within its room."""
    for k in range(use.shape[0]):
        extra = (use[k, r1] if r1 >= 0 else 0.0) - (use[k, r0] if r0 >= 0 else 0.0)
        if extra > 0 and usage[k] + extra > slack[k]:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _move(use: np.ndarray, usage: np.ndarray, r0: int, r1: int) -> None:
    for k in range(use.shape[0]):
        usage[k] += (use[k, r1] if r1 >= 0 else 0.0) - (use[k, r0] if r0 >= 0 else 0.0)


@numba.njit(cache=True, nogil=True)
def _apply_switches(
    order: np.ndarray,
    chosen: np.ndarray,
    alternative: np.ndarray,
    use: np.ndarray,
    usage: np.ndarray,
    slack: np.ndarray,
    over: np.ndarray,
) -> None:
    """Move contacts (cheapest first) to their alternative while a limit they use is over."""
    k_n = use.shape[0]
    for c in order:
        r0 = chosen[c]
        needed = False
        for k in range(k_n):
            if over[k] and use[k, r0] > 0 and usage[k] > slack[k]:
                needed = True
        if not needed:
            continue
        r1 = alternative[c]
        if r1 >= 0 and not _fits(use, usage, slack, r0, r1):
            r1 = -1
        _move(use, usage, r0, r1)
        chosen[c] = r1


def _repair(
    starts: np.ndarray,
    chosen: np.ndarray,
    value: np.ndarray,
    use: np.ndarray,
    prices: np.ndarray,
    slack: np.ndarray,
) -> np.ndarray:
    """Make the prices' choice feasible: near the optimal prices, contacts tie between a
    limited row and another; those that lose least by moving give up the limited row."""
    chosen = chosen.copy()
    for _ in range(use.shape[0] + 1):  # a move can only add use to limits not yet over
        usage = _used(use, chosen)
        over = usage > slack
        if not over.any():
            return chosen
        alternative, loss = _switch_costs(starts, chosen, value, use, prices, over)
        affected = np.flatnonzero(alternative > -2)
        order = affected[np.argsort(loss[affected], kind="stable")]
        _apply_switches(order, chosen, alternative, use, usage, slack, over)
    usage = _used(use, chosen)
    if np.any(usage > slack):
        raise AllocationError("internal error: could not bring the allocation within its limits")
    return chosen


@numba.njit(cache=True, nogil=True)
def _improve(
    rows: np.ndarray,
    row_contact: np.ndarray,
    chosen: np.ndarray,
    value: np.ndarray,
    use: np.ndarray,
    usage: np.ndarray,
    slack: np.ndarray,
) -> None:
    """Walk candidate rows by gain; switch a contact to the row if it is better and fits."""
    for r in rows:
        c = row_contact[r]
        r0 = chosen[c]
        if r0 == r or (r0 >= 0 and value[r] <= value[r0]) or value[r] <= 0:
            continue
        if _fits(use, usage, slack, r0, r):
            _move(use, usage, r0, r)
            chosen[c] = r


def _fill(
    starts: np.ndarray,
    chosen: np.ndarray,
    value: np.ndarray,
    use: np.ndarray,
    slack: np.ndarray,
) -> np.ndarray:
    """Spend the room left: better rows than the current choice, biggest gain first."""
    chosen = chosen.copy()
    row_contact = np.repeat(np.arange(starts.size - 1), np.diff(starts))
    current = np.where(chosen >= 0, value[np.maximum(chosen, 0)], 0.0)[row_contact]
    rows = np.flatnonzero(value > current)
    rows = rows[np.argsort(current[rows] - value[rows], kind="stable")]
    _improve(rows, row_contact, chosen, value, use, _used(use, chosen), slack)
    return chosen


@numba.njit(cache=True, nogil=True)
def _greedy_walk(
    order: np.ndarray,
    starts: np.ndarray,
    value: np.ndarray,
    use: np.ndarray,
    slack: np.ndarray,
) -> np.ndarray:
    k_n = use.shape[0]
    usage = np.zeros(k_n)
    out = np.full(starts.size - 1, -1, dtype=np.int64)
    for c in order:
        best = -1
        for r in range(starts[c], starts[c + 1]):
            if value[r] <= 0 or (best >= 0 and value[r] <= value[best]):
                continue
            if _fits(use, usage, slack, -1, r):
                best = r
        if best >= 0:
            out[c] = best
            _move(use, usage, -1, best)
    return out


def _greedy(
    starts: np.ndarray,
    first: np.ndarray,
    value: np.ndarray,
    use: np.ndarray,
    slack: np.ndarray,
) -> np.ndarray:
    """Contacts by their top-1 value, best first; each gets its best action that still
    fits (its top-1 unless a limit is used up)."""
    has = np.flatnonzero(first >= 0)
    order = has[np.argsort(-value[first[has]], kind="stable")]
    return _greedy_walk(order, starts, value, use, slack)
