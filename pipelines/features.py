"""Stage: build point-in-time profiles and load them into the Feast feature store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

from nba.config import Settings, get_settings
from nba.contract import Dataset, load_dataset
from nba.decision_log import DecisionLog, now_utc, to_text
from nba.feature_store import (
    apply_repo,
    latest_profiles,
    open_store,
    write_build_manifest,
    write_offline,
)
from nba.live_profiles import history_dir, merge_pushed, pushed_events, write_history
from nba.online_refresh import OnlineLoadReport, refresh_online
from nba.profiles import FEATURES, compute_profiles
from pipelines.timing import Laps

LATEST_OFFSET = timedelta(seconds=1)
"""The 'current' profile is taken just after the newest event, so that event counts."""


@dataclass
class FeatureBuildReport:
    n_customers: int
    n_profile_rows: int
    n_features: int
    as_of_latest: datetime
    offline_path: Path
    online_store: str
    online_load: OnlineLoadReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_pushed_events(s: Settings) -> pa.Table:
    """Every interaction pushed to the engine (API or `nba events push`), from the log."""
    log = DecisionLog(s.decision_log)
    try:
        return pushed_events(log)
    finally:
        log.close()


def reapply_events_since(s: Settings, snapshot: datetime) -> None:
    """Events pushed while the build ran are not in its profiles, which may just have
    replaced the profiles that had them: marked for the server's refresher again."""
    log = DecisionLog(s.decision_log)
    try:
        log.execute_now(
            "UPDATE events SET online_at = NULL WHERE received_at >= ?", (to_text(snapshot),)
        )
    finally:
        log.close()


def latest_as_of(dataset: Dataset) -> datetime:
    newest = dataset.newest_timestamp()
    if not isinstance(newest, datetime):
        raise ValueError("the dataset holds no timestamp at all")
    return newest.replace(tzinfo=UTC) + LATEST_OFFSET


def profile_queries_sql(latest: datetime) -> str:
    """Every (customer, as-of) a profile is needed for: each decision (training), each
    contact (scoring), and every customer now (the online store)."""
    now = latest.replace(tzinfo=None).isoformat(sep=" ")
    return f"""
        SELECT customer_id, timestamp AS as_of FROM decisions
        UNION SELECT customer_id, timestamp AS as_of FROM contacts
        UNION SELECT customer_id, TIMESTAMP '{now}' AS as_of FROM customers"""


def build_features(
    data_dir: Path,
    settings: Settings | None = None,
    step: Callable[[str], None] | None = None,
    *,
    register: bool = True,
    online: bool = True,
    changed_only: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> FeatureBuildReport:
    """Validate ``data_dir``, compute profiles, write the offline store, ``feast apply`` and
    materialise the newest profile of every customer into the online store.

    ``step(name)`` is called as each step starts (for progress display). ``register=False``
    writes the offline store only; ``online=False`` registers but leaves the online store
    (training needs only the registry and the offline store). ``changed_only`` writes only
    the customers whose profile changed since the last load, when there was one
    (:mod:`nba.online_refresh`); ``progress(done, total)`` follows the online load.
    """
    s = settings or get_settings()
    say = step or (lambda _name: None)
    laps = Laps()
    lap = laps.lap
    online_load: OnlineLoadReport | None = None

    say("validating the dataset")
    dataset = load_dataset(data_dir, settings=s)
    notes, warnings = list(dataset.notes), list(dataset.warnings)
    lap("validate")
    try:
        snapshot = now_utc()
        pushed = read_pushed_events(s)
        added = merge_pushed(dataset.con, pushed)
        if pushed.num_rows:
            notes.append(
                f"{added:,} interactions pushed to the engine added to the data"
                + (
                    f" ({pushed.num_rows - added:,} were in it already)"
                    if added < pushed.num_rows
                    else ""
                )
            )
        latest = latest_as_of(dataset)
        say("computing point-in-time profiles")
        queries = dataset.con.sql(profile_queries_sql(latest)).to_arrow_table()
        profiles = compute_profiles(dataset.con, queries)
        write_history(dataset.con, history_dir(s.profiles_path), latest)
        lap("profiles")
        n_customers = dataset.count("customers")
    finally:
        dataset.close()
    say("writing the offline store")
    path = write_offline(profiles, s)
    write_build_manifest(s, data_dir, latest)
    lap("offline_write")
    if register:
        say("registering the Feast repository (feast apply)")
        apply_repo(s)
        lap("feast_apply")
        if online:
            say("loading the newest profiles into the online store")
            newest = latest_profiles(profiles, latest)
            done = 0

            def advance(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, newest.num_rows)

            online_load = refresh_online(
                open_store(s),
                newest,
                s.feast_dir / "online_loaded.parquet",
                changed_only=changed_only,
                progress=advance,
            )
            reapply_events_since(s, snapshot)
            lap("online_write")
    return FeatureBuildReport(
        n_customers=n_customers,
        n_profile_rows=profiles.num_rows,
        n_features=len(FEATURES),
        as_of_latest=latest,
        offline_path=path,
        online_store=s.online_store,
        online_load=online_load,
        seconds=laps.seconds,
        notes=notes,
        warnings=warnings,
    )
