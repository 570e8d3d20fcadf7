"""Feast: the repo applies, and offline and online profiles agree (training/serving parity).

These run the real ``feast apply`` and the real SQLite (and Redis) online stores.
"""

from __future__ import annotations

import math
from datetime import UTC
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from nba.catalog import load_catalog
from nba.config import get_settings
from nba.contract import load_dataset
from nba.feature_store import (
    apply_repo,
    materialize,
    online_profiles,
    open_store,
    write_offline,
)
from nba.profiles import FEATURE_NAMES, compute_profiles
from nba.simulate import SimulationConfig, simulate_world, write_world
from pipelines.features import build_features

pytestmark = pytest.mark.slow

CONFIG = SimulationConfig(customers=400, months=4, seed=11, holdout_weeks=2)


@pytest.fixture
def sim_data(tmp_path: Path) -> Path:
    catalog = load_catalog()
    out = tmp_path / "sim"
    write_world(simulate_world(CONFIG, catalog), out, CONFIG, catalog.source)
    return out


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return bool(a == b)


def _assert_online_matches(offline_rows: list[dict[str, Any]]) -> None:
    ids = [r["customer_id"] for r in offline_rows]
    online = online_profiles(open_store(), ids)
    for i, row in enumerate(offline_rows):
        diffs = {
            f: (row[f], online[f][i]) for f in FEATURE_NAMES if not _equal(row[f], online[f][i])
        }
        assert not diffs, f"{row['customer_id']}: offline != online for {diffs}"


def _latest_offline(sample: int = 25) -> list[dict[str, Any]]:
    """The newest offline profiles, read through Arrow so that nulls stay None."""
    table = pq.read_table(get_settings().profiles_path)
    ts = table.column("event_timestamp")
    latest = table.filter(pc.equal(ts, pc.max(ts))).sort_by("customer_id")
    return latest.slice(0, sample).to_pylist()


def test_offline_file_has_the_newest_profiles_first_in_their_own_row_groups(
    sim_data: Path,
) -> None:
    """Batch scoring of the base reads only the newest profiles: they come first, each
    block is sorted by customer, and row-group statistics tell the blocks apart."""
    build_features(sim_data, register=False)
    path = get_settings().profiles_path
    table = pq.read_table(path)
    ts = table.column("event_timestamp").to_numpy()
    newest = ts == ts.max()
    n_newest = int(newest.sum())
    assert n_newest == 400  # one per customer
    assert newest[:n_newest].all() and not newest[n_newest:].any()
    ids = table.column("customer_id").to_numpy(zero_copy_only=False)
    for block in (slice(0, n_newest), slice(n_newest, None)):
        assert (ids[block][1:] >= ids[block][:-1]).all()
    meta = pq.ParquetFile(path).metadata
    column = table.schema.get_field_index("event_timestamp")
    spans = [meta.row_group(g).column(column).statistics for g in range(meta.num_row_groups)]
    assert spans[0].min == spans[0].max  # the first row group holds only the newest moment


def test_build_registers_the_repo_and_online_equals_offline(sim_data: Path) -> None:
    report = build_features(sim_data)
    assert report.n_customers == 400
    store = open_store()
    assert [fs.name for fs in store.list_feature_services()] == ["nba_v1"]
    assert len(store.get_feature_view("customer_profile").features) == len(FEATURE_NAMES)
    _assert_online_matches(_latest_offline())


def test_feast_materialize_gives_the_same_online_values(sim_data: Path) -> None:
    """Feast's own materialize (instead of the build's push) loads the same values."""
    report = build_features(sim_data, register=False)  # offline store only
    apply_repo()
    ts = pq.read_table(get_settings().profiles_path).column("event_timestamp").to_pylist()
    materialize(open_store(), report.as_of_latest, min(ts).astimezone(UTC))
    _assert_online_matches(_latest_offline())


def test_historical_retrieval_equals_profile_at_each_decision(sim_data: Path) -> None:
    build_features(sim_data)
    ds = load_dataset(sim_data)
    try:
        queries = ds.con.sql(
            "SELECT customer_id, timestamp AS as_of FROM decisions ORDER BY decision_id LIMIT 40"
        ).to_arrow_table()
        direct = compute_profiles(ds.con, queries).to_pandas()
    finally:
        ds.close()
    entity_df = pd.DataFrame(
        {
            "customer_id": queries.column("customer_id").to_pylist(),
            "event_timestamp": pd.to_datetime(queries.column("as_of").to_pylist()).tz_localize(
                "UTC"
            ),
        }
    )
    store = open_store()
    hist = store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service("nba_v1")
    ).to_df()
    hist["event_timestamp"] = hist["event_timestamp"].dt.tz_convert(None)
    merged = direct.merge(hist, on=["customer_id", "event_timestamp"], suffixes=("", "_feast"))
    assert len(merged) == len(direct.drop_duplicates(["customer_id", "event_timestamp"]))
    for f in FEATURE_NAMES:
        a, b = merged[f], merged[f"{f}_feast"]
        both_null = a.isna() & b.isna()
        if a.dtype == object:
            assert ((a == b) | both_null).all(), f
        else:
            assert ((abs(a.astype(float) - b.astype(float)) < 1e-9) | both_null).all(), f


def test_online_at_t_equals_offline_at_t(sim_data: Path) -> None:
    """Profiles taken at an earlier moment t, materialised, read online: identical."""
    ds = load_dataset(sim_data)
    try:
        t = ds.con.sql(
            "SELECT min(timestamp) + (max(timestamp) - min(timestamp)) / 2 FROM interactions"
        ).fetchall()[0][0]
        q = ds.con.sql(
            f"SELECT customer_id, TIMESTAMP '{t}' AS as_of FROM customers "
            "ORDER BY customer_id LIMIT 30"
        ).to_arrow_table()
        at_t = compute_profiles(ds.con, q)
    finally:
        ds.close()
    write_offline(at_t)
    apply_repo()
    materialize(open_store(), t.replace(tzinfo=UTC), t.replace(tzinfo=UTC))
    _assert_online_matches(at_t.to_pylist())


# --- Redis, by configuration alone ----------------------------------------------------------


def test_redis_online_store_by_configuration(
    sim_data: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBA_ONLINE_STORE", "redis")
    monkeypatch.setenv("NBA_REDIS_URL", redis_url)
    get_settings.cache_clear()
    build_features(sim_data)
    rendered = (get_settings().feast_dir / "feature_store.yaml").read_text()
    assert "type: redis" in rendered and redis_url in rendered
    _assert_online_matches(_latest_offline())
    unknown = online_profiles(open_store(), ["nobody"])
    assert unknown["n_complaint_30d"] == [None]


def test_unknown_customer_reads_empty_online(sim_data: Path) -> None:
    build_features(sim_data)
    got = online_profiles(open_store(), ["nobody"])
    assert got["customer_id"] == ["nobody"]
    assert all(got[f] == [None] for f in FEATURE_NAMES)


def test_offline_file_is_replaced_atomically(sim_data: Path) -> None:
    build_features(sim_data, register=False)
    path = get_settings().profiles_path
    assert path.is_file() and not path.with_suffix(".parquet.tmp").exists()
    assert isinstance(pq.read_table(path), pa.Table)
