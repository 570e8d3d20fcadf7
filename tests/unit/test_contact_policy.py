"""The company-wide contact policy: limits per family and across all actions, the pause
after an accepted action, the rest after a decline, and each family's best first."""

from __future__ import annotations

from typing import Any

import pytest

from nba.catalog import parse_catalog
from nba.exceptions import CatalogError
from nba.policy.arbitration import History
from tests.unit.test_arbitration import EMAIL, FixedModel, contacts

GESTURE_A = {"id": "fee_waiver", "family": "retention_gesture", "name": "A", "value": 100}
GESTURE_B = {"id": "discount", "family": "retention_gesture", "name": "B", "value": 100}
PLAN = {"id": "plan", "family": "installment_offer", "name": "Plan", "value": 100}
ORDER = ["fee_waiver", "discount", "plan", "email"]


def ranked(policy: dict[str, Any] | None, p: list[float], past: list[tuple[Any, ...]]) -> Any:
    """The one contact's decision; ``past``: (action id, age in days, outcome)."""
    raw: dict[str, Any] = {"actions": [GESTURE_A, GESTURE_B, PLAN, EMAIL]}
    if policy is not None:
        raw["contact_policy"] = policy
    cat = parse_catalog(raw)
    history = History.from_rows(
        [(0, ORDER.index(a), age, o == "declined", o == "accepted") for a, age, o in past]
    )
    from nba.policy.policy import Policy

    decision = Policy(cat, FixedModel(p)).decide(contacts(history=history))[0]  # type: ignore[arg-type]
    return decision


def shown(decision: Any) -> list[str]:
    return [r.action_id for r in decision.recommendations]


def rules(decision: Any) -> dict[str, str]:
    return {s.action_id: s.rule for s in decision.suppressed}


P = [0.5, 0.4, 0.3, 0.2]  # gesture A > gesture B > plan > e-mail


def test_a_family_limit_holds_back_every_action_of_the_family() -> None:
    policy = {"families": {"retention_gesture": {"max_offers": 1, "window_days": 180}}}
    d = ranked(policy, P, [("fee_waiver", 100.0, "no_response")])
    assert shown(d) == ["plan", "email"]
    expected = "contact policy: 1 retention gesture in the last 180 days (at most 1)"
    assert rules(d) == {"fee_waiver": expected, "discount": expected}
    assert shown(ranked(policy, P, [("fee_waiver", 181.0, "no_response")]))[0] == "fee_waiver"


def test_a_limit_across_all_actions_holds_back_everything() -> None:
    policy = {"all_actions": {"max_offers": 2, "window_days": 30}}
    past = [("plan", 3.0, "no_response"), ("email", 20.0, "no_response")]
    d = ranked(policy, P, past)
    assert shown(d) == []
    assert set(rules(d).values()) == {"contact policy: 2 offers of any kind in the last 30 days "
                                      "(at most 2)"}  # fmt: skip
    assert len(shown(ranked(policy, P, past[:1]))) == 4


def test_nothing_is_offered_for_some_days_after_an_accepted_gesture() -> None:
    policy = {"families": {"retention_gesture": {"quiet_days_after_accepted": 14}}}
    d = ranked(policy, P, [("discount", 1.5, "accepted")])
    assert shown(d) == []
    assert rules(d)["plan"] == (
        "contact policy: the customer accepted a retention gesture yesterday; nothing more is "
        "offered for 14 days after that"
    )
    assert shown(ranked(policy, P, [("discount", 1.5, "declined")])) == ["fee_waiver", "plan",
                                                                          "email"]  # fmt: skip
    assert len(shown(ranked(policy, P, [("discount", 15.0, "accepted")]))) == 4


def test_a_catalog_without_a_policy_rests_an_action_the_customer_just_declined() -> None:
    d = ranked(None, P, [("fee_waiver", 0.001, "declined")])
    assert shown(d) == ["discount", "plan", "email"]
    assert rules(d) == {"fee_waiver": "contact policy: the customer declined it just now"}
    d = ranked(None, P, [("fee_waiver", 12.0, "declined")])
    assert rules(d) == {"fee_waiver": "contact policy: declined once in the last 30 days"}
    assert shown(ranked(None, P, [("fee_waiver", 31.0, "declined")]))[0] == "fee_waiver"
    off = ranked({"decline_rest_days": 0}, P, [("fee_waiver", 0.001, "declined")])
    assert shown(off)[0] == "fee_waiver"


def test_each_family_s_best_comes_before_a_second_of_the_same_family() -> None:
    assert shown(ranked(None, P, [])) == ["fee_waiver", "plan", "email", "discount"]
    assert shown(ranked({"families_first": False}, P, [])) == ORDER
    # the first action never moves, and the order within a family is kept
    assert shown(ranked(None, [0.1, 0.45, 0.5, 0.2], [])) == ["plan", "discount", "email",
                                                               "fee_waiver"]  # fmt: skip


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"families": {"retention": {"max_offers": 1}}}, "unknown family 'retention'"),
        (
            {"families": {"retention_gesture": {"max_offers": 1}}},
            "contact_policy.families.retention_gesture': max_offers and window_days go together",
        ),
        ({"all_actions": {"max_offers": 0, "window_days": 3}}, "max_offers': 0 must be positive"),
        ({"decline_rest_days": -1}, "decline_rest_days': expected a whole number of days"),
        ({"families_first": "yes"}, "families_first': expected true or false"),
        ({"weekly": 2}, "unknown key(s) ['weekly']"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_a_bad_company_policy_is_a_clear_error(policy: Any, message: str) -> None:
    with pytest.raises(CatalogError) as err:
        parse_catalog({"actions": [GESTURE_A], "contact_policy": policy})
    assert message in str(err.value)


def test_the_default_catalog_sets_a_company_policy() -> None:
    from nba.catalog import load_catalog

    company = load_catalog().company_policy
    assert company.families["retention_gesture"].max_offers == 1
    assert company.all_actions.max_offers is not None


def test_the_families_first_order_is_the_same_one_by_one_and_in_a_batch() -> None:
    import numpy as np

    from nba.catalog import load_catalog
    from nba.policy.contact_rules import families_first
    from nba.policy.policy import Policy

    catalog = load_catalog()
    policy = Policy(catalog, FixedModel([0.1] * len(catalog.actions)))  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    n, k = 200, len(catalog.actions)
    priority = rng.normal(size=(n, k))
    ok = rng.random((n, k)) < 0.7
    order = np.argsort(-np.where(ok, priority, -np.inf), axis=1, kind="stable")
    code = policy._family_code
    batch = families_first(order, ok, code)
    few = np.vstack([families_first(order[i : i + 1], ok[i : i + 1], code) for i in range(n)])
    np.testing.assert_array_equal(batch, few)
    assert (batch[:, 0] == order[:, 0]).all()  # the best action never moves
