"""Parity of pushed events on a real workspace: online profiles after pushed events against
the batch build's profiles as of the same moments, feature by feature.

    make demo
    python benchmarks/event_parity.py --events 300 --customers 60

On a copy of the workspace (``NBA_HOME``, default ``.nba``): ``--events`` random events
(types, channels, amounts, sentiments; timestamps from a year before the build to a month
after it, in random order, a tenth of them sent twice) for ``--customers`` customers go
through the engine's ingestion (checked, committed, profiles recomputed and written to the
online store). Then the batch side computes the same customers' profiles with the build's
own loading and merging, as of each online profile's moment, and every feature is
compared. Printed: events, customers, features compared, differences (target: 0), and the
time per recomputation.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--customers", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    source = Path(os.environ.get("NBA_HOME", ".nba")).resolve()
    if not (source / "feast" / "data" / "history" / "customers.parquet").is_file():
        sys.exit(f"{source}: no features build with its history (run `make demo` first)")
    work = Path(tempfile.mkdtemp(prefix="nba-event-parity-"))
    home = work / "home"
    skip = shutil.ignore_patterns("*.tmp", "logs", "decision_log.db*", "spill", "mlartifacts")
    shutil.copytree(source, home, ignore=skip)
    os.environ["NBA_HOME"] = str(home)
    os.environ["NBA_DECISION_LOG_URL"] = f"sqlite:///{work / 'decision_log.db'}"

    import pyarrow as pa
    import pyarrow.parquet as pq

    from nba.config import get_settings
    from nba.contract import load_dataset
    from nba.decision_log import DecisionLog, EventBatch, InteractionEvent
    from nba.event_ingest import ProfileRefresher, open_history
    from nba.feature_store import open_store
    from nba.live_profiles import merge_pushed, pushed_events
    from nba.profiles import FEATURE_NAMES, compute_profiles
    from nba.vocabulary import CHANNELS, INTERACTION_TYPES
    from serving.online import OnlineProfiles

    settings = get_settings()
    manifest = settings.profiles_path.with_suffix(".build.json")
    data = Path(json.loads(manifest.read_text())["data_dir"])
    history = open_history(settings)
    rng = random.Random(args.seed)
    ids = pq.read_table(history.directory / "customers.parquet", columns=["customer_id"])
    signups = history.signups(ids.column("customer_id").to_pylist())
    customers = rng.sample(sorted(signups), args.customers)
    latest = history.as_of_latest
    events = []
    for n in range(args.events):
        cid = rng.choice(customers)
        at = latest + timedelta(
            hours=rng.randint(-365 * 24, 30 * 24), seconds=rng.randint(0, 3599)
        )
        at = max(at, signups[cid] + timedelta(minutes=1))
        amount = round(rng.uniform(5, 300), 2) if rng.random() < 0.5 else None
        sentiment = round(rng.uniform(-1, 1), 3) if rng.random() < 0.5 else None
        kind, channel = rng.choice(INTERACTION_TYPES), rng.choice(CHANNELS)
        events.append(InteractionEvent(f"p-{n}", cid, at, channel, kind, amount, sentiment))
    arrivals = events + rng.sample(events, len(events) // 10)
    rng.shuffle(arrivals)

    log = DecisionLog(settings.decision_log)
    log.start()
    refresher = ProfileRefresher(settings, log, open_store(settings), background=False)
    seconds = []
    try:
        for e in arrivals:
            if log.write(EventBatch((e,))).recorded:
                t = time.perf_counter()
                refresher.refresh([e.customer_id])
                seconds.append(time.perf_counter() - t)
        pushed = sorted({e.customer_id for e in events})
        online = OnlineProfiles(open_store(settings)).read_many(pushed)
        stored = pushed_events(log)
        n_stored = log.count("events")
    finally:
        log.close()
    dataset = load_dataset(data, settings=settings)
    try:
        merge_pushed(dataset.con, stored)
        moments = pa.table(
            {
                "customer_id": pa.array(pushed),
                "as_of": pa.array(
                    [o[1].astimezone(UTC).replace(tzinfo=None) for o in online if o],
                    pa.timestamp("us"),
                ),
            }
        )
        batch = compute_profiles(dataset.con, moments).to_pylist()
    finally:
        dataset.close()
    diffs = 0
    for (row, _), expected in zip([o for o in online if o], batch, strict=True):
        diffs += sum(not _same(row[f], expected[f]) for f in FEATURE_NAMES)
    seconds.sort()
    print(
        f"{len(arrivals)} pushes ({len(events)} events, {len(arrivals) - len(events)} sent "
        f"twice; {n_stored} stored) for {len(pushed)} customers, "
        f"{len(pushed) * len(FEATURE_NAMES):,} feature values compared: {diffs} differences "
        f"(target: 0)"
    )
    print(
        f"one customer's recomputation and online write: p50 "
        f"{seconds[len(seconds) // 2] * 1000:.0f} ms, p99 "
        f"{seconds[int(len(seconds) * 0.99)] * 1000:.0f} ms (machine: {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d})"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
