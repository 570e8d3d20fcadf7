"""A soak of the real-time API: a steady paced load for minutes, with faults injected on a
schedule; prints lost writes, memory over time and latency outside the fault windows.

    make demo                                  # a workspace with a model and profiles
    .venv/bin/python benchmarks/soak.py        # 200 req/s for 10 minutes
    .venv/bin/python benchmarks/soak.py --minutes 2 --rate 100

Server: one `nba serve` on the demo workspace (SQLite online store), its decision log on
a real PostgreSQL server started here (Debian's, as `make test` installs it). Load: an
asyncio client on keep-alive connections sending recommendations at ``--rate`` per second
(evenly spaced; a request that is late is sent at once, never dropped), and an outcome for
every fourth answer. Faults, each once per ``--every`` seconds in turn: PostgreSQL stopped
for 5 s (`pg_ctl stop -m immediate`), its sessions killed (`pg_terminate_backend`), and 50
clients that send half a request and stop. A fault window is the fault plus 5 s after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
WARM_UP_SECONDS = 10
sys.path.insert(0, str(ROOT))
from benchmarks.server import nba_serve, process_tree  # noqa: E402

if TYPE_CHECKING:
    from tests.conftest import PostgresServer


@dataclass
class Record:
    sent: float
    seconds: float
    status: int
    kind: str


@dataclass
class Soak:
    records: list[Record] = field(default_factory=list)
    acked_decisions: list[str] = field(default_factory=list)
    acked_outcomes: list[tuple[str, str]] = field(default_factory=list)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    memory: list[tuple[float, int]] = field(default_factory=list)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)] if ordered else float("nan")


def rss_kib(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (the workers of `nba serve --workers`)."""
    total = 0
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended while being read
        total += sum(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmRSS:"))
    return total


class Connection:
    """One keep-alive HTTP/1.1 connection (the load needs nothing more, and no client
    library in the environment)."""

    def __init__(self, port: int, key: str) -> None:
        self.port, self.key = port, key
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        """Status and JSON answer; status 0 if the connection failed."""
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-API-Key: {self.key}\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode()
        try:
            if self.streams is None:
                self.streams = await asyncio.open_connection("127.0.0.1", self.port)
            reader, writer = self.streams
            writer.write(head + payload)
            await writer.drain()
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    close = True
            data = await reader.readexactly(length)
            if close:
                writer.close()
                self.streams = None
            return status, json.loads(data) if data else {}
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError):
            if self.streams is not None:
                self.streams[1].close()
            self.streams = None
            return 0, {}


async def load(
    port: int, key: str, ids: list[str], rate: float, seconds: float, soak: Soak
) -> None:
    """Recommendations at ``rate`` per second from 32 keep-alive connections; an outcome
    for every fourth answer."""
    # Latency counts from when a request was due, not when a free connection took it.
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()

    async def worker() -> None:
        conn = Connection(port, key)
        while (item := await due.get()) is not None:
            i, sent = item
            status, answer = await conn.post(
                "/v1/recommendations", {"customer_id": ids[i % len(ids)], "channel": "phone"}
            )
            soak.records.append(Record(sent, time.monotonic() - sent, status, "recommend"))
            if status != 200:
                continue
            decision_id = str(answer["decision_id"])
            soak.acked_decisions.append(decision_id)
            recs = answer["recommendations"]
            assert isinstance(recs, list)
            if i % 4 or not recs:
                continue
            action = recs[0]["action_id"]
            sent = time.monotonic()
            status, _ = await conn.post(
                "/v1/outcomes",
                {"decision_id": decision_id, "action_id": action, "outcome": "no_response"},
            )
            soak.records.append(Record(sent, time.monotonic() - sent, status, "outcome"))
            if status == 200:
                soak.acked_outcomes.append((decision_id, action))

    workers = [asyncio.create_task(worker()) for _ in range(32)]
    start = time.monotonic()
    i = 0
    while (now := time.monotonic()) - start < seconds:
        wait = start + i / rate - now
        if wait > 0:
            await asyncio.sleep(wait)
        due.put_nowait((i, start + i / rate))
        i += 1
    for _ in workers:
        due.put_nowait(None)
    await asyncio.gather(*workers)


def faults(
    port: int, pg: PostgresServer, every: float, seconds: float, soak: Soak, stop: threading.Event
) -> None:
    import psycopg

    start = time.monotonic()
    k = 0
    while not stop.wait(max(start + (k + 1) * every - time.monotonic(), 0)):
        if time.monotonic() - start > seconds - every / 2:
            return
        kind = ("PostgreSQL stopped 5 s", "PostgreSQL sessions killed", "50 slow clients")[k % 3]
        began = time.monotonic()
        if k % 3 == 0:
            pg.stop()
            time.sleep(5)
            pg.start()
        elif k % 3 == 1:
            with psycopg.connect(pg.url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE usename = 'nba' AND pid <> pg_backend_pid()"
                )
        else:
            slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
            for s in slow:
                s.sendall(
                    b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n{"
                )
            time.sleep(3)
            for s in slow:
                s.close()
        soak.windows.append((kind, began, time.monotonic() + 5))
        k += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=200.0, help="recommendations per second")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between faults")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--workers", type=int, default=1, help="nba serve --workers")
    args = parser.parse_args()

    home = Path(os.environ.setdefault("NBA_HOME", str((ROOT / ".nba").resolve())))
    import pandas as pd

    from nba.config import get_settings
    from nba.decision_log import DecisionLog
    from serving.keys import create_key
    from tests.conftest import running_postgres

    settings = get_settings()
    if not settings.profiles_path.is_file():
        sys.exit(f"no workspace at {home}: run `make demo` first")
    column = pd.read_parquet(settings.profiles_path, columns=["customer_id"])["customer_id"]
    ids: list[str] = column.drop_duplicates().sample(frac=1.0, random_state=7).tolist()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {len(ids):,} customers; {args.rate:g} req/s for "
        f"{args.minutes:g} min, a fault every {args.every:g} s; {args.workers} worker(s)"
    )
    soak = Soak()
    with running_postgres() as pg:
        log = DecisionLog(pg.url)
        key = create_key(log, ("recommend", "outcomes"), "soak")
        env = dict(
            os.environ,
            NBA_DECISION_LOG_URL=pg.url,
            NBA_MODEL_POLL_SECONDS="0",
            NBA_LOG_LEVEL="error",
            NBA_ACCESS_LOG="false",
        )
        with nba_serve(env, args.port, workers=args.workers) as server:
            seconds = args.minutes * 60
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(5):
                    soak.memory.append((time.monotonic(), rss_kib(server.pid)))

            threads = [
                threading.Thread(target=sample, daemon=True),
                threading.Thread(
                    target=faults,
                    args=(args.port, pg, args.every, seconds, soak, stop),
                    daemon=True,
                ),
            ]
            for t in threads:
                t.start()
            started = time.monotonic()
            asyncio.run(load(args.port, key, ids, args.rate, seconds, soak))
            stop.set()
            for t in threads:
                t.join(timeout=30)
        served = {r[0] for r in log.query("SELECT decision_id FROM served")}
        logged = {(r[0], r[1]) for r in log.query("SELECT decision_id, action_id FROM outcomes")}
        log.close()

    lost_d = len(set(soak.acked_decisions) - served)
    lost_o = len(set(soak.acked_outcomes) - logged)
    statuses: dict[int, int] = {}
    for r in soak.records:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    achieved = sum(r.kind == "recommend" for r in soak.records) / (args.minutes * 60)
    print(f"requests: {len(soak.records):,} ({achieved:.0f} recommendations/s achieved); "
          f"statuses {dict(sorted(statuses.items()))}")  # fmt: skip
    print(f"acknowledged: {len(soak.acked_decisions):,} answers, {len(soak.acked_outcomes):,} "
          f"outcomes; lost: {lost_d} answers, {lost_o} outcomes")  # fmt: skip

    def in_fault(t: float) -> bool:
        return any(a <= t <= b for _, a, b in soak.windows)

    first = soak.windows[0][1] if soak.windows else started + args.minutes * 60
    warm = started + WARM_UP_SECONDS  # caches and connections filling: not the steady state
    baseline = [r.seconds * 1000 for r in soak.records
                if warm <= r.sent < first and r.status == 200]  # fmt: skip
    outside = [r.seconds * 1000 for r in soak.records
               if r.sent >= first and not in_fault(r.sent) and r.status == 200]  # fmt: skip
    inside = [r for r in soak.records if in_fault(r.sent)]
    print(f"latency before the first fault (after {WARM_UP_SECONDS} s of warm-up): "
          f"p50 {_pct(baseline, 0.5):.2f} ms, "
          f"p99 {_pct(baseline, 0.99):.2f} ms ({len(baseline):,} requests)")  # fmt: skip
    print(f"latency outside fault windows after it: p50 {_pct(outside, 0.5):.2f} ms, "
          f"p99 {_pct(outside, 0.99):.2f} ms ({len(outside):,} requests)")  # fmt: skip
    if inside:
        slowest = max(r.seconds for r in inside)
        failed = sum(r.status != 200 for r in inside)
        print(f"inside fault windows: {len(inside):,} requests, {failed:,} not 200, "
              f"slowest {slowest * 1000:.0f} ms")  # fmt: skip
    for kind, a, _ in soak.windows:
        print(f"  fault at {a - started:5.0f} s: {kind}")
    # Drift over time (a growing log, memory) shows here, apart from the faults' effect.
    minutes: dict[int, list[float]] = {}
    for r in soak.records:
        if r.sent >= warm and not in_fault(r.sent) and r.status == 200:
            minutes.setdefault(int((r.sent - started) // 60), []).append(r.seconds * 1000)
    print("p99 outside fault windows, minute by minute: " + ", ".join(
        f"{_pct(v, 0.99):.0f}" for _, v in sorted(minutes.items())) + " ms")  # fmt: skip
    if soak.memory:
        mem = [m for _, m in soak.memory]
        early = statistics.mean(mem[: max(len(mem) // 10, 1)])
        last = statistics.mean(mem[-max(len(mem) // 10, 1) :])
        print(f"server memory (RSS): first tenth {early / 1024:.0f} MiB, last tenth "
              f"{last / 1024:.0f} MiB ({(last / early - 1) * 100:+.1f}%), "
              f"max {max(mem) / 1024:.0f} MiB")  # fmt: skip
    return 0 if lost_d == lost_o == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
