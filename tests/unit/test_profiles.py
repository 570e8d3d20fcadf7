"""Point-in-time profiles: hand-computed values, window edges, and no leakage (property)."""

from __future__ import annotations

import math
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nba.contract import load_dataset
from nba.profiles import FEATURE_NAMES, FEATURES, compute_profiles, features_markdown
from nba.vocabulary import CHANNELS, INTERACTION_TYPES
from tests.conftest import write_tiny


def profile(data_dir: Path, customer: str, as_of: str) -> dict[str, Any]:
    ds = load_dataset(data_dir)
    try:
        q = pa.table(
            {
                "customer_id": [customer],
                "as_of": pa.array([datetime.fromisoformat(as_of)], pa.timestamp("us")),
            }
        )
        rows = compute_profiles(ds.con, q).to_pylist()
    finally:
        ds.close()
    assert len(rows) == 1
    return rows[0]


def test_hand_computed_profile(tiny_dataset: Path) -> None:
    p = profile(tiny_dataset, "A", "2025-04-01T00:00:00")
    expected = {
        "n_complaint_7d": 0,
        "n_complaint_30d": 1,
        "n_complaint_90d": 2,
        "n_missed_payment_7d": 1,
        "amount_missed_90d": 55.0,
        "n_via_phone_30d": 1,
        "n_interactions_365d": 5,
        "n_active_products": 1,
        "active_products": "mobile_basic",
        "monthly_fees": 15.0,
        "n_products_ended_90d": 1,
        "email_known": 0,
        "n_offers_product_offer_90d": 1,
        "n_declines_product_offer_90d": 1,
        "n_accepts_retention_gesture_365d": 1,
        "n_offers_30d": 1,
        "n_declines_30d": 0,
        "tenure_days": 456.0,
        "age_years": 45.0,
        "complaint_trend": 0.5,
        "missed_payment_ratio_365d": 1.0,
        "monthly_revenue": 50.0,
        "is_business": 0,
    }
    assert {k: p[k] for k in expected} == expected
    assert p["days_since_inquiry"] == pytest.approx(1 / 86400)
    assert p["sentiment_mean_30d"] == pytest.approx(-0.1)
    assert p["sentiment_trend"] == pytest.approx(-0.1 - (-1.0 / 3.0))
    assert p["days_since_login"] == pytest.approx(6 + 15 / 24)
    assert p["days_since_payment"] is None  # never paid: empty, not 0


def test_event_at_the_as_of_instant_is_not_history(tiny_dataset: Path) -> None:
    p = profile(tiny_dataset, "A", "2025-03-20T10:00:00")
    assert p["n_complaint_30d"] == 1  # the complaint at exactly 10:00 is the contact itself
    assert p["n_offers_30d"] == 1  # so is decision D2


def test_window_includes_its_far_edge(tiny_dataset: Path) -> None:
    # The complaint of 2025-03-01 10:00 is exactly 30 days before.
    assert profile(tiny_dataset, "A", "2025-03-31T10:00:00")["n_complaint_30d"] == 2
    assert profile(tiny_dataset, "A", "2025-03-31T10:00:01")["n_complaint_30d"] == 1


def test_email_known_from_email_since_inclusive(tiny_dataset: Path) -> None:
    assert profile(tiny_dataset, "B", "2025-02-28T23:59:59")["email_known"] == 0
    assert profile(tiny_dataset, "B", "2025-03-01T00:00:00")["email_known"] == 1


def test_customer_without_history_gets_zero_counts_and_empty_recency(tiny_dataset: Path) -> None:
    p = profile(tiny_dataset, "C", "2025-01-16T00:00:00")
    assert p["n_interactions_365d"] == 0
    assert p["n_offers_30d"] == 0
    assert p["days_since_interaction"] is None
    assert p["age_years"] is None  # birth_year unknown


def test_feature_reference_lists_every_feature() -> None:
    doc = features_markdown()
    assert all(f"`{name}`" in doc for name in FEATURE_NAMES)
    assert len(set(FEATURE_NAMES)) == len(FEATURES)


def test_docs_page_is_current() -> None:
    page = Path(__file__).resolve().parents[2] / "docs" / "profile_features.md"
    assert page.read_text() == features_markdown(), "run: python -m nba.profiles > " + str(page)


# --- no leakage: anything dated at or after t never changes the profile at t -------------

T = datetime(2025, 6, 1, 12, 0, 0)
days = st.floats(min_value=0.0, max_value=400.0, allow_nan=False)
event = st.tuples(
    days,
    st.sampled_from(INTERACTION_TYPES),
    st.sampled_from(CHANNELS[:-1]),
    st.one_of(st.none(), st.floats(-1, 1)),
    st.one_of(st.none(), st.floats(0, 500)),
)
decision = st.tuples(
    days,
    st.sampled_from(
        ["offer_broadband", "retention_fee_waiver", "installment_plan_3m", "ask_email_address"]
    ),
    st.sampled_from(["accepted", "declined", "no_response"]),
)


def _write(
    directory: Path,
    before: list[Any],
    after: list[Any],
    dec_before: list[Any],
    dec_after: list[Any],
    contract_after: bool,
) -> None:
    write_tiny(directory)
    # One interaction of another customer: an interactions table without rows is refused,
    # and customer B's rows do not touch A's profile.
    rows = [
        "customer_id,timestamp,channel,type,amount,sentiment",
        f"B,{T.isoformat()}Z,web,login,,",
    ]
    for offset, sign in [(e, -1) for e in before] + [(e, +1) for e in after]:
        d, typ, ch, sent, amount = offset
        when = T + sign * timedelta(days=d)
        rows.append(
            f"A,{when.isoformat()}Z,{ch},{typ},{'' if amount is None else amount},"
            f"{'' if sent is None else sent}"
        )
    (directory / "interactions.csv").write_text("\n".join(rows) + "\n")
    rows = ["decision_id,customer_id,timestamp,channel,action_id,outcome,propensity,value"]
    for i, (d, action, outcome) in enumerate(dec_before):
        rows.append(f"B{i},A,{(T - timedelta(days=d)).isoformat()}Z,phone,{action},{outcome},0.5,")
    for i, (d, action, outcome) in enumerate(dec_after):
        rows.append(f"F{i},A,{(T + timedelta(days=d)).isoformat()}Z,phone,{action},{outcome},0.5,")
    (directory / "decisions.csv").write_text("\n".join(rows) + "\n")
    if contract_after:
        with (directory / "contracts.csv").open("a") as fh:
            fh.write(f"A,tv_stream,{T.isoformat()}Z,,20\n")


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, float) and isinstance(y, float):
            if not (
                math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
                or (math.isnan(x) and math.isnan(y))
            ):
                return False
        elif x != y:
            return False
    return True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.lists(event, max_size=12),
    after=st.lists(event, min_size=1, max_size=8),
    dec_before=st.lists(decision, max_size=5),
    dec_after=st.lists(decision, max_size=5),
    contract_after=st.booleans(),
)
def test_no_leakage_from_the_future(
    before: list[Any],
    after: list[Any],
    dec_before: list[Any],
    dec_after: list[Any],
    contract_after: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        past_only, with_future = Path(tmp) / "past", Path(tmp) / "future"
        _write(past_only, before, [], dec_before, [], False)
        _write(with_future, before, after, dec_before, dec_after, contract_after)
        as_of = T.isoformat()
        assert _same(profile(past_only, "A", as_of), profile(with_future, "A", as_of))
