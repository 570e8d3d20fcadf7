"""The ``nba`` command line: exit codes and messages a script or a person can rely on."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def test_validate_accepts_a_valid_dataset(tiny_dataset: Path) -> None:
    result = runner.invoke(app, ["validate", str(tiny_dataset)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout
    assert "interactions.csv" in result.stdout
    assert "are read as 'other'" in result.stdout  # the note about 'pigeon' / 'teleport'


def test_validate_rejects_bad_data_with_exit_2_and_names_the_problem(tiny_dataset: Path) -> None:
    path = tiny_dataset / "decisions.csv"
    path.write_text(path.read_text().replace("declined,0.25", "declined,2"))
    result = runner.invoke(app, ["validate", str(tiny_dataset)])
    assert result.exit_code == 2
    assert "decisions.csv: column 'propensity': value must be in (0, 1]" in result.stderr
    assert "line 2: '2'" in result.stderr


def test_simulate_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--out",
            str(out),
            "--customers",
            "300",
            "--months",
            "3",
            "--holdout-weeks",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "customers.parquet").is_file() and (out / "truth").is_dir()
    assert runner.invoke(app, ["validate", str(out)]).exit_code == 0


def test_simulate_refuses_unknown_format(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path), "--format", "xml"])
    assert result.exit_code == 2
    assert "--format must be 'parquet' or 'csv'" in result.stderr


def test_features_build_on_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["features", "build", "--data", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "dataset directory does not exist" in result.stderr


def test_features_build_offline_only(tiny_dataset: Path, nba_home: Path) -> None:
    result = runner.invoke(
        app, ["features", "build", "--data", str(tiny_dataset), "--no-register"]
    )
    assert result.exit_code == 0, result.output
    assert (nba_home / "feast" / "data" / "customer_profiles.parquet").is_file()
    assert "features per profile" in result.stdout


@pytest.mark.slow
def test_demo_runs_end_to_end_and_registers_a_champion(nba_home: Path) -> None:
    from nba.tracking import resolve

    result = runner.invoke(app, ["demo", "--customers", "2500"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for step in ("1. simulate", "2. validate", "3. features", "4. train", "5. score"):
        assert step in out
    assert "made @champion" in out
    assert "normalised" in out and "product-first" in out and "always nothing" in out
    assert "ranks by what each action changes" in out
    assert out.count("contact K") == 3  # three example contacts with ranked actions
    # The engine's own lines only: MLflow's registry steps are not printed (issue 18).
    assert "Registered model" not in result.output and "Created version" not in result.output
    assert "registered nba-policy version 1" in out
    # The batch mix is audited against the company's contact policy, and holds.
    assert "contact policy, counted again from the files: 0 of" in out
    assert resolve().version == "1"
    assert (nba_home / "recommendations.parquet").is_file()


def test_train_summary_warns_when_a_baseline_beats_the_nba(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pandas as pd

    from pipelines.cli.model import print_baselines
    from pipelines.train import TrainReport

    metrics = {
        "logged_value_nba_snipw": 33.29,
        "logged_value_logging_policy": 16.09,
        "logged_value_product_first_snipw": 35.34,
        "logged_value_propensity_only_snipw": 20.0,
    }
    report = TrainReport(
        "run", "1", True, 8747, ("a", "b"), metrics, pd.DataFrame(), None,
        priors=["Broadband offer (664 decisions): fewer than 200 decisions"],
    )  # fmt: skip
    print_baselines(report)
    out = " ".join(capsys.readouterr().out.split())
    assert "│ always a product offer when possible │ 35.34 │" in out
    assert "the NBA (33.29) does worse than always a product offer when possible (35.34)" in out
    assert "the most likely to be accepted (20.00)" not in out  # only those that beat it
    assert "Broadband offer (664 decisions)" in out
    assert "favours short-term value" not in out  # the acceptance ranking: no such caveat

    report.objective = "incremental"
    print_baselines(report)
    assert "favours short-term value" in " ".join(capsys.readouterr().out.split())

    metrics["logged_value_product_first_snipw"] = 30.0
    print_baselines(report)
    assert "warning" not in capsys.readouterr().out
