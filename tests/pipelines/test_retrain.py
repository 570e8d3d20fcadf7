"""`nba retrain`: the API's reported outcomes become training data for a challenger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from nba.catalog import load_catalog
from nba.config import get_settings
from nba.decision_log import DecisionLog, OutcomeRecord, ServedRecord, now_utc
from nba.simulate import SimulationConfig
from nba.tracking import CHALLENGER, CHAMPION, resolve
from pipelines.cli import app

pytestmark = pytest.mark.slow
CONFIG = SimulationConfig(customers=1500, months=6, seed=8, holdout_weeks=3, history_months=3)


def log_feedback(n: int, customers: list[str], seed: int) -> int:
    """n answers with a reported outcome each, as the API writes them; returns n."""
    rng = np.random.default_rng(seed)
    actions = [a.id for a in load_catalog().actions]
    log = DecisionLog(get_settings().decision_log)
    log.start()
    try:
        for i in range(n):
            shown = rng.choice(actions, size=2, replace=False).tolist()
            decision_id = f"api-{seed}-{i}"
            log.write(
                ServedRecord(
                    decision_id=decision_id,
                    customer_id=str(rng.choice(customers)),
                    timestamp=now_utc() - timedelta(hours=int(rng.integers(1, 500))),
                    channel="phone",
                    reason=None,
                    agent_id="a1",
                    model_version="1",
                    features_timestamp=None,
                    known_customer=True,
                    degraded=False,
                    degraded_reason=None,
                    ranking=[
                        {"action_id": a, "propensity": 0.2, "value": 50.0, "priority": 10.0,
                         "shown_probability": 0.55 if j == 0 else None}
                        for j, a in enumerate(shown)
                    ],
                )
            )  # fmt: skip
            outcome = str(rng.choice(["accepted", "declined", "no_response"]))
            log.write(OutcomeRecord(decision_id, shown[0], outcome, "a1"))
    finally:
        log.close()
    return n


def test_retrain_registers_a_challenger_from_the_reported_outcomes(
    world: Path, home: Path
) -> None:
    before = (world / "decisions.parquet").stat()
    runner = CliRunner()
    empty = runner.invoke(app, ["retrain", "--data", str(world)])
    assert empty.exit_code == 2
    assert "holds no reported outcomes yet" in empty.stderr

    customers = pd.read_parquet(world / "customers.parquet")["customer_id"].tolist()
    n = log_feedback(300, customers, seed=1)
    result = runner.invoke(app, ["retrain", "--data", str(world)])
    assert result.exit_code == 0, result.output
    assert f"learnt from {n} reported outcomes" in result.output
    assert resolve(CHAMPION).version == "1"  # the champion does not move
    assert resolve(CHALLENGER).version == "2"

    merged = get_settings().home_dir / "retrain-data"
    decisions = pd.read_parquet(merged / "decisions.parquet")
    original = pd.read_parquet(world / "decisions.parquet")
    assert len(decisions) == len(original) + n
    fed = decisions[decisions["decision_id"].str.startswith("api-1-")]
    assert len(fed) == n and (fed["propensity"] == 0.55).all()
    accepted = fed["outcome"] == "accepted"
    assert (fed.loc[accepted, "value"] == 50.0).all() and (fed.loc[~accepted, "value"] == 0).all()
    assert fed["decision_id"].is_unique
    after = (world / "decisions.parquet").stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
