"""Which learner of "what an action changes" ranks best? Measured against the simulator.

For each simulated world (size and seed), one response model is trained as ``nba train``
does; then each learner of Δ(a) is fitted on the same logged decisions and the policy
P(accept) x (value - cost) + Δ(a) is scored on the held-out contacts against the oracle:

- ``action``: an S-learner over actions (one LightGBM on profile, contact and action,
  nothing included; Δ = prediction with the action - prediction with nothing), on the
  decisions that lived their horizon;
- ``branch``: the engine's learner (:mod:`nba.policy.uplift`): one LightGBM on profile,
  contact and what followed (each family's action accepted or not, or nothing), combined
  with the calibrated acceptance probability, on the decisions that lived their horizon;
- ``branch-ipcw``: the same on every decision, censored ones with per-period censoring
  weights (:meth:`nba.outcomes.LongTermOutcomes.kept_share_estimate`);
- ``none``: no Δ at all (the acceptance ranking, ``objective: acceptance``).

Usage: ``python benchmarks/uplift_learners.py [--customers 25000] [--seeds 42 7]``.
Prints one row per world and learner.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from nba.catalog import Catalog


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[25_000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7])
    parser.add_argument("--months", type=int, default=12)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nba-uplift-bench-"))
    os.environ["NBA_HOME"] = str(work / "home")
    print("customers  seed  learner  normalised  nothing%  oracle nothing%  fit s")
    for customers in args.customers:
        for seed in args.seeds:
            for row in run_world(work / f"w{customers}-{seed}", customers, seed, args.months):
                print(
                    f"{customers:>9,}  {seed:>4}  {row[0]:<7}  {row[1]:>10.3f}  "
                    f"{row[2]:>8.1%}  {row[3]:>15.1%}  {row[4]:>5.1f}"
                )


def run_world(
    data: Path, customers: int, seed: int, months: int
) -> list[tuple[str, float, float, float, float]]:
    from nba.catalog import load_catalog
    from nba.config import get_settings
    from nba.contract import load_dataset
    from nba.inputs import policy_input
    from nba.outcomes import long_term_outcomes
    from nba.policy.evaluation import evaluate_against_truth
    from nba.policy.frames import contacts_from_frame
    from nba.policy.policy import Policy
    from nba.policy.response import ResponseModel
    from nba.policy.uplift import FEES_COLUMN, UpliftModel
    from nba.simulate import SimulationConfig, simulate_world, write_world
    from pipelines.features import build_features
    from pipelines.train import SPLITS, branch_design, design, fit_uplift, training_frame

    config = SimulationConfig(customers=customers, seed=seed, months=months)
    catalog = load_catalog()
    write_world(simulate_world(config, catalog), data, config, catalog.source)
    build_features(data, online=False)
    ds = load_dataset(data)
    frame = training_frame(ds, get_settings())
    x, y, shown = design(frame, catalog)
    n = len(frame)
    a, b, c = (int(n * q) for q in SPLITS)
    sa, sb, sc = (np.flatnonzero(shown[lo:hi]) + lo for lo, hi in ((0, a), (a, b), (b, c)))
    model = ResponseModel().fit(
        x[sa], y[sa], x[sb], y[sb], x[sc], y[sc], [act.family for act in catalog.actions]
    )
    outcomes = long_term_outcomes(ds, catalog.horizon_days)
    contacts = ds.con.sql("SELECT * FROM contacts ORDER BY contact_id").df()
    held = policy_input(ds, contacts)
    batch = contacts_from_frame(held, catalog)
    truth = pd.read_parquet(data / "truth" / "expected_value.parquet")
    plain = Policy(catalog, model)
    p = plain.score(batch).propensity
    k = len(catalog.actions)
    results = []

    def judge(name: str, change: np.ndarray | None, seconds: float) -> None:
        scores = plain._arbitrate(batch, p.copy(), change)
        ev = evaluate_against_truth(
            scores, catalog, held["contact_id"].tolist(), truth, batch.profile_x
        )
        results.append(
            (
                name,
                ev.normalised["nba"],
                ev.nothing_share["nba"],
                ev.nothing_share["oracle"],
                seconds,
            )
        )

    judge("none", None, 0.0)
    xb = branch_design(frame, catalog)
    t = time.perf_counter()
    branch = fit_uplift(xb, frame, outcomes, 0)
    fitted = time.perf_counter() - t
    judge("branch", Policy(catalog, model, uplift=branch).score(batch).change, fitted)

    # The same learner on every decision, censored ones with per-period censoring weights.
    t = time.perf_counter()
    at = np.searchsorted(outcomes.decision_id, frame["decision_id"].to_numpy(dtype=object))
    label = outcomes.kept_share_estimate()[at]
    stake = outcomes.fees[at] > 0
    tr, va = np.flatnonzero(stake[:b]), b + np.flatnonzero(stake[b:c])
    weighted = UpliftModel().fit(xb[tr], label[tr], xb[va], label[va], outcomes.horizon_months)
    fitted = time.perf_counter() - t
    judge("branch-ipcw", Policy(catalog, model, uplift=weighted).score(batch).change, fitted)

    t = time.perf_counter()
    index = {act: j for j, act in enumerate(catalog.ids)} | {"no_action": k}
    actions = np.array([index[act] for act in frame["action_id"]])
    ch, rs = _codes(frame)
    s_model = fit_uplift(
        _action_rows(_profiles(frame), ch, rs, catalog, actions, None), frame, outcomes, 0
    )
    fitted = time.perf_counter() - t
    ch, rs = _codes(held)
    nh = len(held)
    px = batch.profile_x
    every = _action_rows(
        px, ch, rs, catalog, np.tile(np.arange(k), nh), np.repeat(np.arange(nh), k)
    )
    nothing = _action_rows(px, ch, rs, catalog, np.full(nh, k), np.arange(nh))
    stake = np.nan_to_num(px[:, FEES_COLUMN]) * s_model.horizon_months_
    change = stake[:, None] * (
        s_model.kept_share(every).reshape(nh, k) - s_model.kept_share(nothing)[:, None]
    )
    judge("action", change, fitted)
    ds.close()
    return results


def _action_rows(
    px: np.ndarray,
    channels: np.ndarray,
    reasons: np.ndarray,
    catalog: Catalog,
    action_index: np.ndarray,
    contact_index: np.ndarray | None,
) -> np.ndarray:
    """The S-learner's rows: candidate rows where action ``len(catalog.actions)`` is
    nothing (with its own family code)."""
    from nba.policy import design

    family = np.array(
        [*(design.FAMILIES.index(a.family) for a in catalog.actions), design.NOTHING_FAMILY]
    )
    return design._rows(
        px,
        channels,
        reasons,
        len(catalog.actions) + 1,
        family,
        design.FAMILIES.index(design.MONOTONE_FAMILY),
        action_index,
        contact_index,
        None,
    )


def _profiles(frame: pd.DataFrame) -> np.ndarray:
    from nba.policy.design import profile_matrix
    from nba.profiles import NUMERIC_FEATURE_NAMES

    return profile_matrix({c: frame[c].to_numpy() for c in NUMERIC_FEATURE_NAMES}, len(frame))


def _codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from nba.policy.design import channel_codes, reason_codes

    return channel_codes(frame["channel"].tolist()), reason_codes(frame["reason"].tolist())


if __name__ == "__main__":
    main()
