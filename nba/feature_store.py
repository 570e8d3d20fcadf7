"""The Feast feature store of the engine: configuration, registration, writing and reading.

The Feast repository lives in ``features/`` (definitions and a ``feature_store.yaml``
template). The effective configuration is rendered into ``$NBA_HOME/feast/`` from the
template and the settings, so every store (registry, online SQLite or Redis) belongs to one
workspace and Redis is a setting, not a code change. Registration runs the real
``feast apply`` on the repository.
"""

from __future__ import annotations

import json
import os
import string
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from nba.config import Settings, get_settings
from nba.contract import dataset_fingerprint
from nba.exceptions import FeatureStoreError
from nba.profiles import ENTITY_KEY, FEATURE_SERVICE, TIMESTAMP_FIELD

if TYPE_CHECKING:
    from feast import FeatureStore


def render_config(settings: Settings | None = None) -> Path:
    """Write ``$NBA_HOME/feast/feature_store.yaml`` from the template; return its path."""
    s = settings or get_settings()
    template = s.feature_repo / "feature_store.yaml"
    if not template.is_file():
        raise FeatureStoreError(
            f"{template}: Feast repository template not found "
            "(set NBA_FEATURE_REPO to the project's features/ folder)"
        )
    text = string.Template(template.read_text(encoding="utf-8")).safe_substitute(
        NBA_HOME=str(s.home_dir), NBA_REDIS_URL=s.redis_url
    )
    config: dict[str, Any] = yaml.safe_load(text)
    if s.online_store == "redis":
        config["online_store"] = {"type": "redis", "connection_string": s.redis_url}
    s.feast_dir.mkdir(parents=True, exist_ok=True)
    rendered = s.feast_dir / "feature_store.yaml"
    body = "# Rendered by the NBA engine from features/feature_store.yaml; do not edit.\n"
    rendered.write_text(body + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return rendered


def _feast_env(s: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NBA_HOME=str(s.home_dir),
        NBA_ONLINE_STORE=s.online_store,
        NBA_REDIS_URL=s.redis_url,
        FEAST_USAGE="False",  # no telemetry calls from a closed network
    )
    return env


def apply_repo(settings: Settings | None = None) -> str:
    """Register the Feast objects of ``features/`` (``feast apply``). Returns Feast's output."""
    s = settings or get_settings()
    rendered = render_config(s)
    feast_cli = Path(sys.executable).with_name("feast")
    cmd = [
        str(feast_cli) if feast_cli.exists() else "feast",
        "-c",
        str(s.feature_repo),
        "-f",
        str(rendered),
        "apply",
    ]
    try:
        done = subprocess.run(
            cmd, env=_feast_env(s), capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FeatureStoreError(f"could not run feast apply: {exc}") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise FeatureStoreError(f"feast apply failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def open_store(settings: Settings | None = None) -> FeatureStore:
    """The engine's FeatureStore, configured from the rendered ``feature_store.yaml``."""
    from feast import FeatureStore

    s = settings or get_settings()
    os.environ.setdefault("FEAST_USAGE", "False")
    # Rendered every time (cheap), so a changed setting or template is never stale.
    return FeatureStore(repo_path=str(s.feature_repo), fs_yaml_file=render_config(s))


def write_offline(profiles: pa.Table, settings: Settings | None = None) -> Path:
    """Write profiles as the offline source (atomically: readers never see half a file)."""
    s = settings or get_settings()
    path = s.profiles_path
    path.parent.mkdir(parents=True, exist_ok=True)
    ts = profiles.column(TIMESTAMP_FIELD)
    if not pa.types.is_timestamp(ts.type) or ts.type.tz is None:
        idx = profiles.schema.get_field_index(TIMESTAMP_FIELD)
        profiles = profiles.set_column(
            idx, TIMESTAMP_FIELD, ts.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
        )
    # In modest row groups, sorted by customer: batch scoring reads a customer range per
    # chunk, and the row groups' statistics let it skip the rest of the file. The newest
    # moment's profiles (the whole base "now") come first, in row groups of their own, so
    # scoring the base skips every older profile too.
    profiles = profiles.sort_by([("customer_id", "ascending"), (TIMESTAMP_FIELD, "ascending")])
    ts = profiles.column(TIMESTAMP_FIELD)
    newest = pc.equal(ts, pc.max(ts)) if profiles.num_rows else pa.array([], pa.bool_())
    tmp = path.with_suffix(".parquet.tmp")
    with pq.ParquetWriter(tmp, profiles.schema, compression="zstd") as writer:
        for block in (profiles.filter(newest), profiles.filter(pc.invert(newest))):
            writer.write_table(block, row_group_size=16_384)
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class BuildManifest:
    """What the offline store was built from: batch scoring reads its profiles only when
    the dataset is unchanged since (same fingerprint)."""

    data_dir: str
    fingerprint: str
    as_of_latest: datetime


def manifest_path(settings: Settings) -> Path:
    """Beside the offline store: what it was built from (:class:`BuildManifest`)."""
    return settings.profiles_path.with_suffix(".build.json")


def write_build_manifest(settings: Settings, data_dir: Path, latest: datetime) -> None:
    path = manifest_path(settings)
    body = {
        "data_dir": str(Path(data_dir).resolve()),
        "fingerprint": dataset_fingerprint(data_dir),
        "as_of_latest": latest.isoformat(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body, indent=2), encoding="utf-8")
    tmp.replace(path)


def read_build_manifest(settings: Settings) -> BuildManifest | None:
    """The manifest of the current offline store; ``None`` if absent or unreadable."""
    path = manifest_path(settings)
    if not path.is_file() or not settings.profiles_path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return BuildManifest(
            body["data_dir"], body["fingerprint"], datetime.fromisoformat(body["as_of_latest"])
        )
    except (ValueError, KeyError, TypeError):
        return None


def materialize(store: FeatureStore, as_of: datetime, earliest: datetime) -> None:
    """Feast's own materialisation: each customer's newest offline profile up to ``as_of``."""
    store.materialize(
        start_date=earliest - timedelta(seconds=1), end_date=as_of + timedelta(seconds=1)
    )


def latest_profiles(profiles: pa.Table, as_of: datetime) -> pa.Table:
    """The rows of ``profiles`` taken at ``as_of`` (every customer's current profile).

    ``profiles`` holds naive UTC timestamps, as :func:`nba.profiles.compute_profiles` makes
    them; the result's are UTC-aware, as Feast expects."""
    moment = pa.scalar(as_of.astimezone(UTC).replace(tzinfo=None), type=pa.timestamp("us"))
    ts = profiles.column(TIMESTAMP_FIELD).cast(pa.timestamp("us"))
    latest = profiles.filter(pc.equal(ts, moment))
    idx = latest.schema.get_field_index(TIMESTAMP_FIELD)
    aware = latest.column(idx).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    return latest.set_column(idx, TIMESTAMP_FIELD, aware)


def online_profiles(store: FeatureStore, customer_ids: list[str]) -> dict[str, list[Any]]:
    """Online profile values for ``customer_ids`` through the feature service."""
    service = store.get_feature_service(FEATURE_SERVICE)
    rows = [{ENTITY_KEY: c} for c in customer_ids]
    result: dict[str, list[Any]] = store.get_online_features(
        features=service, entity_rows=rows
    ).to_dict()
    return result
