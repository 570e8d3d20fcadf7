"""Benchmark of the online store load: the engine's bulk writer against Feast's own.

    python benchmarks/online_load.py --store redis --customers 1000000
    python benchmarks/online_load.py --store sqlite --customers 100000

Profiles of the real schema (126 features) are synthesised for ``--customers`` customers
(counts, amounts with gaps, product lists) and loaded into a fresh workspace registered
with the real ``feast apply``; Redis is a real ``redis-server`` started for the run.
Printed, in one run on one machine:

* floor: Feast's ``write_to_online_store`` on ``--floor`` customers (customers/s);
* full: the engine's full load of every customer (customers/s, and the ratio to Feast);
* changed-only: the refresh after ``--changed`` (default 1%) of the customers changed;
* SQLite only, ceiling: SQLite copying the loaded table into a fresh one of Feast's layout
  in C (no Python at all), the most any writer of this layout could reach here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent


def synthetic_profiles(n: int, seed: int, stamp: str = "2026-01-01 00:00:00") -> pa.Table:
    """``n`` profiles of the real schema with plausible values and gaps."""
    from nba.profiles import ENTITY_KEY, FEATURES, TIMESTAMP_FIELD

    rng = np.random.default_rng(seed)
    ts = np.full(n, np.datetime64(stamp, "us"))
    cols: dict[str, Any] = {
        ENTITY_KEY: pa.array([f"C{i:08d}" for i in range(n)]),
        TIMESTAMP_FIELD: pa.array(ts, pa.timestamp("us", tz="UTC")),
    }
    products = np.array(["", "mobile", "mobile,tv", "broadband,mobile", "broadband,mobile,tv"])
    for f in FEATURES:
        if f.dtype == "int":
            cols[f.name] = pa.array(rng.poisson(0.7, n).astype(np.int64))
        elif f.dtype == "string":
            cols[f.name] = pa.array(products[rng.integers(0, len(products), n)])
        else:
            values = np.round(rng.gamma(2.0, 40.0, n), 6)
            gaps = rng.random(n) < 0.3
            cols[f.name] = pa.array(values, mask=gaps)
    return pa.table(cols)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--dir", str(directory), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"127.0.0.1:{port}"


def run(
    store_kind: str, customers: int, floor_n: int, changed: float, home: Path
) -> dict[str, Any]:
    os.environ["NBA_HOME"] = str(home)
    os.environ["NBA_ONLINE_STORE"] = store_kind
    proc = None
    if store_kind == "redis":
        proc, url = _start_redis(home)
        os.environ["NBA_REDIS_URL"] = url
    try:
        from nba.config import Settings
        from nba.feature_store import apply_repo, open_store
        from nba.online_refresh import refresh_online
        from nba.profiles import FEATURE_VIEW, FEATURES

        settings = Settings()
        apply_repo(settings)
        store = open_store(settings)
        profiles = synthetic_profiles(customers, seed=7)
        out: dict[str, Any] = {
            "store": store_kind,
            "customers": customers,
            "features": len(FEATURES),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}",
        }

        sample = profiles.slice(0, min(floor_n, customers)).to_pandas()
        t = time.perf_counter()
        store.write_to_online_store(FEATURE_VIEW, sample)
        floor_s = time.perf_counter() - t
        out["feast_floor_customers_per_s"] = round(len(sample) / floor_s)

        record = home / "online_loaded.parquet"
        t = time.perf_counter()
        report = refresh_online(store, profiles, record, changed_only=False)
        full_s = time.perf_counter() - t
        out["full_load_s"] = round(full_s, 2)
        out["full_customers_per_s"] = round(report.written / full_s)
        out["full_vs_feast"] = round(
            out["full_customers_per_s"] / out["feast_floor_customers_per_s"], 1
        )

        # A day's changes: a few customers got an event (a count moves up by one).
        rng = np.random.default_rng(11)
        picked = rng.random(customers) < changed
        column = "n_complaint_30d"
        bumped = np.asarray(profiles.column(column).to_numpy()) + picked.astype(np.int64)
        day_after = profiles.set_column(
            profiles.schema.get_field_index(column), column, pa.array(bumped)
        )
        t = time.perf_counter()
        report = refresh_online(store, day_after, record, changed_only=True)
        out["changed_only_s"] = round(time.perf_counter() - t, 2)
        out["changed_only_written"] = report.written
        out["changed_only_unchanged"] = report.unchanged

        if store_kind == "sqlite":
            out["sqlite_ceiling_customers_per_s"] = round(_sqlite_ceiling(settings, customers))
        return out
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)


def _sqlite_ceiling(settings: Any, customers: int) -> float:
    """SQLite copying Feast's table into a fresh one of the same layout, all in C."""
    path = settings.feast_dir / "online_store.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-262144")
    (ddl,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'nba_customer_profile'"
    ).fetchone()
    copy = 'CREATE TABLE "ceiling" (' + ddl.partition("(")[2]
    t = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(copy)
    conn.execute(
        'INSERT INTO "ceiling" SELECT * FROM nba_customer_profile '
        "ORDER BY entity_key, feature_name"
    )
    conn.execute('CREATE INDEX "ceiling_ek" ON "ceiling" (entity_key)')
    conn.execute("COMMIT")
    seconds = time.perf_counter() - t
    conn.execute('DROP TABLE "ceiling"')
    conn.close()
    return customers / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "redis"], default="redis")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--floor", type=int, default=5_000, help="customers Feast writes")
    parser.add_argument("--changed", type=float, default=0.01, help="share changed in a day")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory(prefix="nba-online-load-") as tmp:
        result = run(args.store, args.customers, args.floor, args.changed, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
