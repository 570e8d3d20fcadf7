"""Benchmark of pushed events: push-to-visible time under load, and acknowledged events
kept through ``kill -9``.

    make demo                                  # a workspace with a model and profiles
    python benchmarks/event_push.py            # 50 events/s beside 200 req/s for 60 s

A copy of the workspace (``NBA_HOME``, default ``.nba``) is served by a real `nba serve`
(keys on, SQLite decision log fsyncing every commit). `wrk` sends recommendations at
``--rate`` req/s while a pusher sends ``--events`` events/s, each for another customer, and
polls that customer's profile (the one the next recommendation reads) until it shows the
event: push-to-visible is from sending the event to the first read that shows it.
Then events are pushed from four threads and the server is killed with SIGKILL; every
acknowledged event must be in the events table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.api_latency import LUA, run_wrk
from benchmarks.server import nba_serve, process_tree


def _call(port: int, path: str, key: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] if ordered else float("nan")


def push(port: int, key: str, event: dict[str, Any], visible_as_of: str | None) -> float:
    """Send ``event``; with ``visible_as_of``, also poll the customer's profile every 20 ms
    until it is as of that moment. Seconds until acknowledged, or until visible (``inf``:
    not within 10 s)."""
    start = time.perf_counter()
    _call(port, "/v1/interactions", key, event)
    if visible_as_of is None:
        return time.perf_counter() - start
    while time.perf_counter() - start < 10:
        summary = _call(port, f"/v1/customers/{event['customer_id']}", key)
        if summary.get("profile_as_of") == visible_as_of:
            return time.perf_counter() - start
        time.sleep(0.02)
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--rate", type=float, default=200.0, help="recommendations per second")
    parser.add_argument("--events", type=float, default=50.0, help="events pushed per second")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--workers", type=int, default=max(1, len(os.sched_getaffinity(0))))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    source = Path(os.environ.get("NBA_HOME", ".nba")).resolve()
    if not (source / "feast" / "data" / "history" / "customers.parquet").is_file():
        sys.exit(f"{source}: no features build with its history (run `make demo` first)")
    work = Path(tempfile.mkdtemp(prefix="nba-event-bench-"))
    home = work / "home"
    skip = shutil.ignore_patterns("*.tmp", "logs", "decision_log.db*", "spill")
    shutil.copytree(source, home, ignore=skip)
    os.environ["NBA_HOME"] = str(home)
    os.environ["NBA_DECISION_LOG_URL"] = f"sqlite:///{work / 'decision_log.db'}"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; a copy of {source}"
    )
    import pandas as pd

    from nba.config import get_settings
    from nba.decision_log import DecisionLog, from_text
    from serving.keys import create_key

    settings = get_settings()
    manifest = json.loads(settings.profiles_path.with_suffix(".build.json").read_text())
    latest = datetime.fromisoformat(manifest["as_of_latest"])
    ids = (
        pd.read_parquet(settings.profiles_path, columns=["customer_id"])["customer_id"]
        .drop_duplicates()
        .sample(frac=1.0, random_state=3)
        .tolist()
    )
    log = DecisionLog(settings.decision_log)
    key = create_key(log, ("recommend", "events"), "benchmark")
    lua = work / "load.lua"
    lua.write_text(LUA % {"ids": ",".join(f'"{c}"' for c in ids), "key": key, "delay": "%DELAY%"})
    env = dict(os.environ, NBA_MODEL_POLL_SECONDS="0")
    n_events = int(args.duration * args.events)
    pushed = ids[:n_events]  # one event per customer: each push changes its profile
    acks: list[float] = []
    watched: list[float] = []
    with nba_serve(env, args.port, workers=args.workers) as server:
        warm = run_wrk(args.port, lua, 100, 3, 16, 2.0)
        # wrk is a closed loop: each connection waits for its answer, then paces itself
        # assuming answers take this long; busier than the warm-up, so twice its median.
        expected = 2 * warm["p50_ms"]
        load: dict[str, Any] = {}
        loader = threading.Thread(
            target=lambda: load.update(
                run_wrk(args.port, lua, args.rate, args.duration + 5, 16, expected)
            )
        )
        loader.start()
        time.sleep(2)
        with ThreadPoolExecutor(16) as pool:
            futures = []
            begin = time.perf_counter()
            for i, cid in enumerate(pushed):
                at = latest + timedelta(hours=1, seconds=i)
                event = {
                    "event_id": f"bench-{i}",
                    "customer_id": cid,
                    "timestamp": at.isoformat(),
                    "channel": "phone",
                    "type": "missed_payment",
                    "amount": 25.0,
                }
                # Every tenth event is also watched from outside, as an agent desk would.
                visible = (at + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
                watch = visible if i % 10 == 0 else None
                futures.append((watch, pool.submit(push, args.port, key, event, watch)))
                pause = begin + (i + 1) / args.events - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            for watch, future in futures:
                (watched if watch else acks).append(future.result())
        loader.join()
        # From the event's arrival (stamped before its commit) to the commit of its profile.
        rows = log.query("SELECT received_at, online_at FROM events WHERE event_id LIKE 'bench-%'")
        applied = [(from_text(o) - from_text(r)).total_seconds() for r, o in rows if o is not None]
        print(
            f"\n{len(pushed)} events at {args.events:.0f}/s beside recommendations at "
            f"{load['rate']:.0f} req/s (p99 {load['p99_ms']:.1f} ms, errors "
            f"{load['errors']:.0f}), {args.workers} worker(s):"
        )
        print(
            f"arrival -> in the online profile (engine's clock, every event): p50 "
            f"{_pct(applied, 0.5) * 1000:.0f} ms, p99 {_pct(applied, 0.99) * 1000:.0f} ms, "
            f"max {max(applied) * 1000:.0f} ms; never applied: {len(rows) - len(applied)} "
            "(target: p99 <= 1 s)"
        )
        seen = [t for t in watched if t != float("inf")]
        print(
            f"push -> visible on the desk (client's clock, every 10th event, polled every "
            f"20 ms): p50 {_pct(seen, 0.5) * 1000:.0f} ms, p99 {_pct(seen, 0.99) * 1000:.0f} "
            f"ms, not visible within 10 s: {len(watched) - len(seen)}; push acknowledged: "
            f"p50 {_pct(acks, 0.5) * 1000:.0f} ms, p99 {_pct(acks, 0.99) * 1000:.0f} ms"
        )

        # kill -9 while events are being pushed: every acknowledged one must be stored.
        acked: list[str] = []
        stop = time.perf_counter() + 3
        lock = threading.Lock()

        def pusher(offset: int) -> None:
            i = 0
            while time.perf_counter() < stop:
                cid = ids[(offset * 997 + i) % len(ids)]
                event_id = f"kill-{offset}-{i}"
                at = latest + timedelta(hours=2, seconds=offset * 10_000 + i)
                body = {
                    "event_id": event_id,
                    "customer_id": cid,
                    "timestamp": at.isoformat(),
                    "channel": "chat",
                    "type": "complaint",
                }
                try:
                    _call(args.port, "/v1/interactions", key, body)
                except (OSError, urllib.error.URLError):
                    return  # the server is gone
                with lock:
                    acked.append(event_id)
                i += 1

        threads = [threading.Thread(target=pusher, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        for pid in reversed(process_tree(server.pid)):
            os.kill(pid, signal.SIGKILL)
        for t in threads:
            t.join()
    stored = {r[0] for r in log.query("SELECT event_id FROM events WHERE event_id LIKE 'kill-%'")}
    lost = [e for e in acked if e not in stored]
    print(
        f"kill -9 while pushing: {len(acked)} events acknowledged, {len(lost)} lost "
        f"(target: 0); {len(stored) - len(acked) + len(lost)} committed but not acknowledged"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
