"""False promotions: how often does the sequential gate ever promote a challenger that is
not better, when it looks after every round?

Per seed, a world is simulated (a random logging policy, then held-out contacts with
ground truth), the champion is trained on its log, and two challengers that are not
better are made:

- ``same``: trained on the same data with another seed (as good as the champion, give
  or take what the seed changes; its true gain is measured and reported);
- ``worse``: trained on the same decisions with acceptance inverted (it prefers what
  customers refuse).

Each challenger is then served to its share of customers (``--challenger-share``, the
champion answering the rest, the control group random) over ``--looks`` rounds of
``--weeks-per-round`` weeks, and the gate looks after every round at all the decisions
logged so far. Policies do not change while a challenger is judged, so the looks are
the prefixes of one log, replayed in order (the policy's contact history is that of the
world before the rounds, the same for both arms).

Printed per run: the challenger's true gain on never-served contacts, the decisions at
the last look, the look of the gate's verdict and the verdict, and whether a fixed 95%
interval (DR, normal approximation) looked at as often would ever have promoted. Then
the share of runs that ever promoted, with a 95% Wilson interval, for DR (the gate's
evidence) and for the arm comparison, and each evidence's mean half-width at the last
look (narrower: more power).

The ground truth's long-term revenue is a Monte Carlo mean over ``--rollouts`` futures
per contact and action (50 here against the simulator's 200, for speed: it is the
reward both policies are judged by, and the true gain's error is about 2x the default).

Usage: ``python benchmarks/false_promotion.py [--seeds 20] [--customers 5000]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from nba.config import Settings
    from pipelines.evaluate import Comparison


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def main() -> None:
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="worlds (seeds 101, 102, ...)")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--months", type=int, default=9)
    parser.add_argument("--looks", type=int, default=8)
    parser.add_argument("--weeks-per-round", type=int, default=2)
    parser.add_argument("--challenger-share", type=float, default=0.2)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument("--explain", action="store_true", help="decompose DR's gain")
    parser.add_argument(
        "--rollouts", type=int, default=50, help="Monte Carlo rollouts of the ground truth"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nba-false-promotion-"))
    print(
        f"{args.seeds} seeds x {args.looks} looks, {args.customers:,} customers, "
        f"{args.weeks_per_round} weeks per look, challenger share {args.challenger_share:g}, "
        f"alpha {args.alpha:g}",
        flush=True,
    )
    print(
        "seed  challenger  true gain  decisions  DR verdict (look)  arms verdict (look)  "
        "fixed-95% ever  DR half-width  arms half-width  s",
        flush=True,
    )
    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for row in run_world(work / f"seed{seed}", seed, args):
            rows.append(row)
            print(
                f"{seed:>4}  {row['kind']:<10}  {row['true_gain']:>+9.4f}  "
                f"{row['decisions']:>9,}  {row['dr']:>9} ({row['dr_look']})  "
                f"{row['arms']:>11} ({row['arms_look']})  {row['fixed']!s:>14}  "
                f"{row['dr_width']:>13.2f}  {row['arms_width']:>15.2f}  {row['seconds']:>4.0f}",
                flush=True,
            )
        shutil.rmtree(work / f"seed{seed}", ignore_errors=True)
    print()
    for kind in ("same", "worse", "all"):
        part = [r for r in rows if kind == "all" or r["kind"] == kind]
        not_better = [r for r in part if r["true_gain"] <= 0]
        for evidence in ("dr", "arms", "fixed"):
            ever = sum(r[evidence] in ("promote", True) for r in part)
            false = sum(r[evidence] in ("promote", True) for r in not_better)
            low, high = wilson(ever, len(part))
            print(
                f"{kind:<5} {evidence:<5}: ever promoted {ever}/{len(part)} = "
                f"{ever / max(len(part), 1):.1%} [95% {low:.1%}, {high:.1%}]; "
                f"of the {len(not_better)} truly not better: {false}",
                flush=True,
            )
    for evidence in ("dr", "arms"):
        widths = [r[f"{evidence}_width"] for r in rows if math.isfinite(r[f"{evidence}_width"])]
        mean = sum(widths) / max(len(widths), 1)
        print(f"mean half-width at the last look, {evidence}: {mean:.2f} per decision")


def run_world(home: Path, seed: int, args: argparse.Namespace) -> list[dict]:
    import numpy as np
    import pandas as pd

    from nba.config import Settings, get_settings
    from nba.decision_log import DecisionLog
    from nba.policy.exploration import Exploration
    from nba.tracking import CHALLENGER, set_alias
    from pipelines.evaluate import Gate, compare_policies, gate_sequences, gate_verdict
    from pipelines.features import build_features
    from pipelines.loop import loop_world, true_value
    from pipelines.loop_serving import _policy_input, held_out_slices, model_ref, serve_round
    from pipelines.retrain import refresh
    from pipelines.simulate import run_simulation
    from pipelines.train import train

    os.environ["NBA_HOME"] = str(home / "home")
    get_settings.cache_clear()
    s = get_settings()
    out = home / "world"
    config = loop_world(args.customers, args.looks + 1, args.weeks_per_round, seed, args.months)
    config = dataclasses.replace(config, rollouts=args.rollouts)
    config.validate()
    setup = time.perf_counter()
    run_simulation(config, out)
    build_features(out, s, online=False)
    champion = train(out, s, seed=seed).version
    same = train(out, s, seed=seed + 1000).version
    worse = _train_inverted(out, home / "inverted", s, seed)
    build_features(out, s, online=False)  # the real data's profiles again
    setup = time.perf_counter() - setup

    truth = pd.read_parquet(out / "truth" / "expected_value.parquet")
    _, slices = held_out_slices(out, s, args.weeks_per_round, args.looks + 1)
    served, held = pd.concat(slices[:-1]), slices[-1]
    cuts = [
        np.datetime64(pd.Timestamp(p["timestamp"].max()).tz_localize(None)) for p in slices[:-1]
    ]
    held_out = _policy_input(out, held)
    held_truth = truth[truth["contact_id"].isin(set(held_out["contact_id"]))]
    truth = truth.set_index(["contact_id", "action_id"])
    from nba.tracking import load_policy

    base = true_value(load_policy(model_ref(champion)), held_out, held_truth).values["nba"]
    gate = Gate(alpha=args.alpha, max_looks=args.looks)
    rows = []
    for kind, version in (("same", same), ("worse", worse)):
        began = time.perf_counter()
        log_url = f"sqlite:///{home / f'log-{kind}.db'}"
        ks = Settings(home=s.home_dir, decision_log_url=log_url)
        exploration = Exploration(
            "epsilon", epsilon=0.3, control_share=0.1, challenger_share=args.challenger_share
        )
        log = DecisionLog(log_url)
        log.start()
        long_term: dict[str, float] = {}
        try:
            serve_round(out, served, truth, exploration, log, np.random.default_rng(seed),
                        model_ref(version), long_term)  # fmt: skip
        finally:
            log.close()
        merged, _, _ = refresh(out, ks)
        set_alias(CHALLENGER, version, ks)
        since = pd.Timestamp(served["timestamp"].min()).to_pydatetime()
        c = compare_policies(
            merged, ks, since=since - pd.Timedelta(microseconds=1), long_term=long_term
        )
        gain = true_value(load_policy(model_ref(version)), held_out, held_truth).values["nba"]
        row = {"kind": kind, "true_gain": gain - base, "decisions": c.n_rounds,
               "seconds": time.perf_counter() - began + setup / 2}  # fmt: skip
        for evidence in ("dr", "arms"):
            g = Gate(alpha=args.alpha, max_looks=args.looks, evidence=evidence)
            row[evidence], row[f"{evidence}_look"] = "continue", args.looks
            for look, cut in enumerate(cuts, start=1):
                verdict = gate_verdict(c, g, gate_sequences(c, g, cut), look)
                if verdict != "continue":
                    row[evidence], row[f"{evidence}_look"] = verdict, look
                    break
            last = gate_sequences(c, gate).get(evidence)
            row[f"{evidence}_width"] = (last.high - last.low) / 2 if last else math.nan
        row["fixed"] = any(_fixed_low(c.gain_terms[c.times <= cut]) > 0 for cut in cuts)
        if args.explain:
            _explain(kind, c)
        rows.append(row)
    return rows


def _explain(kind: str, c: Comparison) -> None:
    """Where the DR gain comes from: decisions where a policy chooses nothing (no logged
    decision shows nothing, so there DR is the reward model's guess) and the rest."""
    new_nothing = c.choice["challenger"] < 0
    old_nothing = c.choice["champion"] < 0
    for name, rows in (
        ("challenger says nothing", new_nothing & ~old_nothing),
        ("champion says nothing", old_nothing & ~new_nothing),
        ("both show an action", ~new_nothing & ~old_nothing),
        ("both say nothing", new_nothing & old_nothing),
    ):
        part = c.gain_terms[rows]
        mean = part.mean() if len(part) else float("nan")
        print(f"    {kind}: {name}: {rows.mean():.1%} of decisions, mean DR gain {mean:+.2f}, "
              f"contributes {part.sum() / len(c.gain_terms):+.2f}", flush=True)  # fmt: skip


def _fixed_low(terms: np.ndarray) -> float:
    """The lower end of a plain 95% interval (normal approximation) at one look."""
    n = len(terms)
    if n < 2:
        return -math.inf
    return float(terms.mean() - 1.96 * terms.std(ddof=1) / math.sqrt(n))


def _train_inverted(world: Path, copy: Path, s: Settings, seed: int) -> str:
    """A model trained on the same decisions with acceptance inverted: it prefers what
    customers refuse, so it must lose to the champion."""
    import numpy as np
    import pandas as pd

    from pipelines.features import build_features
    from pipelines.train import train

    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("truth"))
    decisions = pd.read_parquet(copy / "decisions.parquet")
    accepted = decisions["outcome"] == "accepted"
    presented = decisions["action_id"] != "no_action"
    decisions["outcome"] = np.where(
        presented, np.where(accepted, "declined", "accepted"), decisions["outcome"]
    )
    decisions.to_parquet(copy / "decisions.parquet")
    build_features(copy, s, online=False)
    return train(copy, s, seed=seed).version


if __name__ == "__main__":
    main()
