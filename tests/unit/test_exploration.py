"""Exploration and the control group: the logged probability is the one really used."""

from __future__ import annotations

import numpy as np
import pytest

from nba.policy.exploration import (
    Exploration,
    ExplorationError,
    assign_arm,
    choose,
    distribution,
    in_control,
)

PROPENSITY = np.array([0.30, 0.25, 0.10, 0.05])
VALUE = np.array([100.0, 100.0, 150.0, 50.0])  # priorities 30, 25, 15, 2.5: best first


def test_off_always_shows_the_top_candidate_with_certainty() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        c = choose("C1", PROPENSITY, VALUE, Exploration("off"), rng)
        assert (c.index, c.probability, c.arm) == (0, 1.0, "nba")


def test_epsilon_greedy_probabilities() -> None:
    dist = distribution(
        PROPENSITY, VALUE, Exploration("epsilon", epsilon=0.2), np.random.default_rng(0)
    )
    np.testing.assert_allclose(dist, [0.8 + 0.05, 0.05, 0.05, 0.05])


@pytest.mark.parametrize("mode", ["epsilon", "thompson"])
def test_logged_probabilities_are_exact(mode: str) -> None:
    """E[1{shown = a} / p_logged] = 1 for every candidate a exactly when the logged
    probability is the one the draw used (the basis of IPW)."""
    rng = np.random.default_rng(1)
    config = Exploration(mode, epsilon=0.3, thompson_strength=20, floor=0.05)  # type: ignore[arg-type]
    n = 20_000
    weight = np.zeros(len(PROPENSITY))
    shown = np.zeros(len(PROPENSITY))
    for _ in range(n):
        c = choose("C1", PROPENSITY, VALUE, config, rng)
        assert c.probability == pytest.approx(c.distribution[c.index])
        weight[c.index] += 1 / c.probability
        shown[c.index] += 1
    np.testing.assert_allclose(weight / n, 1.0, atol=0.08)
    assert shown[0] == shown.max()  # still mostly the best
    assert (shown > 0).all()  # but every candidate gets tried


def test_thompson_prefers_the_best_and_keeps_a_floor() -> None:
    rng = np.random.default_rng(2)
    sure = distribution(PROPENSITY, VALUE, Exploration("thompson", thompson_strength=1e6), rng)
    assert sure[0] > 0.98
    unsure = distribution(PROPENSITY, VALUE, Exploration("thompson", thompson_strength=10), rng)
    assert unsure[0] < sure[0] and unsure.sum() == pytest.approx(1.0)
    assert (unsure >= 0.01 / 4).all()
    # Equal candidates share the mass.
    tie = distribution(np.array([0.2, 0.2]), np.array([10.0, 10.0]), Exploration("thompson"), rng)
    assert abs(tie[0] - tie[1]) < 0.15


def test_control_group_is_stable_and_of_the_configured_share() -> None:
    config = Exploration("off", control_share=0.1)
    ids = [f"C{i:06d}" for i in range(20_000)]
    members = [in_control(c, config) for c in ids]
    assert 0.09 < np.mean(members) < 0.11
    assert members == [in_control(c, config) for c in ids]  # stable
    other_salt = [in_control(c, Exploration(control_share=0.1, salt="x")) for c in ids]
    assert members != other_salt
    assert not any(in_control(c, Exploration(control_share=0.0)) for c in ids[:100])


def test_challenger_arm_is_stable_and_leaves_the_control_group_alone() -> None:
    config = Exploration("epsilon", epsilon=0.2, control_share=0.1, challenger_share=0.2)
    ids = [f"C{i:06d}" for i in range(20_000)]
    arms = [assign_arm(c, config) for c in ids]
    shares = {a: arms.count(a) / len(ids) for a in ("control", "challenger", "nba")}
    assert 0.09 < shares["control"] < 0.11 and 0.18 < shares["challenger"] < 0.22
    assert arms == [assign_arm(c, config) for c in ids]
    control_only = Exploration(control_share=0.1)
    assert [a == "control" for a in arms] == [in_control(c, control_only) for c in ids]
    # The same exploration inside the challenger's arm as in the champion's.
    rng = np.random.default_rng(0)
    customer = next(c for c, a in zip(ids, arms, strict=True) if a == "challenger")
    picks = [choose(customer, PROPENSITY, VALUE, config, rng) for _ in range(2000)]
    assert {p.arm for p in picks} == {"challenger"}
    assert {round(p.probability, 9) for p in picks} == {round(0.8 + 0.2 / 4, 9), 0.05}


def test_control_customers_get_a_uniformly_random_action() -> None:
    config = Exploration("off", control_share=1.0)
    rng = np.random.default_rng(3)
    picks = [choose("C1", PROPENSITY, VALUE, config, rng) for _ in range(4000)]
    assert {p.arm for p in picks} == {"control"}
    assert {p.probability for p in picks} == {0.25}
    counts = np.bincount([p.index for p in picks], minlength=4)
    assert counts.min() > 850


def test_nothing_to_show() -> None:
    c = choose("C1", np.zeros(0), np.zeros(0), Exploration("epsilon"), np.random.default_rng(0))
    assert c.index == -1 and c.probability == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "greedy"}, "exploration mode must be one of"),
        ({"epsilon": 1.5}, "epsilon must be between 0.0 and 1.0, got 1.5"),
        ({"control_share": -0.1}, "control share must be between"),
        ({"control_share": 0.6, "challenger_share": 0.5}, "add up to more than 1"),
        ({"thompson_draws": 0}, "draws >= 1"),
    ],
)
def test_bad_settings_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ExplorationError, match=message):
        Exploration(**kwargs)  # type: ignore[arg-type]
