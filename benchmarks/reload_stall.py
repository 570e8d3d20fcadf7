"""What a hot reload does to the requests in flight.

    make demo                                       # a workspace with a model and profiles
    .venv/bin/python benchmarks/reload_stall.py     # 20 reloads under 100 req/s
    .venv/bin/python benchmarks/reload_stall.py --reloads 10 --rate 50

In process: a 1 ms ticker thread beside ``load_champion`` (what the server's loading
thread runs) records the longest time it could not run: how long the event loop would
wait for Python's lock while a version loads. Then served: one `nba serve` answers
recommendations at ``--rate`` per second (the asyncio client of ``soak.py``) while
``POST /admin/reload`` moves @champion between two versions of the demo model every
``--every`` seconds; the latency of requests sent while a reload was under way is
compared with the others in the same run.

The demo workspace is only read: the server runs on a temporary workspace holding a copy
of the MLflow registry (where the second version is registered) and a new decision log,
and reads the demo's Feast stores and model files where they are.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.server import nba_serve  # noqa: E402
from benchmarks.soak import Soak, _pct, load, rss_kib  # noqa: E402

WARM_UP_SECONDS = 5


def workspace_copy(home: Path, tmp: Path) -> Path:
    """A workspace that reads ``home``'s Feast stores and model files and owns its registry."""
    work = tmp / "home"
    (work / "feast").mkdir(parents=True)
    for name in ("registry.db", "online_store.db", "data"):
        (work / "feast" / name).symlink_to(home / "feast" / name)
    shutil.copy2(home / "mlflow.db", work / "mlflow.db")
    return work


def second_version() -> tuple[str, str]:
    """Register the champion's model again; the two version numbers."""
    from mlflow import MlflowClient

    from nba.tracking import CHAMPION, MODEL_NAME, configure

    configure()
    client = MlflowClient()
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    if champion.source is None:
        sys.exit("the champion has no source to register again")
    other = client.create_model_version(MODEL_NAME, champion.source, champion.run_id)
    return str(champion.version), str(other.version)


def ticker_gaps(loads: int, apart: bool) -> list[float]:
    """For each load of the champion (in a thread, or ``apart`` in a helper process as the
    server does now), the longest gap (ms) of a 1 ms ticker thread beside it."""
    from nba.config import get_settings
    from nba.tracking import resolve
    from serving.models import load_apart, load_champion

    settings = get_settings()
    ref = resolve(settings=settings)
    load_champion(settings, ref)  # imports and compiled code: a server does this at start
    worst = []
    for _ in range(loads):
        gaps: list[float] = []
        stop = threading.Event()

        def tick(gaps: list[float] = gaps, stop: threading.Event = stop) -> None:
            last = time.perf_counter()
            while not stop.is_set():
                time.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = threading.Thread(target=tick)
        ticker.start()
        time.sleep(0.05)
        if apart:
            load_apart(settings, ref)
        else:
            load_champion(settings, ref)
        stop.set()
        ticker.join()
        worst.append(max(gaps) * 1000)
    return worst


def reloads(
    home: str,
    port: int,
    key: str,
    versions: tuple[str, str],
    count: int,
    every: float,
    send: Connection,
) -> None:
    """Move @champion to the other version and ask the server to load it, ``count`` times;
    send the windows (name, start, end on the monotonic clock). Its own process: the
    registry client's work must not slow the load's event loop, which measures latency."""
    os.environ["NBA_HOME"] = home
    from mlflow import MlflowClient

    from nba.tracking import CHAMPION, MODEL_NAME, configure

    configure()
    client = MlflowClient()
    windows = []
    time.sleep(WARM_UP_SECONDS + every / 2)
    for k in range(count):
        client.set_registered_model_alias(MODEL_NAME, CHAMPION, versions[(k + 1) % 2])
        began = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request("POST", "/admin/reload", headers={"X-API-Key": key})
        answer = json.loads(conn.getresponse().read())
        conn.close()
        windows.append((f"reload to v{answer.get('model_version')}", began, time.monotonic()))
        time.sleep(every)
    send.send(windows)
    send.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--every", type=float, default=3.0, help="seconds between reloads")
    parser.add_argument("--rate", type=float, default=100.0, help="recommendations per second")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()

    home = Path(os.environ.get("NBA_HOME", str(ROOT / ".nba"))).resolve()
    if not (home / "mlflow.db").is_file() or not (home / "feast" / "online_store.db").is_file():
        sys.exit(f"no workspace at {home}: run `make demo` first")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; workspace {home} (read only)"
    )
    with tempfile.TemporaryDirectory(prefix="nba-reload-") as tmp:
        work = workspace_copy(home, Path(tmp))
        os.environ["NBA_HOME"] = str(work)
        import pandas as pd

        from nba.config import get_settings
        from nba.decision_log import DecisionLog
        from serving.keys import create_key

        settings = get_settings()
        versions = second_version()
        n = min(args.reloads, 10)
        for apart, how in ((False, "in a thread"), (True, "in a helper process (the server)")):
            gaps = ticker_gaps(n, apart)
            print(
                f"{n} loads {how}: the longest wait of a thread beside the load: median "
                f"{_pct(gaps, 0.5):.1f} ms, at most {max(gaps, default=0):.1f} ms"
            )
        column = pd.read_parquet(settings.profiles_path, columns=["customer_id"])["customer_id"]
        ids: list[str] = column.drop_duplicates().sample(frac=1.0, random_state=7).tolist()
        log = DecisionLog(settings.decision_log)
        key = create_key(log, ("recommend", "outcomes", "admin"), "reload benchmark")
        log.close()
        env = dict(
            os.environ, NBA_MODEL_POLL_SECONDS="0", NBA_LOG_LEVEL="error", NBA_ACCESS_LOG="false"
        )
        soak = Soak()
        seconds = WARM_UP_SECONDS + args.every * (args.reloads + 1)
        with nba_serve(env, args.port) as server:
            memory = [rss_kib(server.pid)]
            context = multiprocessing.get_context("spawn")
            receive, send = context.Pipe(duplex=False)
            driver = context.Process(
                target=reloads,
                args=(str(work), args.port, key, versions, args.reloads, args.every, send),
            )
            driver.start()
            asyncio.run(load(args.port, key, ids, args.rate, seconds, soak))
            soak.windows.extend(receive.recv() if receive.poll(120) else [])
            driver.join(timeout=30)
            memory.append(rss_kib(server.pid))

    def during(sent: float, took: float) -> bool:
        return any(sent <= b and sent + took >= a for _, a, b in soak.windows)

    start = min((r.sent for r in soak.records), default=0.0) + WARM_UP_SECONDS
    steady = [r for r in soak.records if r.sent >= start and r.kind == "recommend"]
    inside = [r.seconds * 1000 for r in steady if during(r.sent, r.seconds)]
    outside = [r.seconds * 1000 for r in steady if not during(r.sent, r.seconds)]
    failed = sum(r.status != 200 for r in steady)
    took = [(b - a) * 1000 for _, a, b in soak.windows]
    print(
        f"served, {len(soak.windows)} reloads under {args.rate:g} req/s: a reload took "
        f"{_pct(took, 0.5):.0f} ms (median), {max(took, default=0):.0f} ms at most; "
        f"{failed} requests not answered 200"
    )
    for name, values in (("while reloading", inside), ("otherwise", outside)):
        print(
            f"  {name}: {len(values):,} requests, p50 {_pct(values, 0.5):.1f} ms, "
            f"p99 {_pct(values, 0.99):.1f} ms, max {max(values, default=float('nan')):.1f} ms"
        )
    print(
        f"server memory (RSS) before and after the reloads: {memory[0] / 1024:.0f} -> "
        f"{memory[-1] / 1024:.0f} MiB"
    )
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
