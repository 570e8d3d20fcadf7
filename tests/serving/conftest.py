"""Workspaces for the API tests: a simulated world, its profiles in Feast and a trained
champion, built once per test session for each online store (SQLite, and Redis on a real
redis-server). Each test gets its own decision log (and so its own API keys)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from nba.catalog import load_catalog
from nba.config import Settings, get_settings
from nba.decision_log import DecisionLog
from nba.simulate import SimulationConfig, simulate_world, write_world
from pipelines.features import build_features
from pipelines.train import train
from serving.app import create_app
from serving.keys import SCOPES, create_key
from tests.conftest import RedisServer, environment, running_redis

CONFIG = SimulationConfig(customers=1500, months=6, seed=21, holdout_weeks=2, history_months=3)


@dataclass(frozen=True)
class Workspace:
    home: Path
    data: Path
    env: dict[str, str]
    customers: list[str]  # customers with an online profile


def _build(home: Path, env: dict[str, str]) -> Workspace:
    data = home.parent / "data"
    with environment(NBA_HOME=str(home), **env):
        # A 60-day horizon, so that 6 months of decisions teach what actions change and
        # the API is tested on the incremental ranking (180 days would fall back).
        short = home.parent / "actions.yaml"
        default = Path(load_catalog().source).read_text(encoding="utf-8")
        short.write_text(default.replace("horizon_days: 180", "horizon_days: 60"))
        catalog = load_catalog(short)
        assert catalog.horizon_days == 60
        write_world(simulate_world(CONFIG, catalog), data, CONFIG, catalog.source)
        build_features(data)
        train(data)
        profiles = pd.read_parquet(get_settings().profiles_path, columns=["customer_id"])
    return Workspace(
        home, data, {"NBA_HOME": str(home), **env}, sorted(set(profiles["customer_id"]))
    )


@pytest.fixture(scope="session")
def sqlite_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return _build(tmp_path_factory.mktemp("api-sqlite") / "home", {})


@pytest.fixture(scope="session")
def redis_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The Redis behind ``redis_workspace`` (the fault suite stops and starts it)."""
    with running_redis(tmp_path_factory.mktemp("api-redis")) as server:
        yield server


@pytest.fixture(scope="session")
def redis_workspace(redis_process: RedisServer) -> Workspace:
    return _build(
        redis_process.directory / "home",
        {"NBA_ONLINE_STORE": "redis", "NBA_REDIS_URL": redis_process.url},
    )


@pytest.fixture(params=["sqlite", "redis"])
def workspace(request: pytest.FixtureRequest) -> Workspace:
    """Both online stores: tests taking this run against each."""
    ws: Workspace = request.getfixturevalue(f"{request.param}_workspace")
    return ws


@dataclass
class Api:
    client: TestClient
    settings: Settings
    log: DecisionLog
    keys: dict[str, str]  # scope name (or "all") -> key
    workspace: Workspace

    def headers(self, scope: str = "all") -> dict[str, str]:
        return {"X-API-Key": self.keys[scope]}

    def recommend(self, customer_id: str, **extra: object) -> dict[str, object]:
        body = {"customer_id": customer_id, "channel": "phone", **extra}
        r = self.client.post("/v1/recommendations", json=body, headers=self.headers())
        assert r.status_code == 200, r.text
        answer: dict[str, object] = r.json()
        return answer


ApiFactory = Callable[..., Api]


@pytest.fixture
def api_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Api]]:
    """Start the app (lifespan included) on a workspace, with extra NBA_ settings."""
    opened: list[TestClient] = []

    def make(ws: Workspace, **env: str) -> Api:
        values = {
            **ws.env,
            "NBA_DECISION_LOG_URL": f"sqlite:///{tmp_path / 'decision_log.db'}",
            "NBA_MODEL_POLL_SECONDS": "0",
            # A generous profile-read budget: on a busy CI machine a read can take longer
            # than the 25 ms default, and only the budget's own tests should see that.
            "NBA_FEATURE_BUDGET_MS": "2000",
            **env,
        }
        for k, v in values.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        settings = Settings()
        log = DecisionLog(settings.decision_log)
        keys = {scope: create_key(log, (scope,), f"test {scope}") for scope in SCOPES}
        keys["all"] = create_key(log, SCOPES, "test all")
        client = TestClient(create_app(settings))
        client.__enter__()  # runs the lifespan: model, feature service, decision log
        opened.append(client)
        return Api(client, settings, log, keys, ws)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def api(api_factory: ApiFactory, workspace: Workspace) -> Api:
    return api_factory(workspace)


@pytest.fixture
def sqlite_api(api_factory: ApiFactory, sqlite_workspace: Workspace) -> Api:
    return api_factory(sqlite_workspace)


NBA = str(Path(sys.executable).with_name("nba"))


def server_env(ws: Workspace, log_url: str) -> dict[str, str]:
    """Environment of an `nba serve` process on ``ws`` with its own decision log."""
    return {**os.environ, **ws.env, "NBA_DECISION_LOG_URL": log_url, "NBA_LOG_LEVEL": "warning"}


def cli_key(env: dict[str, str], scopes: str) -> str:
    """A key made by `nba keys create`, as an operator would."""
    out = subprocess.run(
        [NBA, "keys", "create", "--scopes", scopes],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1].split()[-1]  # last word of the last line


@contextmanager
def nba_server(
    env: dict[str, str], port: int, stderr: Path | None = None, workers: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """`nba serve` as a real process on loopback, once it is ready; stopped afterwards.
    Its log lines go to ``stderr`` if given."""
    err = stderr.open("wb") if stderr is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        [NBA, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=err,
    )
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        break
            except (OSError, urllib.error.HTTPError):
                pass
            assert proc.poll() is None, "the server exited"
            assert time.time() < deadline, "the server did not become ready"
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        if stderr is not None:
            err.close()  # type: ignore[union-attr]


def post_json(port: int, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    """POST ``body`` as JSON to a running server with an API key; the JSON answer."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
        method="POST",
    )
    with urllib.request.urlopen(req) as r:
        answer: dict[str, Any] = json.loads(r.read())
        return answer


def break_online_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every online-store read fails with ``ConnectionError("store down")``."""
    from serving.online import OnlineProfiles

    def down(self: OnlineProfiles, ids: list[str]) -> list[Any]:
        raise ConnectionError("store down")

    monkeypatch.setattr(OnlineProfiles, "read_many", down)
