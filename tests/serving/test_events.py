"""Pushed interactions through the real API: reflected in the next answer and on the desk,
bad events refused with the field named and nothing written, ids never counted twice,
acknowledged events kept through ``kill -9``. Each test works on its own copy of the
session's SQLite workspace (events change the online profiles)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from nba.decision_log import DecisionLog
from nba.feature_store import online_profiles, open_store
from tests.conftest import environment, free_port
from tests.serving.conftest import (
    NBA,
    Api,
    ApiFactory,
    Workspace,
    cli_key,
    nba_server,
    post_json,
    server_env,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def own_workspace(sqlite_workspace: Workspace, tmp_path: Path) -> Workspace:
    home = tmp_path / "ws" / "home"
    shutil.copytree(sqlite_workspace.home, home)
    return Workspace(
        home, sqlite_workspace.data, {"NBA_HOME": str(home)}, sqlite_workspace.customers
    )


def _summary(api: Api, customer_id: str) -> dict[str, Any]:
    r = api.client.get(f"/v1/customers/{customer_id}", headers=api.headers())
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _when(summary: dict[str, Any], later: timedelta) -> datetime:
    return datetime.fromisoformat(summary["profile_as_of"].replace("Z", "+00:00")) + later


def _event(event_id: str, customer_id: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "timestamp": at.isoformat(),
        "channel": "phone",
        "type": "complaint",
        **extra,
    }


def _wait_for_profile(api: Api, customer_id: str, as_of: datetime) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        summary = _summary(api, customer_id)
        if summary["profile_as_of"] and _when(summary, timedelta(0)) == as_of:
            return summary
        assert time.monotonic() < deadline, f"profile still as of {summary['profile_as_of']}"
        time.sleep(0.05)


def _quiet_customer(api: Api) -> tuple[str, dict[str, Any]]:
    """A customer with a profile who has not asked to cancel lately."""
    for cid in api.workspace.customers[::7]:
        summary = _summary(api, cid)
        if summary["known"] and "asked to cancel in the last 3 months" not in summary["attention"]:
            return cid, summary
    raise AssertionError("no quiet customer in the workspace")


def test_a_pushed_event_is_in_the_next_answer_and_on_the_desk(
    api_factory: ApiFactory, own_workspace: Workspace
) -> None:
    api = api_factory(own_workspace)
    cid, before = _quiet_customer(api)
    at = _when(before, timedelta(hours=3))
    event = _event("crm-1", cid, at, type="cancellation_request", sentiment=-0.7)
    r = api.client.post("/v1/interactions", json=event, headers=api.headers("events"))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "recorded", "recorded": 1, "customers": [cid]}

    after = _wait_for_profile(api, cid, at + timedelta(seconds=1))
    assert "asked to cancel in the last 3 months" in after["attention"]
    assert after["today"] == [f"called on {at:%d %b} at {at:%H:%M} asking to cancel"]
    answer = api.recommend(cid)
    assert answer["features_timestamp"] is not None
    assert datetime.fromisoformat(str(answer["features_timestamp"]).replace("Z", "+00:00")) == (
        at + timedelta(seconds=1)
    )
    # A key without the events scope may not push.
    r = api.client.post("/v1/interactions", json=event, headers=api.headers("recommend"))
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"customer_id": "NOBODY"}, "customer_id", "unknown customer 'NOBODY'"),
        ({"type": "fax"}, "type", "unknown type 'fax'"),
        ({"channel": "pigeon"}, "channel", "unknown channel 'pigeon'"),
        ({"sentiment": 1.5}, "sentiment", "outside -1 to 1"),
        ({"timestamp": "2999-01-01T00:00:00Z"}, "timestamp", "is in the future"),
        ({"timestamp": "1990-01-01T00:00:00Z"}, "timestamp", "before the customer signed up"),
        ({"event_id": "first"}, "event_id", "'first' is also events[0]"),
    ],
)
def test_a_bad_event_is_refused_with_its_field_named_and_nothing_is_written(
    api_factory: ApiFactory,
    own_workspace: Workspace,
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    api = api_factory(own_workspace)
    cid, before = _quiet_customer(api)
    at = _when(before, timedelta(hours=1))
    good = _event("first", cid, at)
    bad = {**_event("second", cid, at + timedelta(minutes=1)), **change}
    r = api.client.post(
        "/v1/interactions", json={"events": [good, bad]}, headers=api.headers("events")
    )
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_request"
    assert f"events[1].{field}: " in r.json()["detail"]
    assert words in r.json()["detail"]
    assert api.log.count("events") == 0
    assert _summary(api, cid)["profile_as_of"] == before["profile_as_of"]


def test_an_event_id_pushed_again_is_refused_and_counted_once(
    api_factory: ApiFactory, own_workspace: Workspace
) -> None:
    api = api_factory(own_workspace)
    cid, before = _quiet_customer(api)
    at = _when(before, timedelta(hours=1))
    first = _event("crm-9", cid, at)
    headers = api.headers("events")
    assert api.client.post("/v1/interactions", json=first, headers=headers).status_code == 200

    again = api.client.post("/v1/interactions", json=first, headers=headers)
    assert again.status_code == 409
    assert "'crm-9' was recorded before with the same content" in again.json()["detail"]
    other = api.client.post("/v1/interactions", json={**first, "type": "inquiry"}, headers=headers)
    assert other.status_code == 409
    assert "with other content" in other.json()["detail"]
    fresh = _event("crm-10", cid, at + timedelta(minutes=5))
    mixed = api.client.post("/v1/interactions", json={"events": [fresh, first]}, headers=headers)
    assert mixed.status_code == 409
    assert "events[1].event_id" in mixed.json()["detail"]
    assert api.log.count("events") == 1  # crm-10 was not recorded either

    after = _wait_for_profile(api, cid, at + timedelta(seconds=1))
    assert after["complaints"].startswith("one complaint in the last 30 days")
    assert before["complaints"].startswith("no complaints in the last 30 days")


def test_acknowledged_events_survive_kill_9_and_reach_the_profiles_after_restart(
    own_workspace: Workspace, tmp_path: Path
) -> None:
    log_url = f"sqlite:///{tmp_path / 'decision_log.db'}"
    env = server_env(own_workspace, log_url)
    key = cli_key(env, "recommend,events")
    port = free_port()
    acknowledged: dict[str, datetime] = {}  # customer -> newest event pushed
    start = datetime.fromisoformat("2000-01-01T00:00:00+00:00")
    with nba_server(env, port) as proc:
        customers = own_workspace.customers[:12]
        summary = _get(port, f"/v1/customers/{customers[0]}", key)
        start = _when(summary, timedelta(minutes=30))
        for i in range(36):
            cid = customers[i % len(customers)]
            at = start + timedelta(minutes=i)
            answer = post_json(port, "/v1/interactions", _event(f"k9-{i}", cid, at), key)
            assert answer["recorded"] == 1
            acknowledged[cid] = at
        proc.send_signal(signal.SIGKILL)  # no shutdown hook runs
        proc.wait(timeout=10)
    log = DecisionLog(log_url)
    assert log.count("events") == 36
    with nba_server(env, port):
        deadline = time.monotonic() + 30
        for cid, newest in acknowledged.items():
            while True:
                summary = _get(port, f"/v1/customers/{cid}", key)
                if _when(summary, timedelta(0)) >= newest + timedelta(seconds=1):
                    break
                assert time.monotonic() < deadline, f"{cid}: events not in the profile"
                time.sleep(0.2)
    assert log.query("SELECT count(*) FROM events WHERE online_at IS NULL") == [(0,)]


def _get(port: int, path: str, key: str) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(req) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body
    except urllib.error.HTTPError as exc:
        raise AssertionError(exc.read().decode()) from None


def test_events_push_from_a_german_excel_file(own_workspace: Workspace, tmp_path: Path) -> None:
    env = server_env(own_workspace, f"sqlite:///{tmp_path / 'decision_log.db'}")
    cid = own_workspace.customers[3]
    manifest = own_workspace.home / "feast" / "data" / "customer_profiles.build.json"
    latest = datetime.fromisoformat(json.loads(manifest.read_text())["as_of_latest"])
    at = latest + timedelta(hours=2)

    def push(rows: list[str]) -> subprocess.CompletedProcess[str]:
        path = tmp_path / "heute.csv"
        header = "event_id;customer_id;timestamp;channel;type;amount;sentiment\n"
        path.write_bytes((header + "\n".join(rows) + "\n").encode("cp1252"))
        return subprocess.run(
            [NBA, "events", "push", str(path)], env=env, capture_output=True, text=True
        )

    # One bad line: refused, nothing recorded, the line and the column named.
    done = push(
        [
            f"f-1;{cid};{at:%Y-%m-%d %H:%M:%S};phone;missed_payment;39,90;-0,4",
            f"f-2;{cid};{at:%Y-%m-%d %H:%M:%S};Telefon;missed_payment;39,90;-0,4",
            f"f-3;{cid};2999-01-01 09:14:00;phone;missed_payment;39,90;-0,4",
        ]
    )
    assert done.returncode == 2, done.stderr
    assert "heute.csv line 3, column 'channel': unknown channel 'Telefon'" in done.stderr
    assert "heute.csv line 4, column 'timestamp': 2999-01-01 09:14 is in the future" in done.stderr
    assert "2 problem(s)" in done.stderr
    assert "Traceback" not in done.stderr
    log = DecisionLog(env["NBA_DECISION_LOG_URL"])
    assert log.count("events") == 0

    done = push([f"f-1;{cid};{at:%Y-%m-%d %H:%M:%S};phone;missed_payment;39,90;-0,4"])
    assert done.returncode == 0, done.stderr
    assert "recorded 1 events of 1 customers" in done.stdout
    assert "decimal comma" in done.stdout  # said how the file was read
    with environment(**env):
        online = online_profiles(open_store(), [cid])
    assert online["n_missed_payment_7d"] == [1]
    assert online["amount_missed_90d"][0] >= 39.9
    assert log.query("SELECT amount, sentiment FROM events") == [(39.9, -0.4)]
