"""`nba simulate-loop`: every round serves, logs, retrains, evaluates and gates, and the
true values it reports are the simulator's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nba.config import get_settings
from nba.decision_log import DecisionLog
from nba.tracking import CHAMPION, configure, resolve
from pipelines.cli import app

pytestmark = pytest.mark.slow


def test_two_rounds_of_the_loop(tmp_path: Path) -> None:
    out = tmp_path / "world"
    result = CliRunner().invoke(
        app,
        ["simulate-loop", "--rounds", "2", "--customers", "1500", "--weeks-per-round", "3",
         "--out", str(out), "--epsilon", "0.3", "--control-share", "0.3",
         "--scenario", "drift", "--drift-round", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the learning loop" in result.output
    # The drift is measured: the round-1 champion on the drifted world is worth less.
    drift = re.search(r"fell from\s+(-?\d+\.\d+)\s+to\s+(-?\d+\.\d+)", result.output)
    assert drift is not None, result.output
    assert float(drift[2]) < float(drift[1])

    runs = mlflow.search_runs([configure()], filter_string="tags.kind = 'simulate-loop'")
    assert len(runs) == 1
    history = mlflow.MlflowClient().get_metric_history(runs["run_id"][0], "normalised_value")
    assert [m.step for m in history] == [0, 1, 2]
    assert all(-1 < m.value < 1.01 for m in history)
    # Every challenger trained is measured (true value) and shown against the champion.
    trained = mlflow.MlflowClient().get_metric_history(
        runs["run_id"][0], "challenger_normalised_value"
    )
    assert [m.step for m in trained] == [1]
    assert runs["tags.mlflow.runName"][0] == "simulate-loop: drift, 2 rounds"
    assert "| round | champion |" in runs["tags.mlflow.note.content"][0]

    # Every answer is in the decision log with its arm and the shown action's probability,
    # and every answer got an outcome.
    log = DecisionLog(get_settings().decision_log)
    try:
        served = log.query("SELECT arm, ranking FROM served")
        outcomes = log.count("outcomes")
    finally:
        log.close()
    assert len(served) == outcomes > 500
    arms = np.array([a for a, _ in served])
    rankings = [json.loads(r) for _, r in served]
    shown = np.array([r[0]["shown_probability"] for r in rankings])
    assert 0.2 < (arms == "control").mean() < 0.4
    assert ((shown > 0) & (shown <= 1)).all() and (shown[arms == "nba"] < 1).any()
    # The NBA's own choice is logged for every answer (policy rank 1), control included.
    assert all(any(item["policy_rank"] == 1 for item in r) for r in rankings)

    # The impact report: NBA against the control group, per family and overall.
    assert "impact: NBA against the control group" in result.output
    report = (tmp_path / "world-impact" / "impact.md").read_text()
    assert "| all decisions" in report and "Intervals: 95%" in report
    assert "per decision more than a random sensible action" in report
    assert (tmp_path / "world-impact" / "lift.png").stat().st_size > 1000
    impact = mlflow.search_runs([configure()], filter_string="tags.kind = 'impact'")
    assert len(impact) == 1
    overall = impact["metrics.lift_overall"].iloc[0]
    low, high = (
        impact["metrics.lift_low_overall"].iloc[0],
        impact["metrics.lift_high_overall"].iloc[0],
    )
    assert low <= overall <= high
    assert impact["tags.mlflow.runName"].iloc[0].startswith("impact: NBA vs control group")
    assert impact["params.model_versions"].iloc[0].startswith("1")

    # One challenger was trained after round 1 and served to its share of customers in
    # round 2, where the gate looked at it (an evaluate run with its verdict).
    log = DecisionLog(get_settings().decision_log)
    try:
        by_arm = dict(
            log.query("SELECT arm, COUNT(DISTINCT model_version) FROM served GROUP BY arm")
        )
        challenger_versions = {v for (v,) in log.query(
            "SELECT DISTINCT model_version FROM served WHERE arm = 'challenger'")}  # fmt: skip
    finally:
        log.close()
    assert challenger_versions == {"2"} and by_arm["nba"] == 1
    gated = mlflow.search_runs([configure()], filter_string="tags.kind = 'evaluate'")
    assert len(gated) == 1 and gated["params.challenger_version"].iloc[0] == "2"
    run = gated.iloc[0]
    assert run["tags.verdict"] in ("promote", "retire", "continue")
    assert (run["tags.promoted"] == "true") == (run["tags.verdict"] == "promote")
    # With challenger traffic the arms decide (the gate's default, "auto").
    assert run["params.gate"].startswith("arms confidence sequence")
    if run["tags.verdict"] == "promote":
        assert run["metrics.gain_arms_cs_low"] > 0 and resolve(CHAMPION).version == "2"
    else:
        assert resolve(CHAMPION).version == "1"
    summary = "first promotion: round 2" if run["tags.verdict"] == "promote" else "no challenger"
    assert summary in result.output


def test_a_launch_is_explored_by_the_challenger(tmp_path: Path) -> None:
    """--scenario launch: the new action is out of round 0's catalog and log; the
    challenger trained after round 1 knows it and shows it to its customers in round 2."""
    out = tmp_path / "world"
    result = CliRunner().invoke(
        app,
        ["simulate-loop", "--rounds", "2", "--customers", "1500", "--weeks-per-round", "3",
         "--out", str(out), "--scenario", "launch", "--control-share", "0.1",
         "--challenger-share", "0.5"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scenario: launch" in result.output
    assert "new action offer_tv_stream, where the oracle would choose it" in result.output
    assert "offer_tv_stream" not in set(pd.read_parquet(out / "decisions.parquet")["action_id"])
    log = DecisionLog(get_settings().decision_log)
    try:
        rows = log.query("SELECT arm, model_version, ranking FROM served")
    finally:
        log.close()
    shown = {(arm, version): set() for arm, version, _ in rows}
    for arm, version, ranking in rows:
        shown[(arm, version)] |= {item["action_id"] for item in json.loads(ranking)[:1]}
    assert "offer_tv_stream" in shown[("challenger", "2")]
    assert all("offer_tv_stream" not in v for (arm, version), v in shown.items() if version == "1")


def test_the_impact_report_needs_a_control_group(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["impact"])
    assert result.exit_code == 2
    assert "has no decisions of both arms (found none)" in result.stderr
    assert "set NBA_CONTROL_SHARE" in result.stderr


def test_rounds_that_do_not_fit_the_world_are_refused_naming_the_options(
    tmp_path: Path,
) -> None:
    result = CliRunner().invoke(
        app,
        ["simulate-loop", "--rounds", "5", "--months", "3", "--out", str(tmp_path / "w")],
    )
    assert result.exit_code == 2
    assert "--rounds 5 x --weeks-per-round 4" in result.stderr and "--months 3" in result.stderr
    assert "at most 10" in result.stderr
    assert not (tmp_path / "w").exists()  # refused before simulating anything
