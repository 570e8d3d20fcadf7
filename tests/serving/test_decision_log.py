"""The decision log on both databases: SQLite (the default) and a real PostgreSQL server
(Debian's postgresql, started by the test as the postgres user on a free port)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from nba.decision_log import (
    AppliedMark,
    DecisionLog,
    EventBatch,
    InteractionEvent,
    OutcomeRecord,
    OutcomeStatus,
    ServedRecord,
    now_utc,
)
from serving.keys import create_key, revoke_key, verify
from tests.conftest import running_postgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with running_postgres() as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgresql"])
def log_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.db'}"
    url: str = request.getfixturevalue("postgres_url")
    # A fresh schema state per test: drop what an earlier test left.
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP VIEW IF EXISTS decisions")
        conn.execute("DROP TABLE IF EXISTS served, outcomes, api_keys, events")
    return url


def _served(decision_id: str, customer: str, actions: list[str], minutes_ago: int) -> ServedRecord:
    return ServedRecord(
        decision_id=decision_id,
        customer_id=customer,
        timestamp=now_utc() - timedelta(minutes=minutes_ago),
        channel="phone",
        reason="complaint",
        agent_id="a1",
        model_version="3",
        features_timestamp=now_utc() - timedelta(days=1),
        known_customer=True,
        degraded=False,
        degraded_reason=None,
        ranking=[
            {"action_id": a, "propensity": 0.5, "value": 10.0, "priority": 5.0,
             "shown_probability": 1.0 if i == 0 else None}
            for i, a in enumerate(actions)
        ],
    )  # fmt: skip


def test_decisions_outcomes_history_and_keys_round_trip(log_url: str) -> None:
    log = DecisionLog(log_url)
    log.start()
    try:
        log.write(_served("d1", "C1", ["a", "b"], minutes_ago=60))
        log.write(_served("d2", "C1", ["b"], minutes_ago=30))
        log.write(_served("d3", "C2", ["a"], minutes_ago=10))
        results = [
            log.write(OutcomeRecord("d1", "a", "declined", "a1")),
            log.write(OutcomeRecord("d1", "a", "declined", "a1")),
            log.write(OutcomeRecord("d1", "a", "accepted", "a1")),
            log.write(OutcomeRecord("d1", "zzz", "accepted", None)),
            log.write(OutcomeRecord("nope", "a", "accepted", None)),
            log.write(OutcomeRecord("d2", "b", "no_response", None)),
            log.write(OutcomeRecord("d1", "b", "accepted", None)),
        ]
        assert [r.status for r in results] == [
            OutcomeStatus.RECORDED,
            OutcomeStatus.DUPLICATE,
            OutcomeStatus.CONFLICT,
            OutcomeStatus.NOT_RECOMMENDED,
            OutcomeStatus.UNKNOWN_DECISION,
            OutcomeStatus.RECORDED,
            OutcomeStatus.RECORDED,
        ]
        history = log.history("C1", now_utc())
        assert [(a, o) for a, _, o in history] == [
            ("a", "declined"),
            ("b", "accepted"),
            ("b", "no_response"),
        ]
        ages = [age for _, age, _ in history]
        assert ages[0] == pytest.approx(1 / 24, rel=0.05) and ages[2] < ages[0]
        assert log.history("C2", now_utc()) == []
        rows = log.query("SELECT decision_id, action_id, outcome, propensity FROM decisions")
        assert sorted(rows) == [
            ("d1:a", "a", "declined", 1.0),
            ("d1:b", "b", "accepted", None),
            ("d2:b", "b", "no_response", 1.0),
        ]
        decision = log.decision("d1")
        assert decision is not None and decision["model_version"] == "3"
        assert [o["action_id"] for o in decision["outcomes"]] == ["a", "b"]
        key = create_key(log, ("recommend",), "t")
        assert verify(log, key) == (key.split("_")[1], frozenset({"recommend"}))
        assert verify(log, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert revoke_key(log, key) and verify(log, key) is None
    finally:
        log.close()
    # Everything committed is there for the next process.
    again = DecisionLog(log_url)
    assert again.count("served") == 3 and again.count("outcomes") == 3
    again.close()


def test_a_bad_url_is_a_clear_error() -> None:
    from nba.exceptions import DecisionLogError

    with pytest.raises(DecisionLogError, match="unsupported URL"):
        DecisionLog("mysql://root:secret@db/nba")
    with pytest.raises(DecisionLogError, match=r"cannot open.*\*\*\*") as err:
        DecisionLog("postgresql://nba:secret@127.0.0.1:1/nba")
    assert "secret" not in str(err.value)


def test_a_log_from_before_the_control_group_gains_the_arm_column(log_url: str) -> None:
    """Answers logged before the ``arm`` column existed were all the NBA's."""
    old_served = """CREATE TABLE served (
        decision_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, timestamp TEXT NOT NULL,
        channel TEXT NOT NULL, reason TEXT, agent_id TEXT, model_version TEXT NOT NULL,
        features_timestamp TEXT, known_customer INTEGER NOT NULL, degraded INTEGER NOT NULL,
        degraded_reason TEXT, ranking TEXT NOT NULL)"""
    row = (
        "('OLD1', 'C1', '2026-01-01 10:00:00.000000', 'phone', NULL, NULL, '1', NULL, "
        "1, 0, NULL, '[]')"
    )
    if log_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(log_url.removeprefix("sqlite:///")) as conn:
            conn.execute(old_served)
            conn.execute(f"INSERT INTO served VALUES {row}")
    else:
        import psycopg

        with psycopg.connect(log_url, autocommit=True) as conn:
            conn.execute(old_served)
            conn.execute(f"INSERT INTO served VALUES {row}")
    log = DecisionLog(log_url)
    try:
        old = log.decision("OLD1")
        assert old is not None and old["arm"] == "nba"
        log.start()
        record = _served("NEW1", "C2", ["a", "b"], 1)
        log.write(ServedRecord(**{**record.__dict__, "arm": "control"}))
        new = log.decision("NEW1")
        assert new is not None and new["arm"] == "control"
    finally:
        log.close()
    DecisionLog(log_url).close()  # opening a migrated log again changes nothing


def test_only_the_api_s_log_has_a_deadline(log_url: str) -> None:
    """Batch jobs read the whole log: no statement limit for them, the API's deadline
    for the server."""
    batch, api = DecisionLog(log_url), DecisionLog(log_url, deadline=0.5)
    try:
        if log_url.startswith("postgresql"):
            assert batch.query("SHOW statement_timeout") == [("0",)]
            assert api.query("SHOW statement_timeout") == [("500ms",)]
            assert api.query("SHOW lock_timeout") == [("500ms",)]
        else:
            assert batch.query("PRAGMA busy_timeout") == [(10_000,)]
            assert api.query("PRAGMA busy_timeout") == [(500,)]
    finally:
        batch.close()
        api.close()


def test_a_readiness_probe_grouped_with_records_commits_them_all(log_url: str) -> None:
    """Under load, a readiness probe shares a commit with the records queued beside it: it
    must neither fail them (SQLite) nor roll them back (PostgreSQL)."""
    log = DecisionLog(log_url)
    log.start()
    try:
        blocker = _hold_the_write_lock(log_url)
        first = log.submit(_served("P0", "C1", ["a"], minutes_ago=3))  # waits for the lock
        queued = [
            log.submit(_served("P1", "C1", ["a"], minutes_ago=2)),
            log.submit(None),
            log.submit(_served("P2", "C2", ["b"], minutes_ago=1)),
            log.submit(None),
        ]
        blocker.rollback()
        blocker.close()
        for fut in [first, *queued]:
            fut.result(timeout=30)
        assert log.problem is None
        assert all(log.decision(d) is not None for d in ("P0", "P1", "P2"))
    finally:
        log.close()


def _hold_the_write_lock(url: str) -> Any:
    """Another connection holding the log's write lock until it rolls back."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        return conn
    import psycopg

    pg = psycopg.connect(url)
    pg.execute("LOCK TABLE served IN EXCLUSIVE MODE")
    return pg


def test_pushed_events_are_stored_whole_or_not_at_all_with_exact_numbers(log_url: str) -> None:
    from nba.live_profiles import pushed_events

    log = DecisionLog(log_url)
    log.start()
    try:
        at = now_utc().replace(microsecond=123456)
        first = InteractionEvent("e-1", "C1", at, "phone", "payment", 39.9, -0.123456789)
        second = InteractionEvent("e-2", "C1", at + timedelta(minutes=1), "app", "login")
        assert log.write(EventBatch((first, second))).recorded
        # A batch with an id recorded before is refused whole, saying whether it matched.
        third = InteractionEvent("e-3", "C2", at, "chat", "complaint")
        changed = InteractionEvent("e-1", "C1", at, "phone", "payment", 40.0, None)
        result = log.write(EventBatch((third, changed, second)))
        assert not result.recorded
        assert sorted(result.already) == [("e-1", False), ("e-2", True)]
        assert log.count("events") == 2

        stored = pushed_events(log).sort_by("event_id").to_pylist()
        assert [e["event_id"] for e in stored] == ["e-1", "e-2"]
        assert stored[0]["amount"] == 39.9 and stored[0]["sentiment"] == -0.123456789
        assert stored[0]["timestamp"] == at.replace(tzinfo=None)  # to the microsecond

        assert log.query("SELECT count(*) FROM events WHERE online_at IS NULL") == [(2,)]
        log.write(AppliedMark(("e-1",)))
        assert log.query("SELECT event_id FROM events WHERE online_at IS NULL") == [("e-2",)]
    finally:
        log.close()
