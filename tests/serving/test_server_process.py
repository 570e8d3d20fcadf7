"""`nba serve` as a real process: keys made by the CLI, durability under kill -9, and a
schemathesis run over the OpenAPI spec with no 5xx answer."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nba.decision_log import DecisionLog
from tests.conftest import free_port
from tests.serving.conftest import NBA, Workspace, cli_key, nba_server, post_json, server_env

pytestmark = pytest.mark.slow


def _worker_pids(server_pid: int) -> list[int]:
    children = (Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text()).split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def test_several_workers_share_the_port_and_the_decision_log(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    log_url = f"sqlite:///{tmp_path / 'decision_log.db'}"
    env = server_env(sqlite_workspace, log_url)
    key = cli_key(env, "recommend,outcomes")
    port = free_port()
    customers = sqlite_workspace.customers[:60]
    with nba_server(env, port, workers=2) as proc:
        assert len(_worker_pids(proc.pid)) == 2
        with ThreadPoolExecutor(max_workers=6) as pool:
            answers = list(
                pool.map(
                    lambda cid: post_json(
                        port, "/v1/recommendations", {"customer_id": cid, "channel": "chat"}, key
                    ),
                    customers,
                )
            )
        # Each answer can be read back through either worker: one log, shared.
        for a in answers:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/decisions/{a['decision_id']}",
                headers={"X-API-Key": key},
            )
            with urllib.request.urlopen(req) as r:
                assert json.loads(r.read())["decision_id"] == a["decision_id"]
    log = DecisionLog(log_url)
    assert log.count("served") == len(customers)
    log.close()


def test_a_reload_reaches_every_worker(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    """`POST /admin/reload` is answered by one worker; the others follow within seconds
    through the decision log's shared counter, not at the registry poll (off here)."""
    import mlflow
    from mlflow import MlflowClient

    from nba.config import get_settings
    from nba.tracking import MODEL_NAME, configure, set_alias
    from tests.conftest import environment

    home = tmp_path / "home"
    shutil.copytree(sqlite_workspace.home, home)
    log_url = f"sqlite:///{tmp_path / 'decision_log.db'}"
    env = server_env(sqlite_workspace, log_url) | {
        "NBA_HOME": str(home),
        "NBA_MODEL_POLL_SECONDS": "0",
    }
    key = cli_key(env, "recommend,admin")
    port = free_port()
    body = {"customer_id": sqlite_workspace.customers[0], "channel": "phone"}

    def versions(n: int) -> set[str]:
        return {post_json(port, "/v1/recommendations", body, key)["model_version"]
                for _ in range(n)}  # fmt: skip

    with nba_server(env, port, workers=2) as proc:
        assert len(_worker_pids(proc.pid)) == 2
        (old,) = versions(12)
        with environment(NBA_HOME=str(home)):
            settings = get_settings()
            configure(settings)
            current = MlflowClient().get_model_version_by_alias(MODEL_NAME, "champion")
            new = str(mlflow.register_model(current.source, MODEL_NAME).version)
            set_alias("champion", new, settings)
        reloaded = post_json(port, "/admin/reload", {}, key)
        assert reloaded == {"model_version": new, "changed": True}
        deadline = time.monotonic() + 90  # each worker loads the version apart (~5 s)
        seen = versions(12)
        while seen != {new} and time.monotonic() < deadline:
            time.sleep(1.0)
            seen = versions(12)
    assert old != new and seen == {new}


def test_acknowledged_outcomes_survive_kill_9(sqlite_workspace: Workspace, tmp_path: Path) -> None:
    log_url = f"sqlite:///{tmp_path / 'decision_log.db'}"
    env = server_env(sqlite_workspace, log_url)
    key = cli_key(env, "recommend,outcomes")
    assert key.startswith("nba_")
    port = free_port()
    acknowledged: list[tuple[str, str]] = []
    with nba_server(env, port) as proc:
        for cid in sqlite_workspace.customers[:40]:
            body = {"customer_id": cid, "channel": "chat"}
            a = post_json(port, "/v1/recommendations", body, key)
            if not a["recommendations"]:
                continue
            action = a["recommendations"][0]["action_id"]
            o = post_json(
                port,
                "/v1/outcomes",
                {"decision_id": a["decision_id"], "action_id": action, "outcome": "declined"},
                key,
            )
            assert o["status"] == "recorded"
            acknowledged.append((a["decision_id"], action))
        proc.send_signal(signal.SIGKILL)  # no shutdown hook runs
        proc.wait(timeout=10)
    assert len(acknowledged) >= 10
    with nba_server(env, port):
        for decision_id, action in acknowledged:
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/decisions/{decision_id}", headers={"X-API-Key": key}
            )
            with urllib.request.urlopen(req) as r:
                logged = json.loads(r.read())
            assert [(o["action_id"], o["outcome"]) for o in logged["outcomes"]] == [
                (action, "declined")
            ]
    log = DecisionLog(log_url)
    assert log.count("decisions") == len(acknowledged)
    assert log.count("served") >= len(acknowledged)


def test_keys_from_the_cli_are_shown_once_scoped_and_revocable(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    env = server_env(sqlite_workspace, f"sqlite:///{tmp_path / 'log.db'}")
    key = cli_key(env, "outcomes")
    listed = subprocess.run([NBA, "keys", "list"], env=env, capture_output=True, text=True)
    key_id = key.split("_")[1]
    assert key_id in listed.stdout and key not in listed.stdout
    bad = subprocess.run(
        [NBA, "keys", "create", "--scopes", "recommend,root"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "root" in bad.stderr
    port = free_port()
    body = {"customer_id": sqlite_workspace.customers[0], "channel": "phone"}
    with nba_server(env, port):
        with pytest.raises(urllib.error.HTTPError) as forbidden:
            post_json(port, "/v1/recommendations", body, key)
        assert forbidden.value.code == 403
        revoked = subprocess.run(
            [NBA, "keys", "revoke", key_id], env=env, capture_output=True, text=True
        )
        assert revoked.returncode == 0
        with pytest.raises(urllib.error.HTTPError) as gone:
            post_json(port, "/v1/outcomes", {"decision_id": "x", "action_id": "y"}, key)
        assert gone.value.code == 401
    again = subprocess.run(
        [NBA, "keys", "revoke", key_id], env=env, capture_output=True, text=True
    )
    assert again.returncode == 2 and "no active key" in again.stderr


def test_no_request_the_spec_allows_gets_a_server_error(
    sqlite_workspace: Workspace, tmp_path: Path
) -> None:
    """schemathesis generates requests from the OpenAPI spec (valid and invalid bodies,
    every endpoint) against the live server; the only check is: never a 5xx."""
    env = server_env(sqlite_workspace, f"sqlite:///{tmp_path / 'log.db'}")
    key = cli_key(env, "recommend,outcomes,admin")
    port = free_port()
    with nba_server(env, port):
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--header",
                f"X-API-Key: {key}",
                "--max-examples",
                "60",
                "--generation-deterministic",
                "--report",
                "junit",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env={**env, "NO_COLOR": "1"},
            cwd=tmp_path,  # its cache folder goes there, not into the repository
        )
    assert run.returncode == 0, run.stdout[-3000:]
    junit = (tmp_path / "report").glob("*.xml")
    text = "".join(p.read_text() for p in junit)
    assert "/v1/recommendations" in text and "/v1/outcomes" in text  # both were exercised
