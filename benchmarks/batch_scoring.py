"""Benchmark of `nba score`: the local runner on 1M customers vs a floor, Spark local[2]
on 200k customers vs the local runner, and allocation under two limits on 1M customers.

    python benchmarks/batch_scoring.py                 # full size (about 20 minutes)
    python benchmarks/batch_scoring.py --scale 0.05    # a quick run at 5% of the sizes
    python benchmarks/batch_scoring.py --workdir W     # keep (and reuse) worlds in W

The model is the demo's (25,000 simulated customers, trained and registered in the
workspace). The big worlds are simulated with the same generator; their profiles are built
with `nba features build --no-register` (offline store only), the documented way to
prepare a base for scoring. Every measured step runs in its own subprocess, so its wall
time and peak memory (max RSS) are its own and include opening the model.

The floor is the bare library doing the model's share of the same work: the seconds spent
inside LightGBM's `Booster.predict` on the very candidate matrices the runner builds
(measured in a separate run that times every call).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEMO_CUSTOMERS = 25_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def step_world(customers: int, out: str) -> dict[str, Any]:
    """A world like the demo's (12 months, seed 42) with ``customers`` customers."""
    from nba.simulate import SimulationConfig
    from pipelines.simulate import run_simulation

    if (Path(out) / "customers.parquet").is_file():
        return {"customers": customers, "reused": True}
    t = time.perf_counter()
    run_simulation(SimulationConfig(customers=customers, seed=42), Path(out))
    return {"customers": customers, "seconds": round(time.perf_counter() - t, 1)}


def step_train(data: str) -> dict[str, Any]:
    from pipelines.features import build_features
    from pipelines.train import train

    t = time.perf_counter()
    build_features(Path(data))
    report = train(Path(data))
    return {"version": report.version, "seconds": round(time.perf_counter() - t, 1)}


def step_profiles(data: str) -> dict[str, Any]:
    from nba.config import get_settings
    from nba.contract import dataset_fingerprint
    from nba.feature_store import read_build_manifest
    from pipelines.features import build_features

    manifest = read_build_manifest(get_settings())
    if manifest is not None and manifest.fingerprint == dataset_fingerprint(data):
        return {"profile_rows": None, "seconds": "reused"}
    t = time.perf_counter()
    build = build_features(Path(data), register=False)
    return {"profile_rows": build.n_profile_rows, "seconds": round(time.perf_counter() - t, 1)}


def step_score(
    data: str, out: str, engine: str, capacity: list[str], budget: list[str]
) -> dict[str, Any]:
    from pipelines.score import score

    t = time.perf_counter()
    r = score(
        Path(data),
        Path(out),
        engine="spark" if engine == "spark" else "local",
        capacity=capacity,
        budget=budget,
        fresh=True,
    )
    result: dict[str, Any] = {
        "contacts": r.n_contacts,
        "rows": r.n_rows,
        "seconds": round(time.perf_counter() - t, 1),
        "peak_mb": round(_peak_mb()),
        "profile_source": r.profile_source,
    }
    if r.allocation is not None:
        a = r.allocation
        result["allocation"] = {
            "seconds": round(a.seconds, 2),
            "value": round(a.value),
            "greedy_value": round(a.greedy_value),
            "lp_bound": round(a.lp_bound),
            "top1_value": round(a.top1_value),
            "iterations": a.iterations,
            "usage": a.usage,
        }
    return result


def step_floor(data: str, out: str) -> dict[str, Any]:
    """The same scoring run with every booster's raw score computed by LightGBM's own
    ``Booster.predict`` instead of the engine's compiled trees, timing those calls: the
    bare library doing the model's share of the same work, on the same matrices."""
    import numpy as np

    from nba.policy import forest

    spent = {"seconds": 0.0, "rows": 0, "calls": 0}
    boosters: dict[int, tuple[Any, int | None]] = {}
    compile_forest = forest.compile_forest

    def keep_booster(booster: Any, num_iteration: int | None = None) -> Any:
        compiled = compile_forest(booster, num_iteration)
        boosters[id(compiled)] = (booster, num_iteration)
        return compiled

    def bare_raw(
        self: Any, x: Any, parallel: bool | None = None, vary: tuple[int, ...] | None = None
    ) -> Any:
        booster, rounds = boosters[id(self)]
        t = time.perf_counter()
        out = booster.predict(x, raw_score=True, num_iteration=rounds)
        spent["seconds"] += time.perf_counter() - t
        spent["rows"] += len(x)
        spent["calls"] += 1
        return np.asarray(out, dtype=float)

    # Before the engine's modules import compile_forest by name.
    forest.compile_forest = keep_booster
    forest.Forest.raw = bare_raw  # type: ignore[method-assign]
    from pipelines.score import score

    score(Path(data), Path(out), fresh=True)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in spent.items()}


STEPS = {
    "world": step_world,
    "train": step_train,
    "profiles": step_profiles,
    "score": step_score,
    "floor": step_floor,
}


def _child(step: str, *args: Any, home: Path | None = None) -> dict[str, Any]:
    code = (
        f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent.parent)!r}); "
        f"from benchmarks.batch_scoring import STEPS; "
        f"print(json.dumps(STEPS[{step!r}](*{list(args)!r})))"
    )
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **({"NBA_HOME": str(home)} if home else {})},
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = round(time.perf_counter() - t, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of full size")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--capacity", default="installment_plan_6m=20000")
    parser.add_argument("--budget", default="retention_gesture=30000")
    args = parser.parse_args()
    big_n = max(2000, int(1_000_000 * args.scale))
    spark_n = max(2000, int(200_000 * args.scale))
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nba-bench-score-"))
    os.environ["NBA_HOME"] = str(work / "home")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; workdir {work}",
        flush=True,
    )
    results: dict[str, Any] = {
        "scale": args.scale,
        "machine": platform.machine(),
        "cores": os.cpu_count(),
    }

    _child("world", DEMO_CUSTOMERS, str(work / "demo"))
    if not (work / "home" / "mlflow.db").is_file():
        trained = _child("train", str(work / "demo"))
        print(f"demo model trained and registered ({trained['wall_s']} s)", flush=True)

    # 1M: local runner, floor, allocation.
    big = str(work / "big")
    made = _child("world", big_n, big)
    profiles = _child("profiles", big)
    print(
        f"{big_n:,} customers simulated ({made.get('seconds', 'reused')} s), profiles built "
        f"({profiles['seconds']} s)",
        flush=True,
    )
    local = _child("score", big, str(work / "big-recs.parquet"), "local", [], [])
    floor = _child("floor", big, str(work / "big-floor.parquet"))
    ratio = local["seconds"] / max(floor["seconds"], 1e-9)
    print(
        f"local runner, {local['contacts']:,} contacts -> {local['rows']:,} recommendations: "
        f"{local['seconds']} s in score(), {local['wall_s']} s end to end, peak "
        f"{local['peak_mb']:,} MB  targets <= 60 s, <= 4096 MB\n"
        f"floor (LightGBM predict over the same {floor['rows']:,} candidate rows, "
        f"{floor['calls']} calls): {floor['seconds']} s; runner / floor = {ratio:.1f}x",
        flush=True,
    )
    allocated = _child(
        "score", big, str(work / "big-alloc.parquet"), "local", [args.capacity], [args.budget]
    )
    a = allocated["allocation"]
    print(
        f"allocation with --capacity {args.capacity} --budget {args.budget}: "
        f"{a['seconds']} s for the allocation ({a['iterations']} cutting planes), "
        f"{allocated['seconds']} s for the whole scoring job  target <= 120 s\n"
        f"  value {a['value']:,} vs greedy {a['greedy_value']:,} "
        f"({(a['value'] / max(a['greedy_value'], 1) - 1):+.1%}); LP bound {a['lp_bound']:,};"
        f" without limits {a['top1_value']:,}",
        flush=True,
    )
    results.update(local=local, floor=floor, ratio=round(ratio, 2), allocation=allocated)

    # 200k: local vs Spark local[2] on the same data.
    # Its own workspace, so that the 1M profiles stay built: the registry and the model's
    # artifacts are copied (a workspace points its registry at its own artifacts).
    mid, mid_home = str(work / "mid"), work / "home-mid"
    mid_home.mkdir(exist_ok=True)
    shutil.copy(work / "home" / "mlflow.db", mid_home / "mlflow.db")
    shutil.copytree(work / "home" / "mlartifacts", mid_home / "mlartifacts", dirs_exist_ok=True)
    _child("world", spark_n, mid)
    _child("profiles", mid, home=mid_home)
    mid_local = _child(
        "score", mid, str(work / "mid-local.parquet"), "local", [], [], home=mid_home
    )
    mid_spark = _child(
        "score", mid, str(work / "mid-spark.parquet"), "spark", [], [], home=mid_home
    )
    spark_ratio = mid_spark["seconds"] / max(mid_local["seconds"], 1e-9)
    print(
        f"{mid_local['contacts']:,} contacts: local runner {mid_local['seconds']} s, "
        f"Spark local[2] {mid_spark['seconds']} s (incl. starting Spark); "
        f"Spark / local = {spark_ratio:.1f}x",
        flush=True,
    )
    results.update(mid_local=mid_local, mid_spark=mid_spark, spark_ratio=round(spark_ratio, 2))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / f"batch_scoring-{args.scale:g}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
