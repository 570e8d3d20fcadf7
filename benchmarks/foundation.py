"""Benchmark of the foundation: simulation speed, profile build time and memory, vs a floor.

    python benchmarks/foundation.py                 # full size (100k sim; 1M-customer build)
    python benchmarks/foundation.py --scale 0.05    # a quick run at 5% of the sizes

Each measured step runs in a fresh subprocess so that its peak memory (max RSS) is its own.
The floor is a plain DuckDB group-by (customer x type counts) over the same events: the
least work any profile build must do (read every event once and aggregate it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def step_simulate(customers: int, out: str) -> dict[str, Any]:
    from nba.catalog import load_catalog
    from nba.simulate import SimulationConfig, simulate_world, write_world

    config = SimulationConfig(customers=customers, months=12, seed=1)
    catalog = load_catalog()
    t = time.perf_counter()
    world = simulate_world(config, catalog)
    simulated = time.perf_counter() - t
    write_world(world, Path(out), config, catalog.source)
    total = time.perf_counter() - t
    return {
        "customers": customers,
        "interactions": world.summary["interactions"],
        "decisions": world.summary["decisions"],
        "simulate_s": round(simulated, 2),
        "simulate_and_write_s": round(total, 2),
        "peak_mb": round(_peak_mb()),
    }


def step_build(data: str) -> dict[str, Any]:
    """Validate + profiles for every customer as of now + offline Parquet written."""
    from nba.contract import load_dataset
    from nba.feature_store import write_offline
    from pipelines.features import latest_as_of

    t = time.perf_counter()
    ds = load_dataset(data)
    loaded = time.perf_counter() - t
    from nba.profiles import compute_profiles

    latest = latest_as_of(ds).replace(tzinfo=None).isoformat(sep=" ")
    queries = ds.con.sql(
        f"SELECT customer_id, TIMESTAMP '{latest}' AS as_of FROM customers"
    ).to_arrow_table()
    profiles = compute_profiles(ds.con, queries)
    computed = time.perf_counter() - t
    n_events = ds.count("interactions")
    ds.close()
    write_offline(profiles)
    total = time.perf_counter() - t
    return {
        "customers": profiles.num_rows,
        "events": n_events,
        "load_validate_s": round(loaded, 2),
        "profiles_s": round(computed - loaded, 2),
        "total_s": round(total, 2),
        "peak_mb": round(_peak_mb()),
    }


def step_floor(data: str) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    path = str(Path(data) / "interactions.parquet").replace("'", "''")
    t = time.perf_counter()
    rows = con.execute(
        f"SELECT count(*) FROM (SELECT customer_id, type, count(*) AS n "
        f"FROM read_parquet('{path}') GROUP BY customer_id, type)"
    ).fetchall()
    return {
        "groups": rows[0][0],
        "floor_s": round(time.perf_counter() - t, 2),
        "peak_mb": round(_peak_mb()),
    }


STEPS = {"simulate": step_simulate, "build": step_build, "floor": step_floor}


def _child(step: str, *args: Any) -> dict[str, Any]:
    env = dict(os.environ)
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r}); "
        f"from benchmarks.foundation import STEPS; "
        f"print(json.dumps(STEPS[{step!r}](*{list(args)!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of full size")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    sim_n = max(1000, int(100_000 * args.scale))
    big_n = max(1000, int(1_000_000 * args.scale))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nba-bench-"))
    os.environ.setdefault("NBA_HOME", str(work / "home"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; workdir {work}"
    )

    sim = _child("simulate", sim_n, str(work / "sim"))
    print(
        f"simulate {sim['customers']:,} customers x 12 months: {sim['simulate_s']} s "
        f"({sim['simulate_and_write_s']} s with writing; {sim['interactions']:,} events, "
        f"{sim['decisions']:,} decisions; peak {sim['peak_mb']:,} MB)  target <= 60 s"
    )

    big = _child("simulate", big_n, str(work / "big"))
    print(
        f"generated {big['customers']:,} customers, {big['interactions']:,} events "
        f"for the build ({big['simulate_and_write_s']} s)"
    )
    build = _child("build", str(work / "big"))
    floor = _child("floor", str(work / "big"))
    ratio = build["total_s"] / max(floor["floor_s"], 1e-9)
    print(
        f"profile build, {build['customers']:,} customers from {build['events']:,} events: "
        f"{build['total_s']} s (load+validate {build['load_validate_s']} s, profiles "
        f"{build['profiles_s']} s), peak {build['peak_mb']:,} MB  "
        f"targets <= 180 s, <= 8192 MB"
    )
    print(
        f"floor (DuckDB group-by customer x type over the same events): {floor['floor_s']} s;"
        f" build / floor = {ratio:.1f}x"
    )
    result = {
        "scale": args.scale,
        "simulate": sim,
        "big": big,
        "build": build,
        "floor": floor,
        "ratio": round(ratio, 2),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
    }
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / f"foundation-{args.scale:g}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
