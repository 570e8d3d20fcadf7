"""`nba evaluate` and `nba promote --if-better`: a worse challenger is never promoted, a
better one is, and every comparison is an MLflow run."""

from __future__ import annotations

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nba.simulate import SimulationConfig
from nba.tracking import CHALLENGER, CHAMPION, configure, resolve, set_alias
from pipelines.cli import app
from pipelines.features import build_features
from pipelines.train import train

pytestmark = pytest.mark.slow
CONFIG = SimulationConfig(customers=3000, months=6, seed=4, holdout_weeks=3, history_months=3)


def train_on_noise(world: Path, tmp_path: Path) -> str:
    """A model trained on the same decisions with acceptance inverted (accepted where
    customers declined and the other way round): it prefers what customers refuse, so it
    must lose to the real one."""
    noise = tmp_path / "noise"
    shutil.copytree(world, noise, ignore=shutil.ignore_patterns("truth"))
    decisions = pd.read_parquet(noise / "decisions.parquet")
    accepted = decisions["outcome"] == "accepted"
    presented = decisions["action_id"] != "no_action"  # nothing stays nothing
    decisions["outcome"] = np.where(
        presented, np.where(accepted, "declined", "accepted"), decisions["outcome"]
    )
    decisions.to_parquet(noise / "decisions.parquet")
    build_features(noise, online=False)
    report = train(noise)
    # Same decision ids, other outcomes: another source, so the workspace's yardstick does
    # not describe it and the noise model gets one of its own (it never skips the real
    # data's yardstick decisions as if it were the same data).
    assert report.yardstick.startswith("yardstick y2:")
    version = report.version
    build_features(world, online=False)  # evaluation reads the real data's profiles
    return version


def evaluate_runs() -> pd.DataFrame:
    experiment_id = configure()
    runs = mlflow.search_runs([experiment_id], filter_string="tags.kind = 'evaluate'")
    assert isinstance(runs, pd.DataFrame)
    return runs


def test_a_worse_challenger_is_never_promoted_and_a_better_one_is(
    world: Path, home: Path, tmp_path: Path
) -> None:
    noise = train_on_noise(world, tmp_path)
    set_alias(CHALLENGER, noise)
    runner = CliRunner()
    # Half the log: the catalog's values of acceptance are small (keeping the customer is
    # not in them), so the gap between the two models needs a few thousand decisions.
    args = ["--data", str(world), "--share", "0.5"]

    shown = runner.invoke(app, ["evaluate", *args])
    assert shown.exit_code == 0, shown.output
    assert "DR" in shown.output and "SNIPW" in shown.output and "gain" in shown.output

    worse = runner.invoke(app, ["promote", "--if-better", *args])
    assert worse.exit_code == 0, worse.output
    assert "not promoted" in worse.output
    assert resolve(CHAMPION).version == "1"

    # The other way round: the real model challenges the noise model, and wins.
    set_alias(CHAMPION, noise)
    set_alias(CHALLENGER, "1")
    # The bounds are tightest where the gate expects to decide: at about this log's size.
    better = runner.invoke(
        app,
        ["promote", "--if-better", *args, "--level", "0.9", "--planned-decisions", "4000"],
    )
    assert better.exit_code == 0, better.output
    assert "version 1 promoted" in better.output
    assert resolve(CHAMPION).version == "1"

    runs = evaluate_runs()
    assert len(runs) == 3
    gated = runs[runs["tags.promoted"].notna()].sort_values("start_time")
    assert gated["tags.promoted"].tolist() == ["false", "true"]
    # The gate decides on the confidence sequence (valid at every look), not on the
    # bootstrap interval that `nba evaluate` also reports.
    lows = gated["metrics.gain_dr_cs_low"]
    assert lows.iloc[0] <= 0 < lows.iloc[1]
    assert gated["tags.verdict"].tolist()[1] == "promote"
    assert gated["params.gate"].tolist() == [
        "dr confidence sequence at alpha 0.05: promote if lower bound > 0",
        "dr confidence sequence at alpha 0.1: promote if lower bound > 0",
    ]
    # The verdict where the analyst looks: run names, sentences, each version's status.
    assert gated["tags.mlflow.runName"].tolist() == [
        f"evaluate v{noise} vs v1",
        f"evaluate v1 vs v{noise}",
    ]
    rejected, promoted = gated["tags.verdict_in_words"].tolist()
    told = {"continue": f"so v{noise} stays challenger", "retire": f"so v{noise} is rejected"}
    assert told[gated["tags.verdict"].iloc[0]] in rejected
    assert f"proven better, so v1 is now the champion and v{noise} retires" in promoted
    client = mlflow.MlflowClient()
    first, other = (
        client.get_model_version("nba-policy", "1"),
        client.get_model_version("nba-policy", noise),
    )
    assert first.tags["status"] == "champion" and other.tags["status"] == "retired"
    assert first.tags["decided_by_run"] == gated["run_id"].iloc[1]
    assert first.description == promoted


def test_the_gate_needs_data_and_known_evidence(world: Path, home: Path) -> None:
    runner = CliRunner()
    no_data = runner.invoke(app, ["promote", "--if-better"])
    assert no_data.exit_code == 2 and "--if-better needs --data DIR" in no_data.stderr
    bad = runner.invoke(app, ["promote", "--if-better", "--data", str(world), "--evidence", "ipw"])
    assert bad.exit_code == 2 and "--evidence must be one of" in bad.stderr
    level = runner.invoke(app, ["promote", "--if-better", "--data", str(world), "--level", "2"])
    assert level.exit_code == 2 and "--level" in level.stderr
    none = runner.invoke(app, ["promote"])
    assert none.exit_code == 2 and "give --version V" in none.stderr
