"""The bulk online load writes exactly what Feast writes, swaps whole loads, and refreshes
only changed customers. Real ``feast apply``, real SQLite and Redis online stores."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from nba.config import get_settings
from nba.feature_store import apply_repo, online_profiles, open_store
from nba.online_load import OnlineWriter
from nba.online_load_redis import redis_client
from nba.online_refresh import refresh_online
from nba.profiles import ENTITY_KEY, FEATURE_NAMES, FEATURE_VIEW, FEATURES, TIMESTAMP_FIELD
from tests.conftest import environment

pytestmark = pytest.mark.slow


def profiles(n: int, seed: int, stamp: str = "2025-06-30 12:00:00.250000") -> pa.Table:
    """Profiles of the real schema with the awkward values: nulls, NaN, 0.0 and -0.0,
    infinities, negative and huge integers, empty and non-ASCII text."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {
        ENTITY_KEY: pa.array([f"C-{seed}-{i:04d}/ä" for i in range(n)]),
        TIMESTAMP_FIELD: pa.array(
            np.full(n, np.datetime64(stamp, "us")), pa.timestamp("us", tz="UTC")
        ),
    }
    special = [0.0, -0.0, float("inf"), -1e300, 5e-324, float("nan")]
    for f in FEATURES:
        if f.dtype == "int":
            values = rng.integers(-3, 300, n).astype(np.int64)
            values[0] = 2**62
            cols[f.name] = pa.array(values, mask=rng.random(n) < 0.1)
        elif f.dtype == "string":
            cols[f.name] = pa.array(
                [["", "mobile", "tv,mobile", "Bündel"][i % 4] for i in range(n)],
                mask=np.arange(n) % 7 == 3,
            )
        else:
            doubles = rng.normal(0, 100, n)
            doubles[: len(special)] = special
            cols[f.name] = pa.array(doubles, mask=rng.random(n) < 0.2)
    return pa.table(cols)


def _sqlite_rows() -> dict[tuple[bytes, str], tuple[Any, ...]]:
    conn = sqlite3.connect(get_settings().feast_dir / "online_store.db")
    try:
        rows = conn.execute(
            "SELECT entity_key, feature_name, value, value_text, event_ts "
            "FROM nba_customer_profile"
        ).fetchall()
    finally:
        conn.close()
    return {(k, f): rest for k, f, *rest in rows}


def _redis_hashes(store: Any) -> dict[bytes, dict[bytes, bytes]]:
    client = redis_client(store.config.online_store)
    return {k: client.hgetall(k) for k in client.scan_iter()}


def test_sqlite_bulk_rows_are_byte_identical_to_feasts() -> None:
    apply_repo()
    store = open_store()
    table = profiles(40, seed=1)
    store.write_to_online_store(FEATURE_VIEW, table.to_pandas())
    by_feast = _sqlite_rows()
    assert len(by_feast) == 40 * len(FEATURE_NAMES)

    OnlineWriter(store).write(table, full=True)
    by_engine = _sqlite_rows()
    assert by_engine == by_feast


def test_redis_bulk_hashes_are_byte_identical_to_feasts(redis_url: str) -> None:
    with environment(NBA_ONLINE_STORE="redis", NBA_REDIS_URL=redis_url):
        apply_repo()
        store = open_store()
        table = profiles(40, seed=2)
        store.write_to_online_store(FEATURE_VIEW, table.to_pandas())
        by_feast = _redis_hashes(store)
        redis_client(store.config.online_store).flushall()

        OnlineWriter(store).write(table, full=True)
        assert _redis_hashes(store) == by_feast
        # and Feast reads them back
        read = online_profiles(store, [table[ENTITY_KEY][5].as_py()])
        assert read["n_complaint_30d"] == [table["n_complaint_30d"][5].as_py()]


def test_full_load_replaces_the_store_and_partial_load_updates_in_place() -> None:
    apply_repo()
    store = open_store()
    writer = OnlineWriter(store)
    first = profiles(30, seed=3)
    writer.write(first, full=True)
    second = profiles(10, seed=4)
    writer.write(second, full=True)
    ids = first[ENTITY_KEY].to_pylist()[:3] + second[ENTITY_KEY].to_pylist()[:3]
    read = online_profiles(store, ids)
    assert read["n_complaint_30d"][:3] == [None, None, None]  # gone with the old load
    assert read["n_complaint_30d"][3:] == second["n_complaint_30d"].to_pylist()[:3]

    update = second.slice(0, 1).set_column(
        second.schema.get_field_index("n_complaint_30d"), "n_complaint_30d", pa.array([77])
    )
    writer.write(update, full=False)
    read = online_profiles(store, second[ENTITY_KEY].to_pylist()[:2])
    assert read["n_complaint_30d"] == [77, second["n_complaint_30d"][1].as_py()]
    assert len(_sqlite_rows()) == 10 * len(FEATURE_NAMES)


def _bump(table: pa.Table, rows: list[int], column: str = "n_complaint_90d") -> pa.Table:
    values = table[column].to_pylist()
    for i in rows:
        values[i] = (values[i] or 0) + 1
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values))


def test_changed_only_writes_the_changed_customers_and_nothing_else(tmp_path: Path) -> None:
    apply_repo()
    store = open_store()
    record = tmp_path / "loaded.parquet"
    day1 = profiles(50, seed=5)
    first = refresh_online(store, day1, record)
    assert (first.written, first.changed_only) == (50, False)
    assert first.why_full == "no earlier load of this online store"

    # The clock alone moves tenure and "days since": not a change.
    aged = day1.set_column(
        day1.schema.get_field_index("tenure_days"),
        "tenure_days",
        pa.array([(v or 0) + 1.0 for v in day1["tenure_days"].to_pylist()]),
    )
    day2 = _bump(aged, [4, 17, 31])
    second = refresh_online(store, day2, record)
    assert (second.written, second.unchanged, second.changed_only) == (3, 47, True)
    ids = day2[ENTITY_KEY].to_pylist()
    read = online_profiles(store, [ids[4], ids[10]])
    assert read["n_complaint_90d"] == [
        day2["n_complaint_90d"][4].as_py(),
        day1["n_complaint_90d"][10].as_py(),
    ]
    assert read["tenure_days"][1] == day1["tenure_days"][10].as_py()  # untouched

    # A wiped store is noticed: everyone is written again (Feast's table made anew).
    (get_settings().feast_dir / "online_store.db").unlink()
    third = refresh_online(open_store(), _bump(day2, [1]), record)
    assert (third.written, third.changed_only) == (50, False)
    assert third.why_full == "the online store no longer holds the last load"
    assert online_profiles(open_store(), [ids[10]])["tenure_days"] == [
        day2["tenure_days"][10].as_py()
    ]

    # Another store or feature list: the record is not trusted.
    with environment(NBA_ONLINE_STORE="sqlite"):
        record.write_bytes(b"not parquet")
        fourth = refresh_online(open_store(), day2, record)
    assert (fourth.written, fourth.why_full) == (50, "the record of the last load is unreadable")
