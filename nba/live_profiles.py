"""Profiles that follow pushed events: the history a profile is computed from, and the
recomputation of a few customers' profiles after their events arrive.

The batch build (``nba features build``) keeps the history it computed profiles from beside
the offline store (``history/*.parquet``, sorted by customer, the last 365 days of events:
profiles never look further back). A pushed event is committed to the decision log's
``events`` table; the customer's profile is then recomputed by the very SQL of the batch
build (:func:`nba.profiles.compute_profiles`) over that history plus the customer's pushed
events, as of just after the newest of them, and written to the online store. Batch and
online merge pushed events into the export by one rule (:data:`MERGE_SQL`), so the online
profile equals the one the next build computes as of the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from nba.decision_log import DecisionLog, from_text
from nba.profiles import ENTITY_KEY, RECENCY_HORIZON_DAYS, TIMESTAMP_FIELD, compute_profiles

LATEST_OFFSET = timedelta(seconds=1)
"""A profile is taken just after the newest event, so that event counts (as in the build)."""

SIGNUPS_IN_MEMORY = 2_000_000
"""Up to this many customers, signup dates are held in memory for checking pushed events."""

HISTORY_TABLES = ("customers", "contracts", "interactions", "decisions_with_family")

EVENT_COLUMNS = ("event_id", "customer_id", "timestamp", "channel", "type", "amount", "sentiment")
_EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("timestamp", pa.timestamp("us")),
        ("channel", pa.string()),
        ("type", pa.string()),
        ("amount", pa.float64()),
        ("sentiment", pa.float64()),
    ]
)

MERGE_SQL = """
INSERT INTO interactions (customer_id, timestamp, channel, type, amount, sentiment, event_id)
SELECT p.customer_id, p.timestamp, p.channel, p.type, p.amount, p.sentiment, p.event_id
FROM pushed_events p
WHERE p.customer_id IN (SELECT customer_id FROM customers)
  AND NOT EXISTS (
    SELECT 1 FROM interactions x
    WHERE x.customer_id = p.customer_id
      AND (x.event_id = p.event_id
           OR (x.timestamp = p.timestamp AND x.channel = p.channel AND x.type = p.type
               AND x.amount IS NOT DISTINCT FROM p.amount
               AND x.sentiment IS NOT DISTINCT FROM p.sentiment)))
"""
"""Pushed events join the exported interactions unless the export already holds them:
the same ``event_id``, or (for exports without ids) the same row."""


def events_table(rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows of the log's ``events`` columns (text timestamps) as an Arrow table (naive UTC)."""
    columns: list[list[Any]] = [[] for _ in EVENT_COLUMNS]
    for row in rows:
        for i, value in enumerate(row[: len(EVENT_COLUMNS)]):
            columns[i].append(from_text(value).replace(tzinfo=None) if i == 2 else value)
    return pa.table(columns, schema=_EVENT_SCHEMA)


def pushed_events(log: DecisionLog, customer_ids: Sequence[str] | None = None) -> pa.Table:
    """The log's pushed events (of ``customer_ids``, or all) as an Arrow table."""
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
    if customer_ids is None:
        return events_table(log.query(sql))
    rows: list[tuple[Any, ...]] = []
    ids = list(customer_ids)
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        rows += log.query(f"{sql} WHERE customer_id IN ({', '.join('?' * len(part))})", part)
    return events_table(rows)


def merge_pushed(con: duckdb.DuckDBPyConnection, events: pa.Table) -> int:
    """Add ``events`` to the connection's ``interactions`` by :data:`MERGE_SQL`; returns how
    many were new to it."""
    if events.num_rows == 0:
        return 0
    before = con.execute("SELECT count(*) FROM interactions").fetchall()[0][0]
    con.register("pushed_events", events)
    try:
        con.execute(MERGE_SQL)
    finally:
        con.unregister("pushed_events")
    return int(con.execute("SELECT count(*) FROM interactions").fetchall()[0][0] - before)


def history_dir(profiles_path: Path) -> Path:
    return profiles_path.parent / "history"


def write_history(con: duckdb.DuckDBPyConnection, directory: Path, latest: datetime) -> None:
    """Keep the tables profiles are computed from, sorted by customer (row-group statistics
    let a recomputation read a few customers only), events of the last 365 days."""
    directory.mkdir(parents=True, exist_ok=True)
    since = latest.astimezone(UTC).replace(tzinfo=None) - timedelta(days=RECENCY_HORIZON_DAYS)
    for table in HISTORY_TABLES:
        where = (
            f"WHERE timestamp >= TIMESTAMP '{since.isoformat(sep=' ')}'"
            if table
            in (
                "interactions",
                "decisions_with_family",
            )
            else ""
        )
        target = directory / f"{table}.parquet"
        tmp = target.with_suffix(".parquet.tmp")
        con.execute(
            f"COPY (SELECT * FROM {table} {where} ORDER BY customer_id) TO '{tmp}' "
            "(FORMAT parquet, ROW_GROUP_SIZE 16384, COMPRESSION zstd)"
        )
        tmp.replace(target)


class History:
    """The build's history of some customers, read from ``history/*.parquet``."""

    def __init__(self, directory: Path, as_of_latest: datetime) -> None:
        self.directory = directory
        self.as_of_latest = as_of_latest
        self._signups: dict[str, datetime] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        missing = [t for t in HISTORY_TABLES if not (directory / f"{t}.parquet").is_file()]
        if missing:
            raise FileNotFoundError(
                "no profile history: run `nba features build --data DIR` first"
            )

    def _load(self, customer_ids: Sequence[str]) -> duckdb.DuckDBPyConnection:
        """The connection (kept: a new one costs more than the query) holding these
        customers' history as the build's tables."""
        if self._con is None:
            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")
            self._con.execute("SET threads = 1")  # a few customers: no use for more
        con = self._con
        con.register("wanted", pa.table({ENTITY_KEY: pa.array(list(customer_ids), pa.string())}))
        # Literal ids: DuckDB prunes the files' row groups by their min/max statistics.
        listed = ", ".join("'" + c.replace("'", "''") + "'" for c in customer_ids)
        for table in HISTORY_TABLES:
            path = str(self.directory / f"{table}.parquet").replace("'", "''")
            con.execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM read_parquet('{path}') "
                f"WHERE customer_id IN ({listed})"
            )
        return con

    def signups(self, customer_ids: Sequence[str]) -> dict[str, datetime]:
        """Each known customer's signup date (UTC); unknown customers are absent. Held in
        memory for bases up to :data:`SIGNUPS_IN_MEMORY` customers (a look-up per pushed
        event), read from the file for larger ones."""
        if self._signups is None:
            self._signups = self._load_signups()
        if self._signups:
            known = self._signups
            return {c: known[c] for c in customer_ids if c in known}
        return self._read_signups(customer_ids)

    def _load_signups(self) -> dict[str, datetime]:
        """Every customer's signup, or an empty dict when the base is too large to hold."""
        path = self.directory / "customers.parquet"
        if pq.ParquetFile(path).metadata.num_rows > SIGNUPS_IN_MEMORY:
            return {}
        table = pq.read_table(path, columns=["customer_id", "signup_date"])
        stamps = table.column("signup_date").cast(pa.timestamp("us")).to_pylist()
        return {
            c: t.replace(tzinfo=UTC)
            for c, t in zip(table.column("customer_id").to_pylist(), stamps, strict=True)
        }

    def _read_signups(self, customer_ids: Sequence[str]) -> dict[str, datetime]:
        path = str(self.directory / "customers.parquet").replace("'", "''")
        con = duckdb.connect()
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.register(
                "wanted", pa.table({ENTITY_KEY: pa.array(list(customer_ids), pa.string())})
            )
            rows = con.execute(
                f"SELECT customer_id, signup_date FROM read_parquet('{path}') "
                f"WHERE customer_id IN (SELECT {ENTITY_KEY} FROM wanted)"
            ).fetchall()
        finally:
            con.close()
        return {c: _utc(t) for c, t in rows}

    def profiles(self, events: pa.Table) -> pa.Table:
        """The current profile of every customer in ``events`` (their pushed events), as of
        just after their newest event and never before the build's moment. Timestamps are
        UTC-aware, as Feast expects."""
        ids = sorted(set(events.column("customer_id").to_pylist()))
        with self._lock:
            con = self._load(ids)
            merge_pushed(con, events)
            floor = self.as_of_latest.astimezone(UTC).replace(tzinfo=None)
            queries = con.sql(
                "SELECT customer_id, "
                "greatest(max(timestamp) + INTERVAL 1 SECOND, $floor) AS as_of FROM interactions"
                " WHERE customer_id IN (SELECT customer_id FROM wanted) "
                "GROUP BY customer_id",
                params={"floor": floor},
            ).to_arrow_table()
            table = compute_profiles(con, queries)
        idx = table.schema.get_field_index(TIMESTAMP_FIELD)
        aware = table.column(idx).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
        return table.set_column(idx, TIMESTAMP_FIELD, aware)

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        value = datetime.combine(value, datetime.min.time())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
