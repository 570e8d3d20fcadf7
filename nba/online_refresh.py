"""Refreshing the online store: everyone, or only the customers whose profile changed.

After each load a fingerprint of every customer's profile is kept beside the online store
(``online_loaded.parquet``). The next load compares the new profiles with it and writes only
the customers whose profile differs: a day's events touch a few percent of a base, so a
nightly refresh writes a few percent of it.

What counts as a change: any feature except those that grow with the clock alone (tenure
and the "days since" features). A customer nothing happened to keeps the profile already
online, with its older timestamp; its "days since" values are as of that timestamp (the
desk reads them against the profile's age). A full load (``--all``) rewrites everyone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from nba.online_load import OnlineWriter
from nba.profiles import ENTITY_KEY, FEATURE_NAMES

if TYPE_CHECKING:
    from collections.abc import Callable

    from feast import FeatureStore

CLOCK_FEATURES = frozenset(
    n for n in FEATURE_NAMES if n.startswith("days_since_") or n == "tenure_days"
)
"""Features that change with the passing of time alone (not a change of the profile)."""

_META_KEY = b"nba_online_load"


@dataclass(frozen=True)
class OnlineLoadReport:
    written: int
    unchanged: int
    changed_only: bool
    why_full: str | None = None
    """Why a full load was made although changed-only was allowed (plain words)."""


def fingerprints(profiles: pa.Table) -> pa.Table:
    """``customer_id`` and a 64-bit hash of the profile's content (clock features left out)."""
    content = [n for n in FEATURE_NAMES if n not in CLOCK_FEATURES]
    con = duckdb.connect()
    try:
        con.register("profiles", profiles)
        hashed = ", ".join(f'"{n}"' for n in content)
        return con.sql(
            f"SELECT {ENTITY_KEY}, hash({hashed}) AS fingerprint FROM profiles"
        ).to_arrow_table()
    finally:
        con.close()


def _identity(writer: OnlineWriter) -> dict[str, object]:
    """What the fingerprints are valid for: this store and this feature list."""
    config = writer.config.online_store
    where = getattr(config, "path", None) or getattr(config, "connection_string", "")
    return {"store": writer.kind, "where": str(where), "features": list(FEATURE_NAMES)}


def _previous(path: Path, identity: dict[str, object]) -> tuple[pa.Table | None, str | None]:
    """The fingerprints of the last load, or why there are none to trust."""
    if not path.is_file():
        return None, "no earlier load of this online store"
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    except (OSError, ValueError, pa.ArrowInvalid):
        return None, "the record of the last load is unreadable"
    if meta != identity:
        return None, "the last load went to another store or had other features"
    return table, None


def _save(path: Path, prints: pa.Table, identity: dict[str, object]) -> None:
    meta = {_META_KEY: json.dumps(identity).encode()}
    tmp = path.with_suffix(".tmp")
    pq.write_table(prints.replace_schema_metadata(meta), tmp)
    tmp.replace(path)


def refresh_online(
    store: FeatureStore,
    profiles: pa.Table,
    record: Path,
    *,
    changed_only: bool = True,
    progress: Callable[[int], None] | None = None,
) -> OnlineLoadReport:
    """Load ``profiles`` (one row per customer) into the online store: only the changed
    customers when ``changed_only`` and the last load's record (``record``) is valid for
    this store and the store still holds it; everyone otherwise."""
    writer = OnlineWriter(store)
    identity = _identity(writer)
    prints = fingerprints(profiles)
    previous, why_full = _previous(record, identity) if changed_only else (None, None)
    if previous is not None and not writer.holds(previous.column(ENTITY_KEY)[:1].to_pylist()):
        previous, why_full = None, "the online store no longer holds the last load"
    if previous is None:
        written = writer.write(profiles, full=True, progress=progress)
        _save(record, prints, identity)
        return OnlineLoadReport(written, 0, False, why_full)
    con = duckdb.connect()
    try:
        con.register("now", prints)
        con.register("before", previous)
        changed = con.sql(
            f"SELECT n.{ENTITY_KEY} FROM now n LEFT JOIN before b USING ({ENTITY_KEY}) "
            "WHERE b.fingerprint IS DISTINCT FROM n.fingerprint"
        ).to_arrow_table()
        con.register("changed", changed)
        con.register("profiles", profiles)
        rows = con.sql(
            f"SELECT p.* FROM profiles p SEMI JOIN changed c USING ({ENTITY_KEY})"
        ).to_arrow_table()
    finally:
        con.close()
    written = writer.write(rows, full=False, progress=progress) if rows.num_rows else 0
    _save(record, prints, identity)
    return OnlineLoadReport(written, profiles.num_rows - written, True)
