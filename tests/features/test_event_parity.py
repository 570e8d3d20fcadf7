"""Parity: after pushed events, the online profile equals, feature by feature, the profile
the batch build computes as of the same moment, for random event sequences (out of order,
replayed, older than the build, on several customers). Real Feast (SQLite), real decision
log, the build's own code path for the batch side."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nba.catalog import load_catalog
from nba.config import get_settings
from nba.contract import load_dataset
from nba.decision_log import DecisionLog, EventBatch, InteractionEvent
from nba.event_ingest import ProfileRefresher, check_batch, open_history
from nba.feature_store import open_store
from nba.live_profiles import merge_pushed, pushed_events
from nba.profiles import FEATURE_NAMES, compute_profiles
from nba.simulate import SimulationConfig, simulate_world, write_world
from nba.vocabulary import CHANNELS, INTERACTION_TYPES
from pipelines.features import build_features
from serving.online import OnlineProfiles
from tests.conftest import environment

pytestmark = pytest.mark.slow

CONFIG = SimulationConfig(customers=300, months=4, seed=5, holdout_weeks=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("event-parity")
    data, home = root / "data", root / "home"
    catalog = load_catalog()
    write_world(simulate_world(CONFIG, catalog), data, CONFIG, catalog.source)
    with environment(NBA_HOME=str(home)):
        build_features(data)
    return data, home


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


event_spec = st.tuples(
    st.integers(0, 2),  # which customer
    st.integers(-400 * 24, 20 * 24),  # hours from the build's moment: old, recent, later
    st.sampled_from(INTERACTION_TYPES),
    st.sampled_from(CHANNELS),
    st.one_of(st.none(), st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 2))),
    st.one_of(st.none(), st.floats(-1, 1, allow_nan=False)),
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    specs=st.lists(event_spec, min_size=1, max_size=8),
    replays=st.lists(st.integers(0, 7), max_size=3),
    order=st.randoms(use_true_random=False),
    sizes=st.integers(1, 3),
)
def test_online_profile_after_pushed_events_equals_the_batch_profile(
    world: tuple[Path, Path],
    tmp_path_factory: pytest.TempPathFactory,
    specs: list[tuple[int, int, str, str, float | None, float | None]],
    replays: list[int],
    order: Any,
    sizes: int,
) -> None:
    data, home = world
    log_path = tmp_path_factory.mktemp("log") / "decision_log.db"
    with environment(NBA_HOME=str(home), NBA_DECISION_LOG_URL=f"sqlite:///{log_path}"):
        s = get_settings()
        history = open_history(s)
        customers = sorted(history.signups([f"C{i:06d}" for i in range(0, 300, 50)]))[:3]
        signups = history.signups(customers)
        latest = history.as_of_latest
        events = []
        for n, (who, hours, kind, channel, amount, sentiment) in enumerate(specs):
            cid = customers[who % len(customers)]
            at = max(latest + timedelta(hours=hours), signups[cid] + timedelta(minutes=1))
            events.append(InteractionEvent(f"e{n}", cid, at, channel, kind, amount, sentiment))
        # Replays of events already sent (a client retrying), and any arrival order.
        arrivals = events + [events[i % len(events)] for i in replays]
        order.shuffle(arrivals)

        log = DecisionLog(s.decision_log)
        log.start()
        try:
            refresher = ProfileRefresher(s, log, open_store(s), background=False)
            for start in range(0, len(arrivals), sizes):
                batch = arrivals[start : start + sizes]
                problems = check_batch(batch, signups, datetime.now(UTC))
                # The same id twice in one batch is refused: then sent one by one.
                batches = [[e] for e in batch] if problems else [batch]
                for part in batches:
                    if log.write(EventBatch(tuple(part))).recorded:
                        refresher.refresh([e.customer_id for e in part])
                    elif len(part) > 1:  # refused whole (a replay in it): each alone
                        for e in part:
                            if log.write(EventBatch((e,))).recorded:
                                refresher.refresh([e.customer_id])
            assert log.count("events") == len(events)  # replays never stored twice

            pushed = sorted({e.customer_id for e in events})
            online = OnlineProfiles(open_store(s)).read_many(pushed)
            stored = pushed_events(log)
        finally:
            log.close()

        # The batch side: the build's loading and merging, its SQL, at the online moments.
        dataset = load_dataset(data, settings=s)
        try:
            merge_pushed(dataset.con, stored)
            found = [o for o in online if o is not None]
            assert len(found) == len(pushed)
            moments = pa.table(
                {
                    "customer_id": pa.array(pushed),
                    "as_of": pa.array(
                        [ts.astimezone(UTC).replace(tzinfo=None) for _, ts in found],
                        pa.timestamp("us"),
                    ),
                }
            )
            batch_rows = compute_profiles(dataset.con, moments).to_pylist()
        finally:
            dataset.close()
    for cid, (row, ts), expected in zip(pushed, found, batch_rows, strict=True):
        newest = max(e.timestamp for e in events if e.customer_id == cid)
        assert ts == max(newest + timedelta(seconds=1), latest)
        diffs = {f: (row[f], expected[f]) for f in FEATURE_NAMES if not _same(row[f], expected[f])}
        assert not diffs, f"{cid}: online != batch for {diffs}"


def test_the_next_build_includes_pushed_events_once(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    """The build merges pushed events (an export that carries their ids does not count them
    twice) and its newest profile equals the online one."""
    data, _ = world
    copy = tmp_path / "data"
    copy.mkdir()
    for f in data.iterdir():
        if f.is_file():
            (copy / f.name).write_bytes(f.read_bytes())
    log_url = f"sqlite:///{tmp_path / 'decision_log.db'}"
    with environment(NBA_HOME=str(tmp_path / "home"), NBA_DECISION_LOG_URL=log_url):
        s = get_settings()
        build_features(copy)
        history = open_history(s)
        cid = sorted(history.signups(["C000010", "C000020"]))[0]
        at = history.as_of_latest + timedelta(hours=5)
        event = InteractionEvent("x-1", cid, at, "chat", "complaint", None, -0.5)
        log = DecisionLog(s.decision_log)
        log.start()
        try:
            assert log.write(EventBatch((event,))).recorded
            ProfileRefresher(s, log, open_store(s), background=False).refresh([cid])
        finally:
            log.close()
        online = OnlineProfiles(open_store(s)).read(cid)
        assert online is not None

        # The next export carries the event with its id: still counted once.
        interactions = pq.read_table(copy / "interactions.parquet")
        extra = pa.table(
            {
                "customer_id": [cid],
                "timestamp": pa.array([at.replace(tzinfo=None)], interactions["timestamp"].type),
                "channel": ["chat"],
                "type": ["complaint"],
                "amount": pa.array([None], pa.float64()),
                "sentiment": [-0.5],
                "event_id": ["x-1"],
            }
        )
        ids = pa.array([None] * interactions.num_rows, pa.string())
        merged = pa.concat_tables(
            [
                interactions.append_column("event_id", ids),
                extra.select([*interactions.column_names, "event_id"]).cast(
                    interactions.append_column("event_id", ids).schema
                ),
            ]
        )
        pq.write_table(merged, copy / "interactions.parquet")
        report = build_features(copy)
        assert report.as_of_latest == at + timedelta(seconds=1)
        assert any("were in it already" in n for n in report.notes)
        offline = pq.read_table(s.profiles_path, filters=[("customer_id", "=", cid)])
        newest = offline.filter(
            pc.equal(offline["event_timestamp"], pc.max(offline["event_timestamp"]))
        )
        row = newest.to_pylist()[0]
        assert row["n_complaint_7d"] == online[0]["n_complaint_7d"]
        diffs = {
            f: (online[0][f], row[f]) for f in FEATURE_NAMES if not _same(online[0][f], row[f])
        }
        assert not diffs
