"""The policy through MLflow: trained via Feast, registered, loaded by alias, scored.

Real components: Feast (SQLite online store), MLflow with its SQLite tracking store under
NBA_HOME, the pyfunc model loaded from ``models:/nba-policy@champion``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from nba.catalog import load_catalog
from nba.config import get_settings
from nba.contract import load_dataset
from nba.inputs import policy_input
from nba.policy.frames import INPUT_COLUMNS, contacts_from_frame
from nba.policy.policy import Policy
from nba.policy.response import ResponseModel
from nba.simulate import SimulationConfig, simulate_world, write_world
from nba.tracking import MODEL_NAME, ModelRef, configure, load_policy, resolve
from pipelines import yardstick
from pipelines.cli import app
from pipelines.features import build_features
from pipelines.score import RECOMMENDATIONS_SCHEMA, base_contacts
from pipelines.train import train
from tests.conftest import environment

pytestmark = pytest.mark.slow
CONFIG = SimulationConfig(customers=2500, months=6, seed=9, holdout_weeks=3, history_months=3)


@pytest.fixture
def trained(tmp_path: Path) -> dict[str, Any]:
    catalog = load_catalog()
    data = tmp_path / "sim"
    write_world(simulate_world(CONFIG, catalog), data, CONFIG, catalog.source)
    build_features(data)
    report = train(data)
    return {"data": data, "report": report}


def test_training_registers_a_champion_with_metrics_and_plots(
    trained: dict[str, Any], nba_home: Path
) -> None:
    report = trained["report"]
    assert report.version == "1" and report.champion
    assert resolve().version == "1"
    configure()
    run = mlflow.get_run(report.run_id)
    # Six months of decisions cannot show what actions change over 180 days: the policy
    # falls back to the acceptance ranking and says so, on the run too.
    assert report.objective == "acceptance"
    assert report.objective_note is not None and "horizon of 180 days" in report.objective_note
    assert run.data.tags["objective"] == "acceptance"
    assert "lower horizon_days" in run.data.tags["objective_note"]
    # Everything stays in the workspace: the run's artifacts live under NBA_HOME.
    assert mlflow.get_experiment(run.info.experiment_id).name == "nba-policy"
    assert run.info.artifact_uri.startswith(nba_home.resolve().as_uri())
    for key in (
        "auc",
        "ece",
        "log_loss",
        "brier",
        "normalised_value_nba",
        "normalised_value_product_first",
        "logged_value_nba_snipw",
    ):
        assert key in run.data.metrics, key
    assert 0.5 < run.data.metrics["auc"] <= 1.0
    assert run.data.params["window_start"] < run.data.params["window_end"]
    files = {a.path for a in mlflow.MlflowClient().list_artifacts(report.run_id, "summary")}
    assert files == {
        "summary/summary.md",
        "summary/summary.html",
        "summary/calibration.png",
        "summary/what_drives_it.png",
        "summary/action_mix.png",
    }
    # The summary is the run's description, with its verdict, and the version says it too.
    assert run.data.tags["mlflow.runName"] == "train v1"
    assert run.data.tags["kind"] == "train"
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("**Version 1 is the first version: it is now the champion")
    n = sum(int(run.data.params[k]) for k in ("n_train", "n_valid", "n_calib", "n_test"))
    assert f"{n:,} logged decisions" in note
    assert f"{int(run.data.params['n_test']):,} (" in note and "newest period" in note
    for chart in ("calibration.png", "what_drives_it.png", "action_mix.png"):
        assert f"(get-artifact?path=summary/{chart}&run_uuid={report.run_id})" in note
    page = mlflow.artifacts.download_artifacts(
        run_id=report.run_id, artifact_path="summary/summary.html"
    )
    assert Path(page).read_text().count('<img src="data:image/png;base64,') == 3
    version = mlflow.MlflowClient().get_model_version("nba-policy", "1")
    assert version.tags["status"] == "champion"
    assert version.tags["decided_by_run"] == report.run_id
    assert version.description.startswith("Version 1 is the first version")
    experiment = mlflow.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    # A copied workspace reads its own files: the original's are moved away first.
    copy = nba_home.parent / "copied-workspace"
    shutil.copytree(nba_home, copy)
    (nba_home / "mlartifacts").rename(nba_home.parent / "original-artifacts")
    try:
        with environment(NBA_HOME=str(copy)):
            configure()
            moved = mlflow.get_run(report.run_id)
            assert moved.info.artifact_uri.startswith(copy.resolve().as_uri())
            policy = load_policy(resolve())
            assert len(policy.catalog.actions) == len(load_catalog().actions)
            note = mlflow.artifacts.download_artifacts(
                run_id=report.run_id, artifact_path="summary/summary.md"
            )
            assert Path(note).read_text().startswith("# train v1")
    finally:
        (nba_home.parent / "original-artifacts").rename(nba_home / "mlartifacts")
        configure()


def test_pyfunc_from_the_registry_ranks_like_the_in_process_policy(
    trained: dict[str, Any],
) -> None:
    configure()
    ref = resolve()
    model = mlflow.pyfunc.load_model(ref.uri)
    ds = load_dataset(trained["data"])
    contacts = ds.con.sql("SELECT * FROM contacts ORDER BY contact_id LIMIT 300").df()
    frame = policy_input(ds, contacts)[list(INPUT_COLUMNS)]
    ds.close()
    served = model.predict(frame, params={"limit": 3, "model_version": ref.version})
    # Rebuild the policy from the run's artifacts, outside MLflow.
    run_id = trained["report"].run_id
    art = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="policy/artifacts")
    response = ResponseModel.from_json(Path(art, "response_model.json").read_text())
    local = Policy(load_catalog(Path(art, "actions.yaml")), response)
    expected = [
        (d.contact_id, rank, r.action_id, r.propensity, r.reasons)
        for d in local.decide(contacts_from_frame(frame, local.catalog), 3)
        for rank, r in enumerate(d.recommendations, start=1)
    ]
    got = list(
        zip(
            served["contact_id"],
            served["rank"],
            served["action_id"],
            served["propensity"],
            served["reasons"].map(list),
            strict=True,
        )
    )
    assert len(got) > 0
    assert got == expected
    assert set(served["model_version"]) == {"1"}
    # What loading it needs is named, pinned to this environment's versions.
    needs = Path(mlflow.artifacts.download_artifacts(ref.uri + "/requirements.txt"))
    pinned = dict(line.split("==") for line in needs.read_text().split())
    assert pinned["lightgbm"] == lgb.__version__ and "numba" in pinned


def test_a_second_version_is_not_champion_until_promoted(trained: dict[str, Any]) -> None:
    second = train(trained["data"], seed=1, split="shuffled")
    assert second.version == "2" and not second.champion
    assert resolve().version == "1"
    # Both versions are measured on the same fixed yardstick, which the second one never
    # learnt from (it is left out of its shuffled split); measuring again gives the same.
    runs = [mlflow.get_run(r.run_id) for r in (trained["report"], second)]
    assert [r.data.params["yardstick"] for r in runs] == ["y1", "y1"]
    yard = yardstick.current(get_settings())
    assert yard is not None and yard.manifest["frozen_by_version"] == "1"
    assert int(runs[0].data.params["n_test"]) == len(yard.decisions)
    assert runs[0].data.params["yardstick_left_out_of_training"] == "0"
    assert int(runs[1].data.params["yardstick_left_out_of_training"]) == len(yard.decisions)
    n_second = sum(
        int(runs[1].data.params[k]) for k in ("n_train", "n_valid", "n_calib", "n_test")
    )
    assert n_second + len(yard.decisions) == trained["report"].n_decisions
    for run in runs:
        version = run.data.tags["registered_version"]
        policy = load_policy(ModelRef(f"models:/{MODEL_NAME}/{version}", version, None))
        again, _ = yardstick.measure(yard, policy)
        assert run.data.metrics["yardstick_value_nba"] == pytest.approx(
            again["yardstick_value_nba"], abs=1e-4
        )
        assert run.data.metrics["yardstick_normalised_value_nba"] == pytest.approx(
            again["yardstick_normalised_value_nba"], abs=1e-4
        )
    assert (
        "On the fixed yardstick: compare versions here" in runs[1].data.tags["mlflow.note.content"]
    )
    result = CliRunner().invoke(app, ["promote", "--version", "2"])
    assert result.exit_code == 0, result.output
    assert resolve().version == "2"
    bad = CliRunner().invoke(app, ["promote", "--version", "99"])
    assert bad.exit_code == 2
    assert f"cannot point {MODEL_NAME}@champion at version 99" in bad.stderr


def test_score_writes_the_contract_table(trained: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "recs.parquet"
    data = trained["data"]
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--data",
            str(data),
            "--contacts",
            str(data / "contacts.parquet"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.schema.equals(RECOMMENDATIONS_SCHEMA)
    recs = table.to_pandas()
    contacts = pd.read_parquet(data / "contacts.parquet")
    assert set(recs["contact_id"]) <= set(contacts["contact_id"])
    assert (
        recs.groupby("contact_id")["rank"]
        .apply(lambda r: list(r) == list(range(1, len(r) + 1)))
        .all()
    )
    assert (recs["priority"] > 0).all()
    # Best first, then each family's best before a second of any family (company policy).
    for _, mine in recs.sort_values(["contact_id", "rank"]).groupby("contact_id"):
        assert mine["priority"].iloc[0] == mine["priority"].max()
        nth = mine.groupby("family").cumcount().to_numpy()
        assert (np.diff(nth) >= 0).all()
        for _, same in mine.groupby("family"):
            assert same["priority"].is_monotonic_decreasing


def test_score_rejects_a_bad_contacts_file(trained: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "contacts.csv"
    bad.write_text(
        "contact_id,customer_id,timestamp,channel,reason\n"
        "k1,C000001,2025-06-01T10:00:00Z,phone,complaint\n"
        "k2,NOBODY,2025-06-01T10:00:00Z,phone,complaint\n"
        "k3,C000002,not-a-time,phone,\n"
    )
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--data",
            str(trained["data"]),
            "--contacts",
            str(bad),
            "--out",
            str(tmp_path / "r.parquet"),
        ],
    )
    assert result.exit_code == 2
    assert "contacts.csv: column 'timestamp': not an ISO-8601 timestamp" in result.stderr
    assert "line 4: 'not-a-time'" in result.stderr
    assert not (tmp_path / "r.parquet").exists()


def test_score_without_contacts_covers_the_active_base(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "base.parquet"
    result = CliRunner().invoke(
        app, ["score", "--data", str(trained["data"]), "--out", str(out), "--top-k", "1"]
    )
    assert result.exit_code == 0, result.output
    recs = pd.read_parquet(out)
    assert recs["contact_id"].str.startswith("base-").all()
    assert (recs["rank"] == 1).all()
    # The run is in MLflow with what it recommends to whom, "nothing" included, and its
    # counts add up to the scored base in every grouping.
    ds = load_dataset(trained["data"])
    active = len(base_contacts(ds))
    ds.close()
    runs = mlflow.search_runs([configure()], filter_string="tags.kind = 'score'")
    assert len(runs) == 1
    run = runs.iloc[0]
    n = int(run["params.contacts"])
    assert n == active >= recs["contact_id"].nunique()
    assert run["tags.mlflow.runName"] == f"score v1: the active base, {n:,} contacts"
    note = run["tags.mlflow.note.content"]
    assert "get an action first" in note
    assert ("| nothing |" in note) == (n > len(recs))
    client = mlflow.MlflowClient()
    for by in ("segment", "tenure", "channel"):
        path = client.download_artifacts(run["run_id"], f"action_mix/action_mix_by_{by}.csv")
        table = pd.read_csv(path, index_col=0)
        assert table["all"].sum() == n
        assert table.drop(columns="all").sum(axis=1).equals(table["all"])
        if "nothing" in table:
            assert table["nothing"].sum() == n - len(recs)
    names = {a.name for a in load_catalog().actions} | {"nothing"}
    assert set(table.columns) - {"all"} <= names
    assert "score v1" in result.output and "nba ui" in result.output
