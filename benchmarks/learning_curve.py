"""Learning curve: how good is the policy after a few thousand logged decisions, and after
half a million? The engine's response model against the one it replaced.

For each size, a world is simulated with about that many logged decisions (customers =
decisions / 4.3 over 12 months; the seed differs from the demo's), its profiles built
through Feast, and two response models fitted on the same time-ordered slices, as
``nba train`` does:

- ``per-family``: the model before pooling: one LightGBM per action family, and a flat
  prior for every action of a family with fewer than 200 rows in a slice, on the fixed
  72/10/9/9% time slices;
- ``engine``: the engine's model (:class:`nba.policy.response.ResponseModel`): one LightGBM
  per family where the family has enough rows, and a penalised logistic regression
  (:mod:`nba.policy.linear`) for the families that have not and for the rarely tried
  actions of the others, on slices that keep 200 decisions each below 2,222 decisions
  (:func:`pipelines.train.split_points`).

AUC is measured on the same newest rows for both, which neither model has seen (at 2,222
decisions and above the cuts are the same).

Both rank with the same learnt Δ (what an action changes), when the data can teach it. A
third row, ``true rates``, ranks with that Δ and the simulator's true acceptance
probabilities: the most any acceptance model could add at that size. A fourth,
``acceptance``, is the engine's model ranking by chance of a yes x value alone (the
catalog's ``objective: acceptance``): what the learnt Δ is worth at that size.
Printed per size and model: the decisions, actions left on a prior, test-period AUC, and
the normalised value against the simulator's oracle on the held-out contacts (1 = the
oracle, 0 = presenting nothing).

Usage: ``python benchmarks/learning_curve.py [--decisions 2000 5000 ...] [--seeds 11]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.truth_models import TrueRates  # noqa: E402

DECISIONS_PER_CUSTOMER_YEAR = 4.3
SIZES = (2_000, 5_000, 10_000, 25_000, 100_000, 500_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[11])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nba-curve-bench-"))
    os.environ["NBA_HOME"] = str(work / "home")
    print(
        "target   decisions  seed  model       on prior  AUC    normalised  fit s",
        flush=True,
    )
    for size in args.decisions:
        for seed in args.seeds:
            for row in run_world(work / f"w{size}-{seed}", size, seed):
                print(
                    f"{size:>7,}  {row['decisions']:>9,}  {seed:>4}  {row['model']:<10}  "
                    f"{row['priors']:>8}  {row['auc']:.3f}  {row['normalised']:>10.3f}  "
                    f"{row['seconds']:>5.1f}",
                    flush=True,
                )


def run_world(data: Path, size: int, seed: int) -> list[dict[str, float | int | str]]:
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from nba.catalog import load_catalog
    from nba.config import get_settings
    from nba.contract import load_dataset
    from nba.inputs import policy_input
    from nba.outcomes import long_term_outcomes
    from nba.policy.evaluation import evaluate_against_truth, truth_matrix
    from nba.policy.frames import contacts_from_frame
    from nba.policy.policy import Policy
    from nba.policy.response import ResponseModel
    from nba.simulate import SimulationConfig, simulate_world, write_world
    from pipelines.features import build_features
    from pipelines.train import (
        SPLITS,
        branch_design,
        design,
        fit_uplift,
        split_points,
        training_frame,
        value_objective,
    )

    # Feast adds warning filters on import: route warnings to a silent logger instead.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(logging.NullHandler())
    logging.getLogger("py.warnings").propagate = False
    customers = max(50, round(size / DECISIONS_PER_CUSTOMER_YEAR))
    config = SimulationConfig(customers=customers, seed=seed)
    catalog = load_catalog()
    write_world(simulate_world(config, catalog), data, config, catalog.source)
    build_features(data, online=False)
    ds = load_dataset(data)
    frame = training_frame(ds, get_settings())
    frame["family"] = frame["action_id"].map(catalog.family_of)
    x, y, shown = design(frame, catalog)
    n = len(frame)
    outcomes = long_term_outcomes(ds, catalog.horizon_days)
    incremental, _ = value_objective(catalog, frame, outcomes)
    uplift = fit_uplift(branch_design(frame, catalog), frame, outcomes, 0) if incremental else None
    contacts = ds.con.sql("SELECT * FROM contacts ORDER BY contact_id").df()
    held = policy_input(ds, contacts)
    batch = contacts_from_frame(held, catalog)
    truth = pd.read_parquet(data / "truth" / "expected_value.parquet")
    families = [act.family for act in catalog.actions]
    rows: list[dict[str, float | int | str]] = []
    before = tuple(int(n * q) for q in SPLITS)  # the cuts before they adapted to small logs
    newest = max(before[2], split_points(n)[2])  # no model has seen these rows
    test = np.flatnonzero(shown[newest:]) + newest
    for name, linear, (a, b, c) in (
        ("per-family", False, before),
        ("engine", True, split_points(n)),
    ):
        sa, sb, sc = (np.flatnonzero(shown[lo:hi]) + lo for lo, hi in ((0, a), (a, b), (b, c)))
        t = time.perf_counter()
        model = ResponseModel(linear=linear).fit(
            x[sa], y[sa], x[sb], y[sb], x[sc], y[sc], families
        )
        seconds = time.perf_counter() - t
        scores = Policy(catalog, model, uplift=uplift).score(batch)
        ev = evaluate_against_truth(
            scores, catalog, held["contact_id"].tolist(), truth, batch.profile_x
        )
        rows.append(
            {
                "model": name,
                "decisions": n,
                "priors": sum(e.uses_prior for e in model.evidence_),
                "auc": float(roc_auc_score(y[test], model.predict_proba(x[test]))),
                "normalised": ev.normalised["nba"],
                "seconds": seconds,
            }
        )
    ids = held["contact_id"].tolist()
    if uplift is not None:
        scores = Policy(catalog, model, uplift=None).score(batch)
        ev = evaluate_against_truth(scores, catalog, ids, truth, batch.profile_x)
        rows.append(rows[-1] | {"model": "acceptance", "normalised": ev.normalised["nba"]})
    true_p = np.nan_to_num(truth_matrix(truth, ids, list(catalog.ids), "p_accept").astype(float))
    as_model = cast(ResponseModel, TrueRates(true_p, model.prior_rates()))
    scores = Policy(catalog, as_model, uplift=uplift).score(batch)
    ev = evaluate_against_truth(scores, catalog, ids, truth, batch.profile_x)
    rows.append(
        {
            "model": "true rates",
            "decisions": n,
            "priors": 0,
            "auc": float("nan"),
            "normalised": ev.normalised["nba"],
            "seconds": 0.0,
        }
    )
    ds.close()
    return rows


if __name__ == "__main__":
    main()
