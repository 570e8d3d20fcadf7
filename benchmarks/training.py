"""Benchmark of training: the full `nba train` on about 1M logged decisions.

    python benchmarks/training.py                # ~200k customers x 12 months -> ~1M decisions
    python benchmarks/training.py --customers 20000

Steps timed inside `nba train`: the training set through Feast's point-in-time
`get_historical_features`, the LightGBM fit (with early stopping and refit), evaluation,
and MLflow logging/registration. The floor is a bare LightGBM fit per family, of the same
number of rounds on the same rows, without early stopping, refit, calibration or tracking.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data and profiles already in --workdir"
    )
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="nba-train-bench-"))
    os.environ["NBA_HOME"] = str(work / "home")

    import lightgbm as lgb
    import numpy as np

    from nba.catalog import load_catalog
    from nba.config import get_settings
    from nba.simulate import SimulationConfig, simulate_world, write_world
    from pipelines.features import build_features
    from pipelines.train import SPLITS, branch_design, design, train, training_frame

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; workdir {work}"
    )
    config = SimulationConfig(customers=args.customers, seed=3)
    catalog = load_catalog()
    if not (args.reuse and (work / "data" / "decisions.parquet").is_file()):
        t = time.perf_counter()
        write_world(simulate_world(config, catalog), work / "data", config, catalog.source)
        print(f"simulated {args.customers:,} customers in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        build_features(work / "data", online=False)
        print(f"profiles + feast apply in {time.perf_counter() - t:.0f} s")

    t = time.perf_counter()
    report = train(work / "data")
    total = time.perf_counter() - t
    print(f"nba train on {report.n_decisions:,} decisions: {total:.1f} s  target <= 180 s")
    for step, secs in report.seconds.items():
        print(f"  {step}: {secs:.1f} s")
    print(
        f"  normalised value {report.metrics.get('normalised_value_nba', float('nan')):.3f},"
        f" AUC {report.metrics['auc']:.3f}, rounds {report.metrics['best_iteration']:.0f}"
    )

    # Floor: bare LightGBM fits per family, same rounds, same training rows.
    from nba.contract import load_dataset
    from nba.outcomes import long_term_outcomes
    from nba.policy.design import MODEL_COLUMNS
    from nba.policy.response import ResponseModel
    from nba.policy.uplift import UpliftModel
    from nba.vocabulary import FAMILIES

    ds = load_dataset(work / "data")
    frame = training_frame(ds, get_settings())
    x, y, shown = design(frame, ds.catalog)
    outcomes = long_term_outcomes(ds, ds.catalog.horizon_days)
    catalog = ds.catalog
    ds.close()
    a = int(len(frame) * SPLITS[0])
    params = ResponseModel().params()
    family = x[:a, MODEL_COLUMNS.index("ctx_family")]
    t = time.perf_counter()
    for code, name in enumerate(FAMILIES):
        rounds = int(report.metrics.get(f"rounds_{name}", 0))
        if rounds:
            rows = (family == code) & shown[:a]
            lgb.train(params, lgb.Dataset(x[:a][rows], y[:a][rows]), num_boost_round=rounds)
    uplift_rounds = int(report.metrics.get("uplift_rounds", 0))
    if uplift_rounds:
        at = np.searchsorted(outcomes.decision_id, frame["decision_id"].to_numpy(dtype=object))
        usable = outcomes.full_horizon[at] & (outcomes.fees[at] > 0)
        lgb.train(
            UpliftModel().params(),
            lgb.Dataset(branch_design(frame, catalog)[usable], outcomes.kept_share()[at][usable]),
            num_boost_round=uplift_rounds,
        )
    floor = time.perf_counter() - t
    print(
        f"floor: bare LightGBM fits (response and uplift), same rows and rounds: {floor:.1f} s; "
        f"train / floor = {total / floor:.1f}x, fit / floor = "
        f"{report.seconds['fit'] / floor:.1f}x"
    )


if __name__ == "__main__":
    main()
