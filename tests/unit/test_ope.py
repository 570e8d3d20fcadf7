"""Off-policy estimators against the simulator's ground truth and hand-checked cases."""

from __future__ import annotations

import numpy as np
import pytest

from nba.catalog import load_catalog
from nba.ope import BanditFeedback, Bootstrap, OPEError, compare, estimate
from nba.simulate import SimulationConfig, simulate_world


@pytest.fixture(scope="module")
def truth() -> dict[str, np.ndarray]:
    """Held-out contacts of a small world: eligibility, true acceptance probability and
    net value (value - cost) of every action, shape (contacts, actions)."""
    catalog = load_catalog()
    config = SimulationConfig(customers=3000, months=6, seed=3, holdout_weeks=4, history_months=3)
    table = simulate_world(config, catalog).truth["expected_value"].to_pandas()
    table = table[table.action_id != "no_action"]  # these tests value acceptance only
    k = len(catalog.actions)
    n = len(table) // k
    elig = table["eligible"].to_numpy().reshape(n, k)
    keep = elig.any(axis=1)
    return {
        "eligible": elig[keep],
        "p": table["p_accept"].to_numpy().reshape(n, k)[keep],
        "net": (table["value"] - table["cost"]).to_numpy().reshape(n, k)[keep],
    }


def draw_log(
    truth: dict[str, np.ndarray], rounds: int, rng: np.random.Generator
) -> tuple[np.ndarray, BanditFeedback]:
    """A uniformly random eligible action per round (pscore 1/eligible), its reward drawn
    from the true acceptance probability. Returns (contact per round, feedback)."""
    contact = rng.integers(0, len(truth["p"]), size=rounds)
    elig = truth["eligible"][contact]
    n_elig = elig.sum(axis=1)
    pick = np.floor(rng.random(rounds) * n_elig)
    action = np.argmax(np.cumsum(elig, axis=1) > pick[:, None], axis=1)
    accepted = rng.random(rounds) < truth["p"][contact, action]
    reward = accepted * truth["net"][contact, action]
    return contact, BanditFeedback(action, reward, 1.0 / n_elig)


def greedy_on(scores: np.ndarray, eligible: np.ndarray) -> np.ndarray:
    """Deterministic policy: the eligible action of highest score, as a distribution."""
    best = np.argmax(np.where(eligible, scores, -np.inf), axis=1)
    dist = np.zeros(scores.shape)
    dist[np.arange(len(best)), best] = 1.0
    return dist


def test_dr_and_snipw_estimate_another_policys_true_value_within_10_percent(
    truth: dict[str, np.ndarray],
) -> None:
    rng = np.random.default_rng(11)
    expected = truth["p"] * truth["net"]
    # The policy to evaluate ranks by a noisy view of the truth (so it is neither the
    # logging policy nor the oracle); the reward model is a noisier one.
    view = expected * rng.lognormal(0, 0.5, size=expected.shape)
    q_model = expected * rng.lognormal(0, 0.3, size=expected.shape) + 1.0
    errors: dict[str, list[float]] = {"dr": [], "snipw": [], "dm": []}
    covered = 0
    for _ in range(20):
        contact, log = draw_log(truth, 10_000, rng)
        dist = greedy_on(view[contact], truth["eligible"][contact])
        true_value = float((dist * expected[contact]).sum(axis=1).mean())
        est = estimate(
            log, dist, q_model[contact], Bootstrap(200, seed=int(rng.integers(1 << 30)))
        )
        for name in errors:
            errors[name].append(abs(est[name].value - true_value) / abs(true_value))
        covered += est["dr"].low <= true_value <= est["dr"].high
    assert np.mean(errors["dr"]) <= 0.10, errors["dr"]
    assert np.mean(errors["snipw"]) <= 0.10, errors["snipw"]
    assert covered >= 15  # a 95% interval should hold the truth nearly always
    # The direct method inherits its reward model's bias (+1 per action here); DR does not.
    assert np.mean(errors["dm"]) > np.mean(errors["dr"])


def test_estimators_on_a_hand_computed_log() -> None:
    # Two actions; the logging policy chose action 0 with 0.5 and action 1 with 0.25.
    log = BanditFeedback(
        np.array([0, 1, 1]), np.array([2.0, 4.0, 0.0]), np.array([0.5, 0.25, 0.25])
    )
    target = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    q = np.array([[1.0, 3.0], [1.0, 3.0], [1.0, 3.0]])
    est = estimate(log, target, q, Bootstrap(50))
    w = np.array([1 / 0.5, 1 / 0.25, 0.5 / 0.25])
    r = np.array([2.0, 4.0, 0.0])
    assert est["ipw"].value == pytest.approx((w * r).mean())
    assert est["snipw"].value == pytest.approx((w * r).sum() / w.sum())
    dm = np.array([1.0, 3.0, 2.0])
    assert est["dm"].value == pytest.approx(dm.mean())
    assert est["dr"].value == pytest.approx((dm + w * (r - np.array([1.0, 3.0, 3.0]))).mean())
    for e in est.values():
        assert e.low <= e.high


def test_a_policy_equal_to_the_logging_policy_is_estimated_by_the_mean_reward() -> None:
    rng = np.random.default_rng(0)
    action = rng.integers(0, 3, size=5000)
    reward = rng.random(5000)
    log = BanditFeedback(action, reward, np.full(5000, 1 / 3))
    est = estimate(log, np.full((5000, 3), 1 / 3))
    assert est["ipw"].value == pytest.approx(reward.mean())
    assert est["snipw"].value == pytest.approx(reward.mean())
    assert "dr" not in est  # no reward model given
    assert est["ipw"].low < reward.mean() < est["ipw"].high


def test_compare_is_paired_and_detects_a_better_policy(truth: dict[str, np.ndarray]) -> None:
    rng = np.random.default_rng(5)
    expected = truth["p"] * truth["net"]
    contact, log = draw_log(truth, 10_000, rng)
    elig = truth["eligible"][contact]
    good = greedy_on(expected[contact], elig)
    bad = greedy_on(-expected[contact], elig)
    gain = compare(log, good, bad, expected[contact], Bootstrap(200))
    assert gain["dr"].low > 0 and gain["snipw"].low > 0
    same = compare(log, good, good, expected[contact], Bootstrap(200))
    assert same["dr"].value == 0 and same["dr"].low == 0 == same["dr"].high


@pytest.mark.parametrize(
    ("action", "reward", "pscore", "message"),
    [
        ([0, 1], [1.0], [0.5, 0.5], "one value per round"),
        (
            [0, 1],
            [1.0, 0.0],
            [0.5, 0.0],
            "pscore must be in (0, 1]: 1 rounds are not, e.g. round 1",
        ),
        ([0, 1], [1.0, np.nan], [0.5, 0.5], "reward has missing"),
        ([], [], [], "the log is empty"),
    ],
)
def test_a_malformed_log_is_rejected(
    action: list[int], reward: list[float], pscore: list[float], message: str
) -> None:
    with pytest.raises(OPEError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BanditFeedback(np.array(action), np.array(reward), np.array(pscore))


def test_a_distribution_of_the_wrong_shape_is_rejected() -> None:
    log = BanditFeedback(np.array([0, 2]), np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    with pytest.raises(OPEError, match="expected shape"):
        estimate(log, np.ones((3, 3)))
    with pytest.raises(OPEError, match="out of range"):
        estimate(log, np.ones((2, 2)))
