"""The long-term outcome of logged decisions, from the contracts that followed them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nba.contract import load_dataset
from nba.outcomes import MONTH_DAYS, long_term_outcomes


def _dataset(directory: Path, contracts: str, decisions: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "customers.csv").write_text(
        "customer_id,signup_date\nA,2024-01-01\nB,2024-01-01\nC,2024-01-01\n"
    )
    (directory / "contracts.csv").write_text(
        "customer_id,product,start_date,end_date,monthly_fee\n" + contracts
    )
    # The data end (newest event): 2025-12-31.
    (directory / "interactions.csv").write_text(
        "customer_id,timestamp,channel,type\nA,2025-12-31T00:00:00Z,web,login\n"
    )
    (directory / "decisions.csv").write_text(
        "decision_id,customer_id,timestamp,channel,action_id,outcome,propensity,value\n"
        + decisions
    )
    return directory


def test_revenue_of_the_contracts_held_over_the_horizon(tmp_path: Path) -> None:
    data = _dataset(
        tmp_path / "d",
        # A holds two contracts, one ends 30 days after the decision; B holds one without a
        # fee; C's contract starts after the decision (not held at it).
        "A,mobile_basic,2024-01-01,,20\n"
        "A,broadband,2024-01-01,2025-01-31,40\n"
        "B,tv_stream,2024-01-01,,\n"
        "C,tv_stream,2025-02-01,,30\n",
        "D1,A,2025-01-01T00:00:00Z,phone,no_action,no_response,0.3,\n"
        "D2,B,2025-01-01T00:00:00Z,phone,no_action,no_response,0.3,\n"
        "D3,C,2025-01-01T00:00:00Z,phone,no_action,no_response,0.3,\n"
        "D4,A,2025-11-01T00:00:00Z,phone,no_action,no_response,0.3,\n",
    )
    ds = load_dataset(data)
    out = long_term_outcomes(ds, horizon_days=180, periods=6)
    ds.close()
    assert out.decision_id.tolist() == ["D1", "D2", "D3", "D4"]
    assert out.fees.tolist() == [60.0, 0.0, 0.0, 20.0]
    assert out.contracts_without_fee == 1
    # D1: the 20 contract all horizon, the 40 one for the first 30 of 180 days.
    expected = (20 * 180 + 40 * 30) / MONTH_DAYS
    got = out.fees[0] * out.horizon_months * out.kept_share()[0]
    assert got == pytest.approx(expected)
    assert out.kept[0].tolist() == pytest.approx([(20 + 40) / 60] + [20 / 60] * 5)
    # Censoring: D1-D3 lived their whole horizon; D4 (60 days before the end) two periods.
    assert out.full_horizon.tolist() == [True, True, True, False]
    assert out.observed[3].tolist() == [True, True, False, False, False, False]


def test_censoring_weights_are_unbiased_when_censoring_is_by_calendar(tmp_path: Path) -> None:
    """Half the decisions lived their horizon, half only its first half: per-period
    weights recover the mean revenue of the uncensored world, exclusion does too, and the
    naive mean over what was observed does not."""
    rng = np.random.default_rng(0)
    rows, contracts = [], []
    for i in range(400):
        start = "2025-01-01" if i % 2 == 0 else "2025-09-01"  # the latter: 90 days observed
        leaves = rng.random() < 0.5
        end = "2025-03-02" if leaves and i % 2 == 0 else ("2025-10-31" if leaves else "")
        contracts.append(f"K{i},mobile_basic,2024-01-01,{end},30")
        rows.append(f"D{i:04d},K{i},{start}T00:00:00Z,phone,no_action,no_response,0.3,")
    data = tmp_path / "d"
    _dataset(data, "\n".join(contracts) + "\n", "\n".join(rows) + "\n")
    customers = "customer_id,signup_date\n" + "".join(f"K{i},2024-01-01\n" for i in range(400))
    (data / "customers.csv").write_text(customers)
    (data / "interactions.csv").write_text(
        "customer_id,timestamp,channel,type\nK0,2025-11-30T00:00:00Z,web,login\n"
    )
    ds = load_dataset(data)
    out = long_term_outcomes(ds, horizon_days=180, periods=6)
    ds.close()
    # Every customer who leaves does so 60 days after the decision: 60/180 of the horizon.
    leaving = np.array([row.split(",")[3] != "" for row in contracts])
    truth = (1 - leaving.mean()) * 1.0 + leaving.mean() * (60 / 180)
    weighted = out.kept_share_estimate().mean()
    assert weighted == pytest.approx(truth, abs=0.03)
    assert out.kept_share()[out.full_horizon].mean() == pytest.approx(truth, abs=0.05)
    partial = (out.kept * out.observed).sum(axis=1) / out.observed.sum(axis=1)
    assert abs(partial.mean() - truth) > 0.05
