"""Arbitration rules, with a stand-in response model of fixed propensities (rules only)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nba.catalog import Catalog, parse_catalog
from nba.policy.arbitration import History
from nba.policy.design import MODEL_COLUMNS, profile_matrix
from nba.policy.policy import Contacts, Policy
from nba.profiles import NUMERIC_FEATURE_NAMES

ACTION_COLUMN = MODEL_COLUMNS.index("ctx_action")


class FixedModel:
    """Propensity per catalog action, whatever the customer (a narrow test double)."""

    def __init__(self, p: list[float]) -> None:
        self.p = np.array(p)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.p[x[:, ACTION_COLUMN].astype(int)]

    def contributions(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        zeros = np.zeros((x.shape[0], len(MODEL_COLUMNS) + 1))
        if out is not None:
            out[:] = zeros
        return zeros

    def uses_prior(self, action_index: int) -> bool:
        return False


def catalog(*actions: dict[str, Any]) -> Catalog:
    return parse_catalog({"actions": list(actions)})


RETAIN = {
    "id": "retain",
    "family": "retention_gesture",
    "name": "Retain",
    "value": 100,
    "cost": 10,
    "contact_policy": {
        "suppress_after_declines": 2,
        "suppress_days": 60,
        "max_offers": 3,
        "window_days": 30,
    },
}
EMAIL = {"id": "email", "family": "information_request", "name": "E-mail", "value": 20}
TV = {
    "id": "tv",
    "family": "product_offer",
    "name": "TV",
    "value": 50,
    "product": "tv",
    "channels": ["phone"],
}
RICH_ONLY = {
    "id": "rich",
    "family": "retention_gesture",
    "name": "Rich",
    "value": 30,
    "eligibility": "monthly_revenue > 100",
}


def contacts(
    n: int = 1,
    channel: str = "phone",
    products: str = "",
    email: int = 0,
    revenue: float = 50.0,
    history: History | None = None,
) -> Contacts:
    feats: dict[str, Any] = {f: np.zeros(n) for f in NUMERIC_FEATURE_NAMES}
    feats["email_known"] = np.full(n, float(email))
    feats["monthly_revenue"] = np.full(n, revenue)
    return Contacts(
        [f"k{i}" for i in range(n)],
        [f"c{i}" for i in range(n)],
        [channel] * n,
        [None] * n,
        profile_matrix(feats, n),
        [products] * n,
        history or History(),
    )


def decide(cat: Catalog, p: list[float], batch: Contacts) -> Any:
    return Policy(cat, FixedModel(p)).decide(batch)[0]  # type: ignore[arg-type]


def hist(ages: list[float], declined: list[bool]) -> History:
    return History(
        np.zeros(len(ages), dtype=int),
        np.zeros(len(ages), dtype=int),
        np.array(ages, dtype=float),
        np.array(declined, dtype=bool),
    )


@pytest.mark.parametrize(
    ("ages", "declined", "suppressed"),
    [
        ([10, 20], [True, True], True),  # two declines within 60 days
        ([10], [True], False),  # one is not enough
        ([10, 70], [True, True], False),  # the second is too old
        ([10, 20], [True, False], False),  # an acceptance is not a decline
    ],
)
def test_contact_policy_suppresses_after_declines(
    ages: list[float], declined: list[bool], suppressed: bool
) -> None:
    d = decide(catalog(RETAIN), [0.5], contacts(history=hist(ages, declined)))
    assert (d.recommendations == []) is suppressed
    if suppressed:
        assert d.suppressed[0].rule == "contact policy: declined 2 times in the last 60 days"


def test_contact_policy_limits_offers_in_a_window() -> None:
    d = decide(catalog(RETAIN), [0.5], contacts(history=hist([1, 5, 29], [False] * 3)))
    assert d.suppressed[0].rule == "contact policy: offered 3 times in the last 30 days (limit 3)"
    d = decide(catalog(RETAIN), [0.5], contacts(history=hist([1, 5, 31], [False] * 3)))
    assert [r.action_id for r in d.recommendations] == ["retain"]


@pytest.mark.parametrize(
    ("batch", "rule"),
    [
        (contacts(email=1), "e-mail address already known"),
        (contacts(products="mobile_basic,tv"), "customer already has tv"),
        (contacts(channel="chat"), "not offered on chat"),
        (contacts(revenue=50.0), "its conditions do not fit this customer"),
    ],
)
def test_ineligible_actions_never_appear(batch: Contacts, rule: str) -> None:
    d = decide(catalog(EMAIL, TV, RICH_ONLY), [0.9, 0.9, 0.9], batch)
    shown = {r.action_id for r in d.recommendations}
    assert rule in [s.rule for s in d.suppressed]
    assert not shown & {s.action_id for s in d.suppressed}


def test_zero_net_value_is_dropped_and_nothing_is_a_valid_answer() -> None:
    free = {**EMAIL, "id": "even", "value": 10, "cost": 10}
    d = decide(catalog(free), [0.9], contacts())
    assert d.recommendations == []
    assert d.suppressed[0].rule == "expected net value not above zero"


def test_priority_is_propensity_times_net_value_times_lever() -> None:
    a = {**EMAIL, "id": "a", "value": 100, "cost": 20, "lever": 0.5}
    b = {**EMAIL, "id": "b", "value": 50}
    d = decide(catalog(a, b), [0.5, 0.7], contacts())
    assert [(r.action_id, r.priority) for r in d.recommendations] == [
        ("b", pytest.approx(35.0)),
        ("a", pytest.approx(20.0)),
    ]


def test_ties_are_broken_by_catalog_order_every_time() -> None:
    cat = catalog({**EMAIL, "id": "first"}, {**EMAIL, "id": "second"}, {**EMAIL, "id": "third"})
    batch = contacts(n=3)
    runs = [
        [
            [r.action_id for r in d.recommendations]
            for d in Policy(cat, FixedModel([0.4] * 3)).decide(batch)
        ]  # type: ignore[arg-type]
        for _ in range(3)
    ]
    assert runs[0] == [["first", "second", "third"]] * 3
    assert runs[0] == runs[1] == runs[2]


def test_limit_keeps_the_best() -> None:
    cat = catalog({**EMAIL, "id": "x"}, {**EMAIL, "id": "y", "value": 40})
    d = Policy(cat, FixedModel([0.5, 0.5])).decide(contacts(), limit=1)[0]  # type: ignore[arg-type]
    assert [r.action_id for r in d.recommendations] == ["y"]
