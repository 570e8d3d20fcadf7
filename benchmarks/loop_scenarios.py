"""The closed loop in a world that changes: ``nba simulate-loop --scenario launch|drift``
over several seeds, with the targets of the learning-loop issue.

Per seed a fresh workspace runs the loop (challenger share 0.2, the sequential gate at
its defaults) and prints the champion's true value per round (normalised: 0 = random
choices, 1 = the oracle). Then, per scenario:

- ``launch``: the champion's gain over round 0 after the last round, the round of the
  first promotion, and, where the oracle would choose the new action, the share of those
  contacts where the champion chooses it; "clear" is a gain of at least ``--margin``;
- ``drift``: the value the drift cost (the champion of the round before, on the drifted
  world) and the share of it won back by the last round;
- ``none``: the champion's gain over round 0.

Usage: ``python benchmarks/loop_scenarios.py --scenario launch [--seeds 1 2 3]
[--customers 25000] [--rounds 6]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.loop import LoopReport


def main() -> None:
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("launch", "drift", "none"), default="launch")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--customers", type=int, default=25_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--weeks-per-round", type=int, default=4)
    parser.add_argument("--drift-round", type=int, default=2)
    parser.add_argument("--margin", type=float, default=0.02)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix=f"nba-loop-{args.scenario}-"))
    print(
        f"scenario {args.scenario}: {args.customers:,} customers, {args.months} months, "
        f"{args.rounds} rounds of {args.weeks_per_round} weeks, seeds {args.seeds}",
        flush=True,
    )
    results = []
    for seed in args.seeds:
        began = time.perf_counter()
        report = run_seed(work / f"seed{seed}", seed, args)
        values = " ".join(f"{r.normalised_value:.3f}" for r in report.rounds)
        marks = " ".join(
            f"r{r.round}:{r.verdict}(v{r.judged})" for r in report.rounds if r.verdict
        )
        print(f"seed {seed}: champion per round {values}", flush=True)
        print(f"  gate: {marks}", flush=True)
        summary = summarise(report, args)
        summary["seconds"] = time.perf_counter() - began
        print("  " + ", ".join(f"{k} {v}" for k, v in summary.items() if k != "ok"), flush=True)
        results.append(summary)
    met = sum(bool(r["ok"]) for r in results)
    print(f"\n{met} of {len(results)} seeds meet the target ({args.scenario})", flush=True)


def run_seed(home: Path, seed: int, args: argparse.Namespace) -> LoopReport:
    from nba.config import get_settings
    from pipelines.loop import simulate_loop
    from pipelines.scenarios import Scenario

    os.environ["NBA_HOME"] = str(home)
    get_settings.cache_clear()
    return simulate_loop(
        args.rounds,
        home / "loop-data",
        customers=args.customers,
        months=args.months,
        weeks_per_round=args.weeks_per_round,
        scenario=Scenario(args.scenario, drift_round=args.drift_round),
        seed=seed,
    )


def summarise(report: LoopReport, args: argparse.Namespace) -> dict[str, object]:
    first, last = report.rounds[0], report.rounds[-1]
    promoted = [r.round for r in report.rounds if r.verdict == "promote"]
    out: dict[str, object] = {
        "first promotion": f"round {promoted[0]}" if promoted else "none",
    }
    gain = last.normalised_value - first.normalised_value
    if args.scenario == "drift":
        before = report.rounds[args.drift_round - 1].normalised_value
        lost = before - (report.value_at_drift or before)
        back = last.normalised_value - (report.value_at_drift or before)
        share = back / lost if lost > 0 else float("nan")
        out.update({"value before": f"{before:.3f}", "lost to the drift": f"{lost:.3f}",
                    "won back": f"{back:.3f} ({share:.0%})"})  # fmt: skip
        out["ok"] = lost > 0 and share >= 0.5
    else:
        out["gain over round 0"] = f"{gain:+.3f}"
        out["ok"] = gain >= args.margin
        if args.scenario == "launch":
            agree = last.new_action_agreement
            out["new action where the oracle picks it"] = (
                f"{first.new_action_agreement or 0:.0%} -> {agree or 0:.0%}"
            )
    return out


if __name__ == "__main__":
    main()
