"""The decision log's two databases, SQLite and PostgreSQL: connections with time limits,
the schema, the SQL of each write, and URLs with their secrets masked."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from nba.decision_log.records import (
    AppliedMark,
    EventBatch,
    EventResult,
    OutcomeRecord,
    OutcomeResult,
    OutcomeStatus,
    ServedRecord,
    to_text,
)
from nba.exceptions import DecisionLogError

SERVED_COLUMNS = (
    "decision_id",
    "customer_id",
    "timestamp",
    "channel",
    "reason",
    "agent_id",
    "model_version",
    "features_timestamp",
    "known_customer",
    "degraded",
    "degraded_reason",
    "ranking",
    "arm",
)
_TABLES = (
    """CREATE TABLE IF NOT EXISTS served (
        decision_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        channel TEXT NOT NULL,
        reason TEXT,
        agent_id TEXT,
        model_version TEXT NOT NULL,
        features_timestamp TEXT,
        known_customer INTEGER NOT NULL,
        degraded INTEGER NOT NULL,
        degraded_reason TEXT,
        ranking TEXT NOT NULL,
        arm TEXT NOT NULL DEFAULT 'nba')""",
    "CREATE INDEX IF NOT EXISTS served_customer ON served (customer_id, timestamp)",
    """CREATE TABLE IF NOT EXISTS outcomes (
        decision_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        presented_at TEXT NOT NULL,
        channel TEXT NOT NULL,
        outcome TEXT NOT NULL,
        propensity REAL,
        agent_id TEXT,
        recorded_at TEXT NOT NULL,
        PRIMARY KEY (decision_id, action_id))""",
    "CREATE INDEX IF NOT EXISTS outcomes_customer ON outcomes (customer_id, presented_at)",
    # Counters the API's workers share (serving.reloads: a reload that reaches them all).
    "CREATE TABLE IF NOT EXISTS control (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    # Interactions pushed by the API or `nba events push` (the contract's columns), with
    # when they were received and when they reached the online profiles.
    """CREATE TABLE IF NOT EXISTS events (
        event_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        channel TEXT NOT NULL,
        type TEXT NOT NULL,
        amount DOUBLE PRECISION,
        sentiment DOUBLE PRECISION,
        received_at TEXT NOT NULL,
        online_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS events_customer ON events (customer_id, timestamp)",
    "CREATE INDEX IF NOT EXISTS events_pending ON events (online_at, received_at)",
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        scopes TEXT NOT NULL,
        label TEXT,
        created_at TEXT NOT NULL,
        revoked_at TEXT)""",
)
# The data contract's decisions table: one row per presented action with its outcome.
_VIEW = """decisions AS
    SELECT decision_id || ':' || action_id AS decision_id, customer_id,
           presented_at AS timestamp, channel, action_id, outcome, propensity,
           CAST(NULL AS REAL) AS value
    FROM outcomes"""
# A decision id is a fresh UUID: a conflict can only be this log's own earlier commit of
# the same answer, retried after a connection broke during COMMIT.
_INSERT_SERVED = (
    f"INSERT INTO served ({', '.join(SERVED_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SERVED_COLUMNS))}) ON CONFLICT (decision_id) DO NOTHING"
)
_PATIENCE = 10  # seconds to connect (or wait for SQLite's lock) without a deadline
_SECRET_PARAMETERS = {"password", "passfile", "sslpassword", "sslkey"}


def redact(url: str) -> str:
    """The URL with every secret masked: the password in ``user:password@`` and in the query
    string (``?password=...``), for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        creds, host = netloc.rsplit("@", 1)
        if ":" in creds:
            netloc = f"{creds.split(':', 1)[0]}:***@{host}"
    query = "&".join(
        f"{k}=***" if k.lower() in _SECRET_PARAMETERS else f"{k}={v}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing to mask (and urlunsplit would drop sqlite:///'s empty host)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class Database:
    """Connections and SQL dialect of one database. With a ``timeout``, every connection
    waits at most that many seconds: to connect, for a lock, for a statement (the API's
    deadline). Without one (batch jobs, commands) statements may run as long as they need;
    connecting and SQLite's wait for a lock still give up after 10 s."""

    def __init__(self, url: str, timeout: float | None) -> None:
        self.url = url
        self.timeout = timeout
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.path = Path(url.removeprefix("sqlite:///"))
        elif url.startswith(("postgresql://", "postgres://")):
            self.kind = "postgresql"
        else:
            raise DecisionLogError(
                f"NBA_DECISION_LOG_URL: unsupported URL '{redact(url)}' "
                "(use sqlite:///path/to/file.db or postgresql://user:pass@host/db)"
            )

    def connect(self) -> Any:
        try:
            if self.kind == "sqlite":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                wait = self.timeout if self.timeout is not None else _PATIENCE
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=wait)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit
                return conn
            import psycopg

            connect = math.ceil(self.timeout) if self.timeout is not None else _PATIENCE
            pg = psycopg.connect(self.url, autocommit=False, connect_timeout=max(1, connect))
            if self.timeout is not None:
                ms = int(self.timeout * 1000)
                pg.execute(f"SET statement_timeout = {ms}")
                pg.execute(f"SET lock_timeout = {ms}")
                pg.commit()
            return pg
        except Exception as exc:
            raise DecisionLogError(
                f"cannot open the decision log {redact(self.url)}: {_plain(exc, self.url)}"
            ) from None

    def is_outage(self, exc: BaseException) -> bool:
        """A fault of the database (down, locked, connection lost), not of one record."""
        if isinstance(exc, sqlite3.OperationalError | DecisionLogError):
            return True
        if self.kind == "postgresql":
            import psycopg

            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return False

    def probe(self, conn: Any) -> None:
        """Raise unless a write could commit now: SQLite takes the write lock (unless this
        transaction holds it already), PostgreSQL answers a query. Inside the writer's
        transaction: it ends with the group's commit, never rolling back a neighbour's
        record."""
        if self.kind == "sqlite":
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
        else:
            conn.execute("SELECT 1").fetchone()

    def columns(self, conn: Any, table: str) -> set[str]:
        if self.kind == "sqlite":
            return {r[1] for r in conn.execute(f"PRAGMA table_info({table})").fetchall()}
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
        ).fetchall()
        return {r[0] for r in rows}

    def sql(self, text: str) -> str:
        return text if self.kind == "sqlite" else text.replace("?", "%s")

    def create_schema(self, conn: Any) -> None:
        for ddl in _TABLES:
            conn.execute(ddl)
        # Logs written before the control group existed: every answer was the NBA's.
        if "arm" not in self.columns(conn, "served"):
            conn.execute("ALTER TABLE served ADD COLUMN arm TEXT NOT NULL DEFAULT 'nba'")
        view = "CREATE VIEW IF NOT EXISTS " if self.kind == "sqlite" else "CREATE OR REPLACE VIEW "
        conn.execute(view + _VIEW)
        conn.commit()

    # --- the writes (inside the writer's transaction) -------------------------------------

    def apply(self, conn: Any, record: Record) -> OutcomeResult | EventResult | None:
        if isinstance(record, EventBatch):
            return self._apply_events(conn, record)
        if isinstance(record, AppliedMark):
            conn.cursor().executemany(
                self.sql("UPDATE events SET online_at = ? WHERE event_id = ?"),
                [(to_text(record.at), e) for e in record.event_ids],
            )
            return None
        if isinstance(record, ServedRecord):
            conn.execute(
                self.sql(_INSERT_SERVED),
                (
                    record.decision_id,
                    record.customer_id,
                    to_text(record.timestamp),
                    record.channel,
                    record.reason,
                    record.agent_id,
                    record.model_version,
                    to_text(record.features_timestamp) if record.features_timestamp else None,
                    int(record.known_customer),
                    int(record.degraded),
                    record.degraded_reason,
                    json.dumps(record.ranking),
                    record.arm,
                ),
            )
            return None
        return self._apply_outcome(conn, record)

    def _apply_outcome(self, conn: Any, o: OutcomeRecord) -> OutcomeResult:
        sql = self.sql
        served = conn.execute(
            sql(
                "SELECT customer_id, timestamp, channel, ranking FROM served WHERE decision_id = ?"
            ),
            (o.decision_id,),
        ).fetchone()
        if served is None:
            return OutcomeResult(OutcomeStatus.UNKNOWN_DECISION)
        customer_id, presented_at, channel, ranking = served
        shown = {r["action_id"]: r for r in json.loads(ranking)}
        if o.action_id not in shown:
            return OutcomeResult(OutcomeStatus.NOT_RECOMMENDED, customer_id)
        existing = conn.execute(
            sql("SELECT outcome FROM outcomes WHERE decision_id = ? AND action_id = ?"),
            (o.decision_id, o.action_id),
        ).fetchone()
        if existing is not None:
            status = (
                OutcomeStatus.DUPLICATE if existing[0] == o.outcome else OutcomeStatus.CONFLICT
            )
            return OutcomeResult(status, customer_id, existing[0])
        conn.execute(
            sql("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
            (
                o.decision_id,
                o.action_id,
                customer_id,
                presented_at,
                channel,
                o.outcome,
                shown[o.action_id].get("shown_probability"),
                o.agent_id,
                to_text(o.recorded_at),
            ),
        )
        return OutcomeResult(OutcomeStatus.RECORDED, customer_id, o.outcome)

    def _apply_events(self, conn: Any, batch: EventBatch) -> EventResult:
        """All the batch's events, or none when any id was recorded before."""
        ids = [e.event_id for e in batch.events]
        stored: dict[str, tuple[Any, ...]] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ", ".join("?" * len(part))
            for row in conn.execute(
                self.sql(
                    "SELECT event_id, customer_id, timestamp, channel, type, amount, sentiment "
                    f"FROM events WHERE event_id IN ({marks})"
                ),
                part,
            ).fetchall():
                stored[row[0]] = tuple(row)
        if stored:
            return EventResult(
                False,
                tuple(
                    (e.event_id, e.same_as(stored[e.event_id]))
                    for e in batch.events
                    if e.event_id in stored
                ),
            )
        received = to_text(batch.received_at)
        conn.cursor().executemany(
            self.sql("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)"),
            [(*e.row(), received) for e in batch.events],
        )
        return EventResult(True)


Record = ServedRecord | OutcomeRecord | EventBatch | AppliedMark


def _plain(exc: BaseException, url: str) -> str:
    """The driver's message, first line only, without the URL's secrets."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    parts = urlsplit(url)
    query = [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_PARAMETERS]
    for secret in [parts.password, *query]:
        if secret:
            text = text.replace(secret, "***")
    return text
