"""`nba simulate-loop`: every round serves, logs, retrains, evaluates and gates, and the
true values it reports are the simulator's."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest
from typer.testing import CliRunner

from nba.config import get_settings
from nba.tracking import CHALLENGER, CHAMPION, configure, resolve
from pipelines.cli import app
from serving.decision_log import DecisionLog

pytestmark = pytest.mark.slow


def test_two_rounds_of_the_loop(tmp_path: Path) -> None:
    out = tmp_path / "world"
    result = CliRunner().invoke(
        app,
        ["simulate-loop", "--rounds", "2", "--customers", "1500", "--weeks-per-round", "3",
         "--out", str(out), "--epsilon", "0.3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "the learning loop" in result.output

    runs = mlflow.search_runs([configure()], filter_string="attributes.run_name = 'simulate-loop'")
    assert len(runs) == 1
    history = mlflow.MlflowClient().get_metric_history(runs["run_id"][0], "normalised_value")
    assert [m.step for m in history] == [0, 1, 2]
    assert all(-1 < m.value < 1.01 for m in history)

    # Every answer is in the decision log with its arm and the shown action's probability,
    # and every answer got an outcome.
    log = DecisionLog(get_settings().decision_log)
    try:
        served = log.query("SELECT arm, ranking FROM served")
        outcomes = log.count("outcomes")
    finally:
        log.close()
    assert len(served) == outcomes > 500
    shown = np.array([json.loads(r)[0]["shown_probability"] for _, r in served])
    assert {a for a, _ in served} == {"nba"}
    assert ((shown > 0) & (shown <= 1)).all() and (shown < 1).any()  # epsilon explored

    # Two challengers were trained; the first was judged in round 2 (an evaluate run).
    assert resolve(CHALLENGER).version == "3"
    gated = mlflow.search_runs([configure()], filter_string="attributes.run_name = 'evaluate'")
    assert len(gated) == 1
    for _, run in gated.iterrows():
        assert (run["tags.promoted"] == "true") == (run["metrics.gain_dr_low"] > 0)
    promoted = (gated["tags.promoted"] == "true").sum()
    assert resolve(CHAMPION).version != "1" or promoted == 0
