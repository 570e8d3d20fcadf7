"""The action catalog: the default is valid; broken catalogs get precise errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nba.catalog import load_catalog, parse_catalog, parse_expression
from nba.exceptions import CatalogError, ExpressionError
from nba.vocabulary import FAMILIES


def test_default_catalog_has_every_family_and_enough_actions() -> None:
    catalog = load_catalog()
    assert len(catalog.actions) >= 8
    assert {a.family for a in catalog.actions} == set(FAMILIES)
    assert all(a.product for a in catalog.actions if a.family == "product_offer")


def _one(**overrides: Any) -> dict[str, Any]:
    action = {
        "id": "a1",
        "family": "product_offer",
        "name": "A",
        "value": 10,
        "product": "tv_stream",
    }
    action.update(overrides)
    return {"actions": [action]}


BROKEN: list[tuple[str, Any, str]] = [
    ("not a list", {"actions": "x"}, "expected a mapping with a list under 'actions'"),
    ("unknown family", _one(family="upsell"), "key 'family': unknown family 'upsell'"),
    ("bad id", _one(id="Bad-Id"), "key 'id': 'Bad-Id' must match"),
    ("missing name", _one(name=None), "key 'name' is required"),
    ("unknown key", _one(colour="red"), "unknown key(s) ['colour']"),
    ("product offer without product", _one(product=None), "a product_offer must name"),
    ("negative cost", _one(cost=-5), "key 'cost': -5 is below the minimum 0"),
    ("unknown channel", _one(channels=["fax"]), "unknown channel(s) ['fax']"),
    ("bad expression", _one(eligibility="n_complaint_30d >"), "cannot parse"),
    (
        "unknown feature",
        _one(eligibility="n_complaints_30d > 1"),
        "unknown feature 'n_complaints_30d' (did you mean 'n_complaint_30d'?)",
    ),
    ("function call not allowed", _one(value="__import__('os')"), "'Call' is not allowed"),
    ("attribute not allowed", _one(value="monthly_revenue.real"), "'Attribute' is not allowed"),
    (
        "negative window",
        _one(contact_policy={"max_offers": 1, "window_days": -30}),
        "key 'contact_policy.window_days': -30 must be positive",
    ),
    (
        "half a limit",
        _one(contact_policy={"max_offers": 1}),
        "max_offers and window_days go together",
    ),
    (
        "duplicate id",
        {"actions": [_one()["actions"][0], _one()["actions"][0]]},
        "duplicate id 'a1'",
    ),
    ("reserved id", _one(id="no_action"), "'no_action' is reserved for decisions that"),
    ("bad cost expression", _one(cost="1.2 * monthly_fee"), "unknown feature 'monthly_fee'"),
    ("unknown objective", {**_one(), "objective": "profit"}, "'profit' is not one of"),
    (
        "unspoken reason not a feature",
        {**_one(), "unspoken_reasons": ["age"]},
        "'age' is not a profile feature (did you mean 'age_years'?)",
    ),
    ("unspoken reasons not a list", {**_one(), "unspoken_reasons": "age"}, "expected a list"),
    ("horizon zero", {**_one(), "horizon_days": 0}, "key 'horizon_days': expected a whole"),
    ("horizon text", {**_one(), "horizon_days": "6m"}, "key 'horizon_days': expected a whole"),
    ("unknown top-level key", {**_one(), "horizon": 180}, "unknown top-level key(s) ['horizon']"),
]


@pytest.mark.parametrize(
    ("raw", "message"), [(b[1], b[2]) for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_catalog_is_rejected(raw: Any, message: str) -> None:
    with pytest.raises(CatalogError) as info:
        parse_catalog(raw, source="my/actions.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("my/actions.yaml")


def test_expressions_evaluate_vectorised_and_null_compares_false() -> None:
    feats = {
        "n_complaint_30d": np.array([0.0, 2.0, np.nan]),
        "monthly_revenue": np.array([10.0, 20.0, 30.0]),
    }
    cond = parse_expression("n_complaint_30d >= 1 and not monthly_revenue > 25")
    assert cond.evaluate(feats, 3).tolist() == [False, True, False]
    value = parse_expression("max(6 * monthly_revenue, 100) - abs(-1)")
    assert value.evaluate(feats, 3).tolist() == [99.0, 119.0, 179.0]
    assert parse_expression("true").evaluate(feats, 3).tolist() == [True, True, True]


def test_expression_error_is_a_catalog_error() -> None:
    with pytest.raises(ExpressionError, match="only numbers and true/false"):
        parse_expression("'text' == 1")


def test_default_catalog_ranks_by_what_actions_change() -> None:
    catalog = load_catalog()
    assert catalog.objective == "incremental" and catalog.horizon_days == 180
    assert catalog.notes == ()
    # Keeping the customer is learned, not written into a gesture's value.
    gestures = [a for a in catalog.actions if a.family == "retention_gesture"]
    feats = {"monthly_fees": np.array([50.0]), "amount_missed_90d": np.array([0.0])}
    assert all(a.value_of(feats, 1)[0] == 0 for a in gestures)
    loyalty = catalog.by_id("retention_loyalty_discount")
    assert loyalty.cost_of(feats, 1).tolist() == [60.0]  # 20% off for 6 months of 50


def test_cost_may_be_an_expression_and_a_legacy_catalog_keeps_its_meaning() -> None:
    catalog = parse_catalog(
        {"horizon_days": 90, **_one(cost="0.5 * monthly_fees")}, source="mine.yaml"
    )
    assert catalog.objective == "incremental" and catalog.horizon_days == 90
    assert catalog.actions[0].cost_of({"monthly_fees": np.array([10.0, 30.0])}, 2).tolist() == [
        5.0,
        15.0,
    ]
    legacy = parse_catalog(_one(), source="old.yaml")
    assert legacy.objective == "acceptance"
    assert len(legacy.notes) == 1 and legacy.notes[0].startswith("old.yaml: this catalog")
    assert "objective: incremental" in legacy.notes[0]
    explicit = parse_catalog({"objective": "acceptance", **_one()}, source="x.yaml")
    assert explicit.objective == "acceptance" and explicit.notes == ()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("actions:\n  - id: x\n    name: Straße\n".encode("cp1252"), "is not UTF-8 text"),
        (bytes(range(256)) * 4, "is not UTF-8 text"),
        (b"actions: [\x07]\n", "not valid YAML"),
        (b"[" * 5000, "nested too deeply"),
    ],
    ids=["cp1252", "binary", "control character", "deep nesting"],
)
def test_unreadable_catalog_file_is_a_catalog_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "actions.yaml"
    path.write_bytes(content)
    with pytest.raises(CatalogError, match=message):
        load_catalog(path)


def test_huge_or_deep_expressions_are_refused_with_a_message() -> None:
    with pytest.raises(ExpressionError, match="characters long"):
        parse_expression(" + ".join(["tenure_days"] * 5000), where="a.value")
    deep = "-" * 1900 + "tenure_days"
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression(deep, where="a.value")


def test_unspoken_reasons_default_to_age_and_may_be_changed() -> None:
    assert parse_catalog(_one()).unspoken_reasons == frozenset({"age_years"})
    assert parse_catalog({**_one(), "unspoken_reasons": []}).unspoken_reasons == frozenset()
    both = parse_catalog({**_one(), "unspoken_reasons": ["age_years", "tenure_days"]})
    assert both.unspoken_reasons == frozenset({"age_years", "tenure_days"})
