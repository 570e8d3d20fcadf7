"""Allocation under capacity and budget limits against exact solvers on small instances."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from nba.allocation import AllocationError, Limits, allocate, parse_limits

ACTIONS = np.array(["plan", "gesture_a", "gesture_b", "offer"])
FAMILIES = np.array(["installment", "retention", "retention", "product"])
COST = np.array([0.0, 30.0, 80.0, 0.0])


def instance(n_contacts: int, seed: int) -> dict[str, np.ndarray]:
    """Each contact gets 1-3 distinct actions with random values and spends, best first."""
    rng = np.random.default_rng(seed)
    contact, action, value = [], [], []
    for c in range(n_contacts):
        k = int(rng.integers(1, 4))
        picked = rng.choice(len(ACTIONS), size=k, replace=False)
        vals = np.sort(rng.uniform(1, 100, size=k))[::-1]
        contact += [c] * k
        action += picked.tolist()
        value += vals.tolist()
    a = np.array(action)
    propensity = rng.uniform(0.05, 0.9, size=a.size)
    return {
        "contact": np.array(contact),
        "action": ACTIONS[a],
        "family": FAMILIES[a],
        "value": np.array(value),
        "spend": propensity * COST[a],
    }


def usage_matrix(inst: dict[str, np.ndarray], limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    rows = [(inst["action"] == a).astype(float) for a in limits.capacity]
    rows += [np.where(inst["family"] == f, inst["spend"], 0.0) for f in limits.budget]
    room = np.array([*map(float, limits.capacity.values()), *limits.budget.values()])
    return np.vstack(rows), room


def exact(inst: dict[str, np.ndarray], limits: Limits, integral: bool) -> float:
    """The optimum of the ILP (or its LP relaxation) with HiGHS on the full problem."""
    use, room = usage_matrix(inst, limits)
    contact = inst["contact"]
    m = int(contact.max()) + 1
    one_each = sparse.csr_matrix(
        (np.ones(contact.size), (contact, np.arange(contact.size))), shape=(m, contact.size)
    )
    a = sparse.vstack([one_each, sparse.csr_matrix(use)]).tocsr()
    b = np.concatenate([np.ones(m), room])
    if integral:
        res = milp(
            -inst["value"],
            constraints=LinearConstraint(a, -np.inf, b),
            integrality=np.ones(contact.size),
            bounds=Bounds(0, 1),
        )
    else:
        res = linprog(-inst["value"], A_ub=a, b_ub=b, bounds=(0, 1), method="highs")
    assert res.status == 0
    return -float(res.fun)


def reference_greedy(inst: dict[str, np.ndarray], limits: Limits) -> float:
    """Greedy top-1 written plainly: contacts by their best value; each takes its best
    action that still fits."""
    use, room = usage_matrix(inst, limits)
    contact, value = inst["contact"], inst["value"]
    used = np.zeros(room.size)
    rows_of = {c: np.flatnonzero(contact == c) for c in np.unique(contact)}
    order = sorted(rows_of, key=lambda c: -value[rows_of[c]].max())
    total = 0.0
    for c in order:
        for r in sorted(rows_of[c], key=lambda r: -value[r]):
            if np.all(used + use[:, r] <= room + 1e-9):
                used += use[:, r]
                total += value[r]
                break
    return total


def run(inst: dict[str, np.ndarray], limits: Limits):  # type: ignore[no-untyped-def]
    return allocate(
        inst["contact"], inst["action"], inst["family"], inst["value"], inst["spend"], limits
    )


def check_feasible(inst: dict[str, np.ndarray], limits: Limits, chosen: np.ndarray) -> None:
    use, room = usage_matrix(inst, limits)
    picked = chosen[chosen >= 0]
    assert np.all(inst["contact"][picked] == np.flatnonzero(chosen >= 0)), "row of another contact"
    used = use[:, picked].sum(axis=1)
    assert np.all(used <= room * (1 + 1e-9) + 1e-9), (used, room)


@pytest.mark.parametrize("seed", range(12))
def test_small_instances_respect_limits_and_beat_greedy(seed: int) -> None:
    inst = instance(12, seed)
    limits = Limits({"plan": 2}, {"retention": 40.0})
    result = run(inst, limits)
    check_feasible(inst, limits, result.chosen)
    optimum = exact(inst, limits, integral=True)
    lp = exact(inst, limits, integral=False)
    greedy = reference_greedy(inst, limits)
    assert result.value == pytest.approx(inst["value"][result.chosen[result.chosen >= 0]].sum())
    assert result.greedy_value == pytest.approx(greedy)
    assert greedy - 1e-9 <= result.value <= optimum + 1e-9
    assert optimum - 1e-6 <= result.lp_bound <= lp * (1 + 1e-6) + 1e-6
    for name, (used, limit) in result.usage.items():
        assert used <= limit * (1 + 1e-9) + 1e-9, name


def test_large_instance_is_near_the_lp_optimum_and_well_above_greedy() -> None:
    inst = instance(3000, 7)
    limits = Limits({"plan": 300}, {"retention": 5000.0})
    result = run(inst, limits)
    check_feasible(inst, limits, result.chosen)
    lp = exact(inst, limits, integral=False)
    assert result.lp_bound == pytest.approx(lp, rel=1e-6)
    assert result.value >= lp * 0.999  # a handful of fractional contacts at most
    assert result.value > reference_greedy(inst, limits)


def test_rows_need_not_be_grouped_by_contact() -> None:
    inst = instance(400, 3)
    limits = Limits({"gesture_a": 20}, {"retention": 900.0})
    shuffle = np.random.default_rng(0).permutation(inst["contact"].size)
    mixed = {k: v[shuffle] for k, v in inst.items()}
    a, b = run(inst, limits), run(mixed, limits)
    assert b.value == pytest.approx(a.value)
    check_feasible(mixed, limits, b.chosen)
    assert np.array_equal(shuffle[b.chosen[b.chosen >= 0]], a.chosen[a.chosen >= 0])


def test_without_limits_every_contact_gets_its_top_1() -> None:
    inst = instance(50, 1)
    result = run(inst, Limits())
    for c in range(50):
        rows = np.flatnonzero(inst["contact"] == c)
        assert result.chosen[c] == rows[np.argmax(inst["value"][rows])]
    assert result.value == result.top1_value == result.greedy_value


def test_loose_limits_change_nothing_and_zero_capacity_removes_the_action() -> None:
    inst = instance(200, 5)
    loose = run(inst, Limits({"plan": 10_000}, {"retention": 1e9}))
    assert loose.value == pytest.approx(loose.top1_value)
    none = run(inst, Limits({"plan": 0}, {}))
    assert not np.any(inst["action"][none.chosen[none.chosen >= 0]] == "plan")
    assert none.value == pytest.approx(exact(inst, Limits({"plan": 0}, {}), integral=True))


def test_parse_limits() -> None:
    limits = parse_limits(["plan=5"], ["retention=1e3"], {"plan", "offer"}, {"retention"})
    assert limits == Limits({"plan": 5}, {"retention": 1000.0})
    assert not parse_limits([], [], {"plan"}, {"retention"})


@pytest.mark.parametrize(
    ("capacity", "budget", "message"),
    [
        (["plann=5"], [], "unknown action 'plann'"),
        (["plan=five"], [], "'five' is not a whole number"),
        (["plan=2.5"], [], "'2.5' is not a whole number"),
        (["plan=-1"], [], "must be a whole number >= 0"),
        (["plan"], [], "expected NAME=NUMBER"),
        ([], ["retention=nan"], "must be a number >= 0"),
        ([], ["retention="], "expected NAME=NUMBER"),
        ([], ["product=10"], "unknown family 'product'"),
    ],
)
def test_parse_limits_errors_name_the_option_and_the_value(
    capacity: list[str], budget: list[str], message: str
) -> None:
    with pytest.raises(AllocationError, match="--capacity" if capacity else "--budget") as err:
        parse_limits(capacity, budget, {"plan", "offer"}, {"retention"})
    assert message in str(err.value)
