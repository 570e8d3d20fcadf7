"""`nba train` on a small CRM log (about 6,000 decisions): every action tried a few hundred
times gets a learnt propensity, and the summary says which families a simpler model
answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

from nba.config import get_settings
from nba.simulate import SimulationConfig
from nba.tracking import configure
from pipelines.cli import app

pytestmark = pytest.mark.slow
CONFIG = SimulationConfig(customers=1800, months=9, seed=23, holdout_weeks=2, history_months=3)


def test_train_on_a_small_log_learns_every_tried_action(world: Path, home: Path) -> None:
    result = CliRunner().invoke(app, ["train", "--data", str(world)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "a simpler model learns from all of the family's decisions" in out
    # Any action still on a prior was tried fewer than 300 times.
    on_prior = re.findall(r"- [^()]+ \(([\d,]+) decisions\)", out)
    assert all(int(n.replace(",", "")) < 300 for n in on_prior), out

    run_id = re.search(r"MLflow run ([0-9a-f]{32})", out)
    assert run_id, out
    configure(get_settings())
    run = mlflow.get_run(run_id.group(1))
    assert run.data.metrics["linear_families"] >= 1
    assert run.data.metrics["actions_on_prior"] == 0
    evidence = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="evidence.json"
            )
        ).read_text()
    )
    assert evidence and all(not e["uses_prior"] for e in evidence if e["n"] >= 300)
    assert any(e["n"] >= 300 for e in evidence)
