"""How far can a model of the profile go? The NBA against parts of the simulator's truth.

Run on a trained workspace (after ``make demo``). The champion's normalised value on the
held-out contacts is compared with rankings where one part is replaced by the simulator's
truth, and with models fitted *directly to that truth* from what the engine sees (the
profile, the channel, the contact's reason and the action):

- ``engine``: the champion, as ``nba train`` measures it;
- ``true acceptance``: the learnt Δ (what an action changes) with the simulator's true
  chance of a yes;
- ``true change``: the engine's chance of a yes with the simulator's true change in revenue;
- ``acceptance fitted to truth``: the learnt Δ with a LightGBM fitted to the true chance
  of a yes of the other held-out contacts (5-fold cross-fit by contact). Its labels have
  no noise: it is about the best an acceptance model of the profile can learn from that
  many contacts;
- ``value fitted to truth``: the same for each action's whole value (immediate value plus
  change in revenue, against nothing): about the best any model of the profile can learn;
- the two fitted rows again with the simulator's hidden traits (stress, dissatisfaction,
  needs, digital affinity) added to the profile: what the world keeps out of sight.

Also printed: how much of each hidden trait the profile explains (cross-validated R²).
Every policy chooses within the contact policy, as in ``nba train``'s table.

Usage: ``python benchmarks/value_ceiling.py [--home .nba] [--data .nba/demo-data]
[--folds 5]``; ``--data`` may be another simulated world with truth (its profiles built
by ``nba features build --data DIR --no-register``), scored with the workspace's champion.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.truth_models import TrueRates  # noqa: E402

# The best of the settings tried for the fit to the truth on the default world (7, 31 and
# 127 leaves; 0.02 and 0.05 learning rates): larger trees came closer to the oracle.
ROUNDS = 800
PARAMS = {
    "learning_rate": 0.05,
    "num_leaves": 127,
    "min_data_in_leaf": 10,
    "num_threads": os.cpu_count() or 1,
    "verbose": -1,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=ROOT / ".nba", help="workspace (NBA_HOME)")
    parser.add_argument("--data", type=Path, help="world with truth (default: HOME/demo-data)")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    data = args.data or args.home / "demo-data"
    if not (data / "truth" / "expected_value.parquet").is_file():
        print(f"{data} has no simulator truth: run `make demo` or `nba simulate` first")
        raise SystemExit(2)
    if not (args.home / "mlflow.db").is_file():  # resolving would create an empty registry
        print(f"{args.home} holds no trained workspace: run `make demo` or `nba train` first")
        raise SystemExit(2)
    os.environ["NBA_HOME"] = str(args.home.resolve())
    # Feast adds warning filters on import: route warnings to a silent logger instead.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(logging.NullHandler())
    logging.getLogger("py.warnings").propagate = False
    from nba.exceptions import NBAError

    try:
        run(data, args.folds)
    except NBAError as exc:  # no champion in the workspace, an unreadable world
        print(exc)
        raise SystemExit(2) from None


def run(data: Path, folds: int) -> None:
    import pandas as pd

    from nba.catalog import NO_ACTION
    from nba.contract import load_dataset
    from nba.inputs import policy_input
    from nba.policy.arbitration import OK, RULE_NOT_WORTH_IT
    from nba.policy.evaluation import evaluate_against_truth, truth_matrix
    from nba.policy.frames import contacts_from_frame
    from nba.policy.policy import Policy, Scores
    from nba.tracking import load_policy, resolve

    started = time.perf_counter()
    policy = load_policy(resolve())
    catalog = policy.catalog
    ds = load_dataset(data)
    contacts = ds.con.sql("SELECT * FROM contacts ORDER BY contact_id").df()
    frame = policy_input(ds, contacts)
    ds.close()
    batch = contacts_from_frame(frame, catalog)
    truth = pd.read_parquet(data / "truth" / "expected_value.parquet")
    ids = frame["contact_id"].tolist()
    n, k = len(ids), len(catalog.actions)
    every = [*catalog.ids, NO_ACTION]
    total = truth_matrix(truth, ids, every, "expected_total").astype(float)
    revenue = truth_matrix(truth, ids, every, "expected_revenue").astype(float)
    true_p = np.nan_to_num(truth_matrix(truth, ids, list(catalog.ids), "p_accept").astype(float))
    hidden = pd.read_parquet(data / "truth" / "latent.parquet").set_index("customer_id")
    hidden = hidden.drop(columns="churned_at").reindex(frame["customer_id"])
    engine = policy.score(batch)
    print(
        f"{n:,} held-out contacts, {k} actions; champion scored in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    print(f"{'ranking':<58} normalised  nothing", flush=True)

    def report(label: str, scores: Scores) -> None:
        ev = evaluate_against_truth(scores, catalog, ids, truth, batch.profile_x)
        print(
            f"{label:<58} {ev.normalised['nba']:>10.3f}  {ev.nothing_share['nba']:>6.1%}",
            flush=True,
        )

    def ranked_by(priority: np.ndarray) -> Scores:
        """The engine's scores with another priority: every action the engine's screens
        let through (worth it or not) is open, and nothing is chosen where none is above 0."""
        status = engine.status.copy()
        open_ = (status == OK) | (status == RULE_NOT_WORTH_IT)
        priority = np.nan_to_num(priority, nan=-np.inf)
        status[open_] = np.where(priority[open_] > 0, OK, RULE_NOT_WORTH_IT)
        return replace(engine, priority=priority, status=status)

    def with_rates(p: np.ndarray) -> Scores:
        model: Any = TrueRates(p, policy.model.prior_rates())
        return Policy(catalog, model, uplift=policy.uplift).score(batch)

    report("engine", engine)
    report("oracle (sanity check: must be 1.000)", ranked_by(total[:, :k] - total[:, [k]]))
    report("true acceptance, learnt change", with_rates(true_p))
    true_change = revenue[:, :k] - revenue[:, [k]]
    report(
        "engine acceptance, true change",
        ranked_by(engine.propensity * engine.net_value + true_change),
    )

    x = batch.profile_x
    codes = np.column_stack(
        [pd.factorize(frame["channel"])[0], pd.factorize(frame["reason"])[0]]
    ).astype(float)
    who, act = np.divmod(np.arange(n * k), k)
    fold = np.random.default_rng(0).integers(0, folds, n)
    value = (total[:, :k] - total[:, [k]]).ravel()
    for label, extra in (("", None), (" + hidden traits", hidden.to_numpy(float))):
        cols = [x, codes] if extra is None else [x, codes, extra]
        design = np.hstack([np.hstack(cols)[who], act[:, None].astype(float)])
        fitted_p = cross_fit(design, true_p.ravel(), fold[who], "cross_entropy", x.shape[1])
        report(
            f"acceptance fitted to truth{label}, learnt change", with_rates(fitted_p.reshape(n, k))
        )
        fitted_v = cross_fit(design, value, fold[who], "regression", x.shape[1])
        report(f"value fitted to truth{label}", ranked_by(fitted_v.reshape(n, k)))

    print("share of each hidden trait the profile explains (cross-validated R²):", flush=True)
    for name in hidden.columns:
        trait = hidden[name].to_numpy(float)
        guess = cross_fit(x, trait, fold, "regression", None)
        print(f"  {name:<24} {1 - np.var(trait - guess) / np.var(trait):.3f}", flush=True)
    print(f"done in {time.perf_counter() - started:.0f} s", flush=True)


def cross_fit(
    x: np.ndarray, y: np.ndarray, fold: np.ndarray, objective: str, codes_at: int | None
) -> np.ndarray:
    """Out-of-fold LightGBM predictions of ``y`` (rows without a label are not fitted);
    ``codes_at``: the first of the channel, reason and action columns (categorical)."""
    import lightgbm as lgb

    cats = [] if codes_at is None else [codes_at, codes_at + 1, x.shape[1] - 1]
    known = ~np.isnan(y)
    out = np.full(len(y), np.nan)
    for f in np.unique(fold):
        train = known & (fold != f)
        data = lgb.Dataset(x[train], y[train], categorical_feature=cats)
        model = lgb.train({**PARAMS, "objective": objective}, data, num_boost_round=ROUNDS)
        out[fold == f] = model.predict(x[fold == f])
    return out


if __name__ == "__main__":
    main()
