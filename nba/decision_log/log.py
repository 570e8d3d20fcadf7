"""The decision log: every answer served and every outcome reported, durably.

SQLite under ``NBA_HOME`` by default (WAL journal, ``synchronous=FULL``: an fsync on every
commit), PostgreSQL by URL (``NBA_DECISION_LOG_URL``). One writer thread owns the write
connection and commits queued records in groups (group commit): a request is answered only
after its record is committed, so an acknowledged decision or outcome survives ``kill -9``,
while concurrent requests share one fsync.

Faults: the writer never dies. A commit that fails because of the database (down, locked,
connection lost) is retried once on a new connection; if that fails too, the log is
*unavailable*: writes and reads fail at once with :class:`DecisionLogUnavailable` (the API
answers 503) while the writer probes the database every ``RETRY_SECONDS`` and becomes
available again at the first probe that could commit. With a ``deadline`` (the API's), no
operation waits longer than it; without one (batch jobs and commands), reads and commits
take as long as they need.

Tables
    ``served``: one row per recommendation answer (ranking as JSON, model version, the
    profile's timestamp, degraded flag). ``outcomes``: one row per reported
    (decision, action), with the time the action was presented. ``api_keys``: hashed keys.
    View ``decisions``: the data contract's ``decisions`` table over ``outcomes``, the
    training data of the next model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from nba.decision_log.database import SERVED_COLUMNS, Database, Record, redact
from nba.decision_log.records import (
    age_days,
    from_text,
    to_text,
)
from nba.exceptions import DecisionLogError, DecisionLogUnavailable

log = logging.getLogger("nba.decision_log")
T = TypeVar("T")

HISTORY_DAYS = 365
RETRY_SECONDS = 0.25  # how often an unavailable database is probed
_GROUP_MAX = 256
READER_THREADS = 4  # PostgreSQL reads in flight at once, beside the event loop
_STOP = object()


_HISTORY_SQL = (
    "SELECT action_id, presented_at, outcome FROM outcomes "
    "WHERE customer_id = ? AND presented_at >= ? ORDER BY presented_at"
)


def _since(now: datetime) -> str:
    return to_text(now - timedelta(days=HISTORY_DAYS))


def _ages(rows: list[tuple[Any, ...]], now: datetime) -> list[tuple[str, float, str]]:
    return [(a, max(age_days(now - from_text(t)), 0.0), o) for a, t, o in rows]


@dataclass
class _Job:
    record: Record | None  # None: a probe (can a write commit?)
    future: Future[Any]
    deadline: float  # time.monotonic() after which nobody waits for it


class DecisionLog:
    """Durable store of decisions, outcomes and API keys (see the module docstring).

    ``start()`` starts the writer thread the API needs; commands that only read or manage
    keys use the synchronous methods without it.
    """

    def __init__(self, url: str, deadline: float | None = None) -> None:
        self._db = Database(url, timeout=deadline)
        self.deadline = deadline
        self.url = redact(url)
        self.kind = self._db.kind
        conn = self._db.connect()
        try:
            self._db.create_schema(conn)
        except Exception as exc:
            raise DecisionLogError(f"cannot create the decision log tables: {exc}") from None
        finally:
            conn.close()
        self._local = threading.local()
        self._readers: list[Any] = []  # every thread's read connection, to close them
        self._read_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="decision-log-read")
        self._queue: queue.Queue[Any] = queue.Queue()
        self._writer: threading.Thread | None = None
        self.problem: str | None = None
        """Why the log is unavailable (plain words), or ``None`` while it can commit."""

    @property
    def available(self) -> bool:
        return self.problem is None

    # --- writing (through the writer thread) ----------------------------------------------

    def start(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(
                target=self._run, name="decision-log-writer", daemon=True
            )
            self._writer.start()

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the connections."""
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join(timeout=30)
            self._writer = None
        self._pool.shutdown(wait=True)
        with self._read_lock:
            for conn in self._readers:
                with suppress(Exception):
                    conn.close()
            self._readers.clear()

    def submit(self, record: Record | None) -> Future[Any]:
        """Queue a record (``None``: a probe); the future resolves (to ``None`` or an
        :class:`OutcomeResult`) once it is committed, or fails with
        :class:`DecisionLogUnavailable`. Fails at once while the log is unavailable."""
        if self._writer is None:
            raise DecisionLogError("the decision log writer is not running (call start())")
        fut: Future[Any] = Future()
        if self.problem is not None and record is not None:
            fut.set_exception(DecisionLogUnavailable(self.problem))
            return fut
        self._queue.put(_Job(record, fut, self._due()))
        return fut

    def _due(self) -> float:
        """When a job queued now stops being waited for (``time.monotonic()``)."""
        return time.monotonic() + (self.deadline if self.deadline is not None else math.inf)

    def write(self, record: Record, timeout: float = 30.0) -> Any:
        """Submit and wait for the commit (for scripts and tests)."""
        return self.submit(record).result(timeout)

    async def committed(self, record: Record) -> Any:
        """Submit and wait for the commit, at most the deadline."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.submit(record)), self.deadline)
        except TimeoutError:
            raise DecisionLogUnavailable(
                f"the decision log did not commit within {self.deadline:g} s"
            ) from None

    async def can_commit(self) -> bool:
        """Whether a write could commit now (a probe through the writer, within the
        deadline): what readiness reports."""
        if self.problem is not None:
            return False
        try:
            await asyncio.wait_for(asyncio.wrap_future(self.submit(None)), self.deadline)
        except (TimeoutError, DecisionLogError):
            return False
        return True

    def _run(self) -> None:
        conn: Any = None
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=None if self.available else RETRY_SECONDS)
            except queue.Empty:
                first = _Job(None, Future(), self._due())  # a probe
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
            conn = self._serve(conn, batch)
        if conn is not None:
            with suppress(Exception):
                conn.close()

    def _serve(self, conn: Any, batch: list[_Job]) -> Any:
        """Commit a group of jobs; returns the connection to use next (``None``: broken)."""
        now = time.monotonic()
        jobs = []
        for job in batch:
            # A request that gave up (timed out, cancelled) must not have its record
            # committed after its client was told it was not.
            if not job.future.set_running_or_notify_cancel():
                continue
            if job.deadline < now:
                job.future.set_exception(DecisionLogUnavailable("the decision log was too slow"))
                continue
            jobs.append(job)
        if not jobs:
            return conn
        for attempt in (1, 2):
            try:
                if conn is None:
                    conn = self._db.connect()
                results = self._commit(conn, jobs)
            except Exception as exc:
                conn = self._discard(conn)
                if not self._db.is_outage(exc):
                    return self._one_by_one(conn, jobs)
                if attempt == 2 or time.monotonic() > min(j.deadline for j in jobs):
                    self._down(exc)
                    for job in jobs:
                        job.future.set_exception(DecisionLogUnavailable(self.problem or ""))
                    return conn
            else:
                self._up()
                for job, result in zip(jobs, results, strict=True):
                    job.future.set_result(result)
                return conn
        return conn

    def _commit(self, conn: Any, jobs: list[_Job]) -> list[Any]:
        results: list[Any] = []
        for job in jobs:
            if job.record is None:
                self._db.probe(conn)
                results.append(None)
            else:
                results.append(self._db.apply(conn, job.record))
        conn.commit()
        return results

    def _one_by_one(self, conn: Any, jobs: list[_Job]) -> Any:
        """One bad record must not fail its neighbours: each on its own."""
        for job in jobs:
            try:
                if conn is None:
                    conn = self._db.connect()
                result = self._commit(conn, [job])
            except Exception as exc:
                conn = self._discard(conn)
                if self._db.is_outage(exc):
                    self._down(exc)
                    job.future.set_exception(DecisionLogUnavailable(self.problem or ""))
                else:
                    job.future.set_exception(DecisionLogError(f"decision log write failed: {exc}"))
            else:
                self._up()
                job.future.set_result(result[0])
        return conn

    def _discard(self, conn: Any) -> Any:
        """After a failure: the connection rolled back, or ``None`` if it is broken."""
        if conn is None:
            return None
        try:
            conn.rollback()
            if self._db.kind == "postgresql" and conn.closed:
                raise DecisionLogError("connection closed")
            return conn
        except Exception:
            with suppress(Exception):
                conn.close()
            return None

    def _down(self, exc: BaseException) -> None:
        if self.problem is None:
            log.warning("decision log unavailable", extra={"error": type(exc).__name__})
        self.problem = "the decision log cannot commit right now"

    def _up(self) -> None:
        if self.problem is not None:
            log.info("decision log available again")
        self.problem = None

    # --- reading --------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """This thread's read connection (one per thread: the API's PostgreSQL readers run
        on a small pool beside the event loop)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._db.connect()
            self._local.conn = conn
            with self._read_lock:
                self._readers.append(conn)
        try:
            yield conn
        except Exception as exc:
            if self._db.is_outage(exc):  # a new connection next time
                self._local.conn = None
                with self._read_lock:
                    self._readers.remove(conn)
                with suppress(Exception):
                    conn.close()
            raise
        finally:
            if self._db.kind == "postgresql" and self._local.conn is not None:
                with suppress(Exception):
                    conn.rollback()  # end the read transaction psycopg opened

    def query(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (``?`` placeholders in both databases). A broken read
        connection is replaced once; while the log is unavailable, fails at once."""
        if self.problem is not None and self._writer is not None:
            raise DecisionLogUnavailable(self.problem)
        for attempt in (1, 2):
            try:
                with self._read() as conn:
                    return list(conn.execute(self._db.sql(text), tuple(params)).fetchall())
            except Exception as exc:
                outage = self._db.is_outage(exc)
                if attempt == 2 or not outage:
                    error = DecisionLogUnavailable if outage else DecisionLogError
                    raise error(f"decision log read failed: {exc}") from None
        raise AssertionError("unreachable")

    async def query_async(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """:meth:`query` for the event loop, within the deadline."""
        return await self._beside_loop(self.query, text, params)

    async def decision_async(self, decision_id: str) -> dict[str, Any] | None:
        """:meth:`decision` for the event loop, within the deadline."""
        return await self._beside_loop(self.decision, decision_id)

    async def _beside_loop(self, read: Callable[..., T], *args: Any) -> T:
        """SQLite reads are local and run in place (a thread hand-off costs more than the
        read); PostgreSQL reads wait on the network, so they run on the reader pool while
        the loop goes on."""
        if self._db.kind == "sqlite":
            return read(*args)
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self._pool, read, *args), self.deadline
            )
        except TimeoutError:
            raise DecisionLogUnavailable(
                f"the decision log did not answer within {self.deadline:g} s"
            ) from None

    async def history_async(self, customer_id: str, now: datetime) -> list[tuple[str, float, str]]:
        """:meth:`history` for the event loop."""
        rows = await self.query_async(_HISTORY_SQL, (customer_id, _since(now)))
        return _ages(rows, now)

    def history(self, customer_id: str, now: datetime) -> list[tuple[str, float, str]]:
        """The customer's reported outcomes of the last year: ``(action_id, age_days,
        outcome)``, oldest first (what the contact policy counts)."""
        return _ages(self.query(_HISTORY_SQL, (customer_id, _since(now))), now)

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
        if table not in ("served", "outcomes", "decisions", "api_keys", "events"):
            raise ValueError(f"unknown decision log table {table!r}")
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])

    # --- synchronous writes for commands (keys) -------------------------------------------

    def execute_now(self, text: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in its own committed transaction; returns rows changed."""
        conn = self._db.connect()
        try:
            cur = conn.execute(self._db.sql(text), tuple(params))
            conn.commit()
            return int(cur.rowcount)
        except Exception as exc:
            raise DecisionLogError(f"decision log write failed: {exc}") from None
        finally:
            conn.close()
