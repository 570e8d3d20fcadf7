"""Benchmark of the real-time API: latency under a paced load, and the in-process floor.

    make demo                                   # a workspace with a model and profiles
    python benchmarks/api_latency.py                # 500 req/s for 60 s, then the rate search
    python benchmarks/api_latency.py --duration 20 --rates 300,500,700

Server: `nba serve` (uvicorn, uvloop, httptools; one worker per core unless
``--workers``) on loopback, the demo model, the SQLite online store, API keys on, the
decision log committing (fsync) every answer, the access log on (to /dev/null). Load:
`wrk` (Debian package) with a Lua script; every request asks for a different customer.
wrk is a closed-loop generator: each connection waits a random (exponential) time between
its requests, so arrivals are close to Poisson at the offered rate, and the achieved rate
is printed next to the target. Floor: the same profile
read (Feast provider) + scoring + arbitration in-process, one customer at a time, without
HTTP or the decision log.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.server import nba_serve

LUA = """
local ids = {%(ids)s}
local key = "%(key)s"
local counter = 0
local offset = 0
local delay_ms = %(delay)s
local next_thread = 0
function setup(thread)
  thread:set("offset", next_thread * 7919)
  next_thread = next_thread + 1
end
function init(args)
  offset = tonumber(wrk.thread:get("offset")) or 0
  math.randomseed(12345 + offset)
end
function request()
  counter = counter + 1
  local id = ids[((offset + counter) %% #ids) + 1]
  local body = '{"customer_id":"' .. id .. '","channel":"phone","reason":"billing_question"}'
  return wrk.format("POST", "/v1/recommendations",
    {["Content-Type"] = "application/json", ["X-API-Key"] = key}, body)
end
function delay()
  -- Exponential gaps: Poisson arrivals. Equal gaps phase-lock the connections into
  -- bursts, which measures queueing behind the burst, not the service.
  return -math.log(1 - math.random()) * delay_ms
end
function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRKJSON {"requests": %%d, "seconds": %%.3f, "errors": %%d, "status_errors": %%d, ' ..
    '"p50_ms": %%.3f, "p90_ms": %%.3f, "p99_ms": %%.3f, "max_ms": %%.3f}\\n',
    summary.requests, summary.duration / 1e6, errors, summary.errors.status,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * q), len(ordered) - 1)]


def floor(customers: list[str], n: int) -> dict[str, float]:
    """In-process: profile read + policy for one customer at a time (no HTTP, no log)."""
    from nba.config import get_settings
    from nba.decision_log import DecisionLog, now_utc
    from nba.feature_store import open_store
    from nba.profiles import ENTITY_KEY, FEATURE_SERVICE
    from serving.engine import Pending, Recommender, history_of, profile_read
    from serving.metrics import Metrics
    from serving.models import load_champion
    from serving.online import OnlineProfiles
    from serving.schemas import RecommendationRequest

    settings = get_settings()
    store = open_store(settings)
    reader = OnlineProfiles(store)
    model = load_champion(settings)
    tmp = Path(tempfile.mkdtemp(prefix="nba-floor-"))
    log = DecisionLog(f"sqlite:///{tmp / 'log.db'}")  # empty history, as for new customers
    rec = Recommender(settings, log, Metrics())
    read_ms, full_ms, feast_ms = [], [], []
    for i in range(n):
        cid = customers[i % len(customers)]
        req = RecommendationRequest(customer_id=cid, channel="phone", reason="billing_question")
        t0 = time.perf_counter()
        found = reader.read(cid)
        t1 = time.perf_counter()
        profile = profile_read(found)
        history = history_of(model, log.history(cid, now_utc()))
        rec.decide_batch(model, [Pending(model, req, profile, history)])
        t2 = time.perf_counter()
        read_ms.append((t1 - t0) * 1000)
        full_ms.append((t2 - t0) * 1000)
    # The same answers without the uplift model (the acceptance ranking), in the same run:
    # what ranking by what actions change costs per answer.
    uplift, model.policy.uplift = model.policy.uplift, None
    plain_ms = []
    for i in range(n):
        cid = customers[i % len(customers)]
        req = RecommendationRequest(customer_id=cid, channel="phone", reason="billing_question")
        t0 = time.perf_counter()
        profile = profile_read(reader.read(cid))
        history = history_of(model, log.history(cid, now_utc()))
        rec.decide_batch(model, [Pending(model, req, profile, history)])
        plain_ms.append((time.perf_counter() - t0) * 1000)
    model.policy.uplift = uplift
    service = store.get_feature_service(FEATURE_SERVICE)
    for i in range(min(n, 300)):
        t0 = time.perf_counter()
        store.get_online_features(features=service, entity_rows=[{ENTITY_KEY: customers[i]}])
        feast_ms.append((time.perf_counter() - t0) * 1000)
    log.close()
    shutil.rmtree(tmp, ignore_errors=True)
    return {
        "read_p50": _pct(read_ms, 0.5),
        "read_p99": _pct(read_ms, 0.99),
        "full_p50": _pct(full_ms, 0.5),
        "full_p99": _pct(full_ms, 0.99),
        "mean": statistics.fmean(full_ms),
        "acceptance_p50": _pct(plain_ms, 0.5),
        "get_online_features_p50": _pct(feast_ms, 0.5),
    }


def run_wrk(
    port: int, lua: Path, rate: float, seconds: int, connections: int, expected_ms: float
) -> dict[str, float]:
    # Closed loop: each connection sends, waits for the answer, then waits `delay` ms.
    delay = max(connections * 1000.0 / rate - expected_ms, 0.0)
    text = lua.read_text().replace("%DELAY%", f"{delay:.3f}")
    paced = lua.with_suffix(f".{int(rate)}.lua")
    paced.write_text(text)
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "2s",
            "-s",
            str(paced),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    result: dict[str, float] = json.loads(line.removeprefix("WRKJSON "))
    result["rate"] = result["requests"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=60, help="seconds at the target rate")
    parser.add_argument("--target", type=float, default=500.0)
    parser.add_argument("--rates", default="300,500,600,700,800,900,1000")
    parser.add_argument("--step-seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--floor-n", type=int, default=3000)
    parser.add_argument(
        "--workers",
        type=int,
        default=max(1, len(os.sched_getaffinity(0))),
        help="server worker processes (default: one per core, as `nba serve`)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install wrk")
    home = Path(os.environ.setdefault("NBA_HOME", str(Path(".nba").resolve())))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; NBA_HOME {home}"
    )
    import pandas as pd

    from nba.config import get_settings
    from nba.decision_log import DecisionLog
    from serving.keys import create_key

    settings = get_settings()
    ids = (
        pd.read_parquet(settings.profiles_path, columns=["customer_id"])["customer_id"]
        .drop_duplicates()
        .sample(frac=1.0, random_state=7)
        .tolist()
    )
    print(f"{len(ids):,} distinct customers in the online store")

    # A serving machine has its online store in the page cache; a fresh demo may not.
    online_db = settings.feast_dir / "online_store.db"
    if online_db.is_file():
        with online_db.open("rb") as fh:
            while fh.read(1 << 24):
                pass
    f = floor(ids, args.floor_n)
    print(
        f"floor (in-process read + score + arbitrate, {args.floor_n} customers): "
        f"p50 {f['full_p50']:.3f} ms, p99 {f['full_p99']:.3f} ms "
        f"(of which profile read p50 {f['read_p50']:.3f} ms; Feast get_online_features "
        f"p50 {f['get_online_features_p50']:.3f} ms)"
    )
    print(
        f"the same without the uplift model (acceptance ranking): p50 "
        f"{f['acceptance_p50']:.3f} ms; ranking by what actions change costs "
        f"{f['full_p50'] / f['acceptance_p50']:.2f}x"
    )

    key = create_key(DecisionLog(settings.decision_log), ("recommend",), "benchmark")
    work = Path(tempfile.mkdtemp(prefix="nba-serve-bench-"))
    lua = work / "load.lua"
    quoted = ",".join(f'"{c}"' for c in ids)
    lua.write_text(LUA % {"ids": quoted, "key": key, "delay": "%DELAY%"})
    env = dict(os.environ, NBA_MODEL_POLL_SECONDS="0")
    print(f"server: {args.workers} worker(s)")
    with nba_serve(env, args.port, workers=args.workers):
        run_wrk(args.port, lua, 200, 5, args.connections, f["full_p50"])  # warm-up
        main_run = run_wrk(
            args.port, lua, args.target, args.duration, args.connections, f["full_p50"] + 1
        )
        print(
            f"\ntarget {args.target:.0f} req/s for {args.duration} s: achieved "
            f"{main_run['rate']:.0f} req/s, p50 {main_run['p50_ms']:.2f} ms, "
            f"p90 {main_run['p90_ms']:.2f} ms, p99 {main_run['p99_ms']:.2f} ms, "
            f"max {main_run['max_ms']:.1f} ms, errors {main_run['errors']:.0f} "
            f"(targets: p50 <= 3 ms, p99 <= 10 ms, 0 errors)"
        )
        print(
            f"served p50 / floor p50: {main_run['p50_ms'] / f['full_p50']:.2f}x "
            f"({main_run['p50_ms']:.2f} / {f['full_p50']:.3f} ms)"
        )
        print("\nrate search (p99 <= 10 ms, no errors):")
        best = 0.0
        for rate in [float(r) for r in args.rates.split(",")]:
            r = run_wrk(
                args.port, lua, rate, args.step_seconds, args.connections, f["full_p50"] + 1
            )
            ok = r["p99_ms"] <= 10 and r["errors"] == 0
            print(
                f"  offered {rate:5.0f}: achieved {r['rate']:6.0f} req/s, p50 "
                f"{r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, errors {r['errors']:.0f}"
                f"{'' if ok else '  <- over'}"
            )
            if ok:
                best = max(best, r["rate"])
        print(f"highest rate with p99 <= 10 ms: {best:.0f} req/s")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
