"""Lift against the control group: the intervals hold the true lift (relative: Fieller)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nba.impact import lift, lift_table


def test_intervals_cover_the_true_lift_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    # Values per decision: accepted (Bernoulli) x net value, as in the decision log.
    true_nba, true_control = 0.3 * 100, 0.2 * 100
    covered = covered_rel = 0
    runs = 400
    for _ in range(runs):
        nba = (rng.random(2000) < 0.3) * 100.0
        control = (rng.random(500) < 0.2) * 100.0
        r = lift("all", nba, control)
        covered += r.lift_low <= true_nba - true_control <= r.lift_high
        covered_rel += r.relative_low <= true_nba / true_control - 1 <= r.relative_high
    assert 0.92 <= covered / runs <= 0.98
    assert 0.91 <= covered_rel / runs <= 0.99


def test_point_estimates_and_the_table() -> None:
    frame = pd.DataFrame(
        {
            "arm": ["nba"] * 4 + ["control"] * 4 + ["nba"] * 2 + ["control"] * 2,
            "segment": ["retention"] * 8 + ["installment"] * 4,
            "value": [10, 20, 30, 40, 5, 5, 10, 20, 8, 12, 4, 6],
        }
    )
    table = lift_table(frame).set_index("segment")
    assert list(table.index) == ["installment", "retention", "overall"]
    assert table.loc["retention", "lift"] == pytest.approx(25 - 10)
    assert table.loc["retention", "relative"] == pytest.approx(25 / 10 - 1)
    assert table.loc["installment", "value_nba"] == pytest.approx(10)
    assert table.loc["overall", "n_nba"] == 6 and table.loc["overall", "n_control"] == 6
    assert table.loc["retention", "lift_low"] < 15 < table.loc["retention", "lift_high"]


def test_too_few_decisions_give_no_interval() -> None:
    r = lift("rare", np.array([5.0]), np.array([1.0, 2.0]))
    assert r.lift == pytest.approx(3.5) and np.isnan(r.lift_low) and np.isnan(r.relative)


def test_a_segment_without_control_decisions_reads_n_a() -> None:
    """A family the NBA chose for a few customers of which none was in the control group
    has no lift: the report says so rather than printing nan."""
    from pipelines.impact import format_lift, format_relative, format_value, impact_summary

    frame = pd.DataFrame(
        {
            "arm": ["nba", "nba", "control", "control", "nba"],
            "segment": ["retention", "retention", "retention", "retention", "information"],
            "value": [10.0, 20.0, 5.0, 7.0, 5.0],
        }
    )
    table = lift_table(frame).set_index("segment", drop=False)
    rare = table.loc["information"]
    assert format_lift(rare) == "n/a (too few decisions in one arm)"
    assert format_relative(rare) == "n/a" and format_value(rare["value_control"]) == "n/a"
    assert format_lift(table.loc["retention"]).startswith("+9.00 [")
    assert format_lift(table.loc["retention"], "EUR").startswith("+€9.00 [")
    summary = impact_summary(table.reset_index(drop=True), 5, 0, {"1": 5}, Path("lift.png"), "EUR")
    text = summary.markdown({"lift.png": "lift.png"})
    assert "nan" not in text and "v1 (5 decisions)" in text
    assert "only 2 decisions in one arm" in text and "| information ⚠ |" in text


def test_the_relative_interval_agrees_with_the_absolute_one() -> None:
    """The case of the review: a clear absolute lift on a small control mean must not come
    with a relative interval that reaches below zero (the delta method's did)."""
    rng = np.random.default_rng(3)
    agree = 0
    for _ in range(300):
        nba = (rng.random(rng.integers(40, 400)) < 0.35) * 60.0
        control = (rng.random(rng.integers(20, 200)) < 0.15) * 60.0
        r = lift("installment", nba, control)
        if np.isnan(r.relative_low):
            continue  # the control mean is not clearly above zero: no relative bounds
        assert r.relative_low <= r.relative <= r.relative_high
        assert (r.lift_low > 0) == (r.relative_low > 0)
        assert (r.lift_high < 0) == (r.relative_high < 0)
        agree += 1
    assert agree > 100
    # A control arm of zeros: the ratio has no bounds, so none are given.
    r = lift("rare", np.array([10.0, 0.0, 20.0]), np.zeros(5))
    assert np.isnan(r.relative_low) and np.isnan(r.relative_high)
