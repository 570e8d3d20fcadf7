"""Every command against wrong order of steps, missing state, bad files and bad settings:
each case exits 0 or 2 with a plain cause, never a traceback."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nba.catalog import default_catalog_path
from nba.config import get_settings
from nba.simulate import SimulationConfig
from pipelines.cli import app

CONFIG = SimulationConfig(customers=1500, months=5, seed=11, holdout_weeks=2)
runner = CliRunner()

Setup = Callable[[Path, Path], list[str]]
"""(copy of the trained world, an empty folder) -> the command's arguments."""


def _write(path: Path, content: bytes | str) -> None:
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)


def _catalog(data: Path, content: bytes | str) -> Path:
    _write(data / "actions.yaml", content)
    return data


def _long_value(data: Path) -> Path:
    text = (data.parent / "default_actions.yaml").read_text()
    expr = " + ".join(["tenure_days"] * 5000)
    return _catalog(data, text.replace("value: 150", f"value: {expr}", 1))


def _empty_interactions(data: Path) -> Path:
    (data / "interactions.parquet").unlink()
    _write(data / "interactions.csv", "customer_id,timestamp,channel,type,amount,sentiment\n")
    return data


def _long_header(data: Path) -> Path:
    (data / "contracts.parquet").unlink()
    _write(data / "contracts.csv", "x" * 140_000 + "\n1\n")
    return data


# (case, arguments from the setup, environment, exit code, words the output must hold)
CASES: list[tuple[str, Setup, dict[str, str], int, str]] = [
    ("validate: no such folder", lambda d, e: ["validate", str(e / "nope")], {}, 2,
     "dataset directory does not exist"),
    ("validate: empty folder", lambda d, e: ["validate", str(e)], {}, 2,
     "required table 'customers' is missing"),
    ("validate: interactions without rows", lambda d, e: ["validate", str(_empty_interactions(d))],
     {}, 2, "has a header but no rows"),
    ("validate: header of 140 KB", lambda d, e: ["validate", str(_long_header(d))], {}, 2,
     "not a header row"),
    ("validate: binary catalog", lambda d, e: ["validate", str(_catalog(d, bytes(range(256))))],
     {}, 2, "is not UTF-8 text"),
    ("features: cp1252 catalog",
     lambda d, e: ["features", "build", "--data", str(_catalog(d, "actions:\n- name: Straße\n".encode("cp1252")))],  # noqa: E501
     {}, 2, "is not UTF-8 text"),
    ("score: binary catalog",
     lambda d, e: ["score", "--data", str(_catalog(d, b"\xff\xfe\x00")), "--out", str(e / "r.parquet")],  # noqa: E501
     {}, 2, "is not UTF-8 text"),
    ("train: value of 5,000 terms", lambda d, e: ["train", "--data", str(_long_value(d))], {}, 2,
     "characters long"),
    ("train: before features build", lambda d, e: ["train", "--data", str(d)],
     {"NBA_HOME": "{empty}/home"}, 2, "nba features build"),
    ("score: before any training",
     lambda d, e: ["score", "--data", str(d), "--out", str(e / "r.parquet")],
     {"NBA_HOME": "{empty}/home"}, 2, "nba train"),
    ("score: contacts file missing",
     lambda d, e: ["score", "--data", str(d), "--out", str(e / "r.parquet"), "--contacts", str(e / "c.csv")],  # noqa: E501
     {}, 2, "contacts file not found"),
    ("score: unknown alias",
     lambda d, e: ["score", "--data", str(d), "--out", str(e / "r.parquet"), "--alias", "nope"],
     {}, 2, "nope"),
    ("evaluate: no challenger", lambda d, e: ["evaluate", "--data", str(d)], {}, 2,
     "challenger"),
    ("promote: no such version", lambda d, e: ["promote", "--version", "99"], {}, 2, "99"),
    ("retrain: before any outcome", lambda d, e: ["retrain", "--data", str(d)],
     {"NBA_HOME": "{empty}/home"}, 2, "nothing to learn from"),
    ("keys revoke: unknown key", lambda d, e: ["keys", "revoke", "nba_0123456789ab"], {}, 2,
     "no active key"),
    ("serve: NBA_EPSILON=2", lambda d, e: ["serve"], {"NBA_EPSILON": "2"}, 2, "NBA_EPSILON"),
    ("serve: NBA_FEATURE_BUDGET_MS=-1", lambda d, e: ["serve"], {"NBA_FEATURE_BUDGET_MS": "-1"},
     2, "greater than 0"),
    ("serve: NBA_ONLINE_STORE=cassandra", lambda d, e: ["serve"],
     {"NBA_ONLINE_STORE": "cassandra"}, 2, "'sqlite' or 'redis'"),
    ("serve: NBA_MAX_BODY_BYTES=abc", lambda d, e: ["serve"], {"NBA_MAX_BODY_BYTES": "abc"}, 2,
     "NBA_MAX_BODY_BYTES"),
    ("serve: NBA_LOG_LEVEL=verbose", lambda d, e: ["serve"], {"NBA_LOG_LEVEL": "verbose"}, 2,
     "'debug', 'info'"),
    ("serve: NBA_CURRENCY=euro", lambda d, e: ["serve"], {"NBA_CURRENCY": "euro"}, 2,
     "three-letter currency code"),
    ("serve: NBA_STALE_PROFILE_DAYS=0", lambda d, e: ["serve"], {"NBA_STALE_PROFILE_DAYS": "0"},
     2, "NBA_STALE_PROFILE_DAYS"),
    ("serve: bad decision log URL", lambda d, e: ["serve"],
     {"NBA_DECISION_LOG_URL": "mysql://x"}, 2, "NBA_DECISION_LOG_URL"),
    ("validate: German Excel export", lambda d, e: ["validate", str(_german_export(d))], {}, 0,
     "separated by semicolons"),
]  # fmt: skip


def _german_export(data: Path) -> Path:
    import pandas as pd

    frame = pd.read_parquet(data / "customers.parquet")
    frame["region"] = frame["region"].fillna("").str.replace("north", "Nürnberg", regex=False)
    (data / "customers.parquet").unlink()
    frame.to_csv(data / "customers.csv", sep=";", decimal=",", index=False, encoding="cp1252")
    return data


@pytest.mark.parametrize(
    ("setup", "env", "code", "words"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_every_bad_case_is_a_message_with_exit_2_never_a_traceback(
    world: Path,
    home: Path,
    tmp_path: Path,
    setup: Setup,
    env: dict[str, str],
    code: int,
    words: str,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(world, data, ignore=shutil.ignore_patterns("truth"))
    shutil.copy(default_catalog_path(), tmp_path / "default_actions.yaml")
    empty = tmp_path / "empty"
    empty.mkdir()
    args = setup(data, empty)
    env = {k: v.format(empty=empty) for k, v in env.items()}
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, args, env=env)
    finally:
        get_settings.cache_clear()
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert result.exit_code == code, output
    assert result.exception is None or isinstance(result.exception, SystemExit), output
    assert words in output, output
    if code == 2:
        assert result.stderr.lstrip().startswith("error:"), result.stderr
