"""The decision log: every answer served and every outcome reported, durably.

SQLite under ``NBA_HOME`` by default (WAL journal, ``synchronous=FULL``: an fsync on every
commit), PostgreSQL by URL (``NBA_DECISION_LOG_URL``). One writer thread owns the write
connection and commits queued records in groups (group commit): a request is answered only
after its record is committed, so an acknowledged decision or outcome survives ``kill -9``,
while concurrent requests share one fsync.

Tables
    ``served``: one row per recommendation answer (ranking as JSON, model version, the
    profile's timestamp, degraded flag). ``outcomes``: one row per reported
    (decision, action), with the time the action was presented. ``api_keys``: hashed keys.
    View ``decisions``: the data contract's ``decisions`` table over ``outcomes``, the
    training data of the next model. Timestamps are UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``
    (sortable, identical in both databases).
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nba.exceptions import DecisionLogError

if TYPE_CHECKING:  # the log itself needs no model code
    from nba.policy.policy import Recommendation

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
HISTORY_DAYS = 365
_GROUP_MAX = 256

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


def now_utc() -> datetime:
    return datetime.now(UTC)


def age_days(delta: timedelta) -> float:
    """Whole microseconds over a day's, rounded once: exactly the age batch scoring computes
    in SQL (``date_diff('microsecond', ...) / 86400000000.0``), so both see the same history."""
    return (delta // _MICROSECOND) / 86_400_000_000


_MICROSECOND = timedelta(microseconds=1)


def to_text(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime(TIME_FORMAT)


def from_text(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ServedRecord:
    """One recommendation answer. ``ranking`` holds the recommended actions, best first, as
    dicts with ``action_id``, ``propensity``, ``value``, ``priority`` and
    ``shown_probability`` (for the top action: the exact probability it was drawn with)."""

    decision_id: str
    customer_id: str
    timestamp: datetime
    channel: str
    reason: str | None
    agent_id: str | None
    model_version: str
    features_timestamp: datetime | None
    known_customer: bool
    degraded: bool
    degraded_reason: str | None
    ranking: list[dict[str, Any]]
    arm: str = "nba"
    """``nba`` or ``control`` (a uniformly random candidate, for measuring lift)."""


def ranking_entries(
    ranked: Sequence[Recommendation], order: Sequence[int], probability: float
) -> list[dict[str, Any]]:
    """A served answer's ``ranking``: the policy's ranked candidates in the order shown.
    The top one carries the exact probability it was drawn with (1.0 when not exploring;
    lower ranks have none, no use for OPE); every one its policy rank (1 = the NBA's
    choice, also for the control group), by which the impact report segments."""
    return [
        {
            "action_id": ranked[j].action_id,
            "propensity": ranked[j].propensity,
            "value": ranked[j].value,
            "priority": ranked[j].priority,
            "shown_probability": probability if i == 0 else None,
            "policy_rank": j + 1,
        }
        for i, j in enumerate(order)
    ]


@dataclass(frozen=True)
class OutcomeRecord:
    decision_id: str
    action_id: str
    outcome: str
    agent_id: str | None
    recorded_at: datetime = field(default_factory=now_utc)


class OutcomeStatus(Enum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the same outcome again: idempotent, nothing changes
    CONFLICT = "conflict"  # a different outcome for a pair already reported
    UNKNOWN_DECISION = "unknown_decision"
    NOT_RECOMMENDED = "not_recommended"  # the action was not in that decision's ranking


@dataclass(frozen=True)
class OutcomeResult:
    status: OutcomeStatus
    customer_id: str | None = None
    recorded_outcome: str | None = None


@dataclass
class _Job:
    record: ServedRecord | OutcomeRecord
    future: Future[Any]


_STOP = object()


class _Backend:
    """Connections and SQL dialect of one database (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self.kind = "sqlite"
            self.path = Path(url.removeprefix("sqlite:///"))
        elif url.startswith(("postgresql://", "postgres://")):
            self.kind = "postgresql"
        else:
            raise DecisionLogError(
                f"NBA_DECISION_LOG_URL: unsupported URL '{_redact(url)}' "
                "(use sqlite:///path/to/file.db or postgresql://user:pass@host/db)"
            )

    def connect(self) -> Any:
        try:
            if self.kind == "sqlite":
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, timeout=10.0)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")  # fsync the WAL on every commit
                return conn
            import psycopg

            return psycopg.connect(self.url, autocommit=False)
        except Exception as exc:
            raise DecisionLogError(
                f"cannot open the decision log {_redact(self.url)}: {exc}"
            ) from None

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


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


class DecisionLog:
    """Durable store of decisions, outcomes and API keys (see the module docstring).

    ``start()`` starts the writer thread the API needs; commands that only read or manage
    keys use the synchronous methods without it.
    """

    def __init__(self, url: str) -> None:
        self._backend = _Backend(url)
        self.url = _redact(url)
        conn = self._backend.connect()
        try:
            self._backend.create_schema(conn)
        except Exception as exc:
            raise DecisionLogError(f"cannot create the decision log tables: {exc}") from None
        finally:
            conn.close()
        self._reader = self._backend.connect()
        self._read_lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue()
        self._writer: threading.Thread | None = None

    # --- writing (through the writer thread) ----------------------------------------------

    def start(self) -> None:
        if self._writer is None:
            conn = self._backend.connect()
            self._writer = threading.Thread(
                target=self._run, args=(conn,), name="decision-log-writer", daemon=True
            )
            self._writer.start()

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the connections."""
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join(timeout=30)
            self._writer = None
        with self._read_lock:
            self._reader.close()

    def submit(self, record: ServedRecord | OutcomeRecord) -> Future[Any]:
        """Queue a record; the future resolves (to ``None`` or an :class:`OutcomeResult`)
        once it is committed."""
        if self._writer is None:
            raise DecisionLogError("the decision log writer is not running (call start())")
        fut: Future[Any] = Future()
        self._queue.put(_Job(record, fut))
        return fut

    def write(self, record: ServedRecord | OutcomeRecord, timeout: float = 30.0) -> Any:
        """Submit and wait for the commit (for scripts and tests)."""
        return self.submit(record).result(timeout)

    def _run(self, conn: Any) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                break
            batch: list[_Job] = [first]
            while len(batch) < _GROUP_MAX:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stop = True
                    break
                batch.append(job)
            conn = self._commit_group(conn, batch)
        conn.close()

    def _commit_group(self, conn: Any, batch: list[_Job]) -> Any:
        try:
            results = [self._apply(conn, job.record) for job in batch]
            conn.commit()
        except Exception:
            conn = self._recover(conn)
            # One bad record must not fail its neighbours: retry each on its own.
            for job in batch:
                try:
                    result = self._apply(conn, job.record)
                    conn.commit()
                except Exception as exc:
                    conn = self._recover(conn)
                    job.future.set_exception(DecisionLogError(f"decision log write failed: {exc}"))
                else:
                    job.future.set_result(result)
            return conn
        for job, result in zip(batch, results, strict=True):
            job.future.set_result(result)
        return conn

    def _recover(self, conn: Any) -> Any:
        try:
            conn.rollback()
            return conn
        except Exception:
            with suppress(Exception):  # already broken; a new connection follows
                conn.close()
            return self._backend.connect()

    def _apply(self, conn: Any, record: ServedRecord | OutcomeRecord) -> OutcomeResult | None:
        if isinstance(record, ServedRecord):
            conn.execute(
                self._backend.sql(
                    f"INSERT INTO served ({', '.join(SERVED_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(SERVED_COLUMNS))})"
                ),
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
        sql = self._backend.sql
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

    # --- reading --------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self._read_lock:
            try:
                yield self._reader
            finally:
                if self._backend.kind == "postgresql":
                    self._reader.rollback()  # end the read transaction psycopg opened

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (``?`` placeholders in both databases)."""
        try:
            with self._read() as conn:
                return list(conn.execute(self._backend.sql(text), tuple(params)).fetchall())
        except Exception as exc:
            raise DecisionLogError(f"decision log read failed: {exc}") from None

    def history(self, customer_id: str, now: datetime) -> list[tuple[str, float, str]]:
        """The customer's reported outcomes of the last year: ``(action_id, age_days,
        outcome)``, oldest first (what the contact policy counts)."""
        since = to_text(now - timedelta(days=HISTORY_DAYS))
        rows = self.query(
            "SELECT action_id, presented_at, outcome FROM outcomes "
            "WHERE customer_id = ? AND presented_at >= ? ORDER BY presented_at",
            (customer_id, since),
        )
        return [(a, max(age_days(now - from_text(t)), 0.0), o) for a, t, o in rows]

    def decision(self, decision_id: str) -> dict[str, Any] | None:
        """A served decision with its outcomes, or ``None``."""
        rows = self.query(
            f"SELECT {', '.join(SERVED_COLUMNS)} FROM served WHERE decision_id = ?",
            (decision_id,),
        )
        if not rows:
            return None
        out = dict(zip(SERVED_COLUMNS, rows[0], strict=True))
        out["known_customer"] = bool(out["known_customer"])
        out["degraded"] = bool(out["degraded"])
        out["ranking"] = json.loads(out["ranking"])
        out["outcomes"] = [
            {"action_id": a, "outcome": o, "agent_id": g, "recorded_at": t}
            for a, o, g, t in self.query(
                "SELECT action_id, outcome, agent_id, recorded_at FROM outcomes "
                "WHERE decision_id = ? ORDER BY recorded_at",
                (decision_id,),
            )
        ]
        return out

    def count(self, table: str) -> int:
        if table not in ("served", "outcomes", "decisions", "api_keys"):
            raise ValueError(f"unknown decision log table {table!r}")
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])

    # --- synchronous writes for commands (keys) -------------------------------------------

    def execute_now(self, text: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own committed transaction; returns rows changed."""
        conn = self._backend.connect()
        try:
            cur = conn.execute(self._backend.sql(text), tuple(params))
            conn.commit()
            return int(cur.rowcount)
        except Exception as exc:
            raise DecisionLogError(f"decision log write failed: {exc}") from None
        finally:
            conn.close()
