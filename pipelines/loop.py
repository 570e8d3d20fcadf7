"""The closed learning loop, in simulation: serve -> outcomes -> retrain -> evaluate ->
promote, round after round, with the policy's true value measured each round.

The world is simulated with a uniformly random logging policy (``exploration=1``) and a
long held-out period whose contacts carry the simulator's ground truth (each action's
acceptance probability and expected value under the reactive dynamics). Round 0's
champion is trained on the random log only. Each round then takes the next slice of
held-out contacts and:

1. **serves** them (:mod:`pipelines.loop_serving`): the champion answers most customers,
   the challenger being judged a stable share, the control group gets a random
   candidate, all exploring as the API does, and every answer and its outcome, drawn
   from the ground truth, goes to the decision log as the API would write it;
2. **gates** the challenger on all the decisions logged since it was trained, with the
   sequential gate (:func:`pipelines.evaluate.promote_if_better`): promote, retire or
   keep collecting;
3. once the challenger is decided, **trains** the next one on the original data plus all
   feedback so far (:mod:`pipelines.retrain`, shuffled split so that the feedback is
   learnt from);
4. measures the champion's **true value** against the oracle on a last held-out slice
   that is never served.

Scenarios (:mod:`pipelines.scenarios`) change the world while the loop runs: an action
launched at round 1, or a family's response drifting from some round on. The policy
runs in process rather than over HTTP (same policy objects, exploration code and
decision log as the API).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from nba.catalog import Catalog, load_catalog
from nba.config import Settings, get_settings
from nba.decision_log import DecisionLog
from nba.exceptions import NBAError
from nba.policy.evaluation import TruthEvaluation, evaluate_against_truth, widen_scores
from nba.policy.exploration import Exploration
from nba.policy.frames import contacts_from_frame
from nba.policy.policy import Policy
from nba.simulate import SimulationConfig
from nba.tracking import (
    CHALLENGER,
    CHAMPION,
    configure,
    load_policy,
    resolve,
    set_alias,
)
from pipelines.evaluate import Comparison, Gate, compare_policies, promote_if_better
from pipelines.features import build_features
from pipelines.impact import ImpactReport, impact_report
from pipelines.loop_serving import _policy_input, held_out_slices, model_ref, serve_round
from pipelines.retrain import refresh
from pipelines.review.learning import loop_chart, loop_summary
from pipelines.review.summary import log_summary
from pipelines.scenarios import Scenario, drift_channel, drifted, hide_action, launch
from pipelines.simulate import run_simulation
from pipelines.train import train

LOOP_MAX_LOOKS = 4
"""The loop retires a challenger the gate could not decide on in four rounds."""


@dataclass
class LoopRound:
    round: int
    champion: str
    challenger: str | None
    promoted: bool | None
    normalised_value: float
    value_per_contact: float
    logged: int
    dr_estimate: float | None
    true_value_on_log: float | None
    dr_relative_error: float | None
    gain_dr: float | None
    gain_dr_low: float | None
    seconds: float
    challenger_normalised_value: float | None = None
    """The new challenger's true value on the held-out slice (what promoting it would give)."""
    judged: str | None = None
    """The challenger the gate looked at this round."""
    verdict: str | None = None
    looks: int | None = None
    gain_dr_high: float | None = None
    gain_arms: float | None = None
    gain_arms_low: float | None = None
    gain_arms_high: float | None = None
    new_action_agreement: float | None = None
    """Launch: where the oracle would choose the new action, the share the champion does."""


@dataclass
class LoopReport:
    data_dir: Path
    rounds: list[LoopRound] = field(default_factory=list)
    run_id: str = ""
    impact: ImpactReport | None = None
    scenario: str = "none"
    new_action: str | None = None
    """Launch: the action that joined the catalog at round 1."""
    drift_round: int | None = None
    value_at_drift: float | None = None
    """Drift: the champion of the round before, on the drifted world (what the drift cost)."""

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rounds])


def loop_world(
    customers: int, rounds: int, weeks_per_round: int, seed: int, months: int = 12
) -> SimulationConfig:
    """The default world (12 months of history) with a random logging policy and one
    held-out slice of ``weeks_per_round`` weeks per round."""
    return SimulationConfig(
        customers=customers,
        months=months,
        seed=seed,
        exploration=1.0,
        holdout_weeks=rounds * weeks_per_round,
    )


def true_value(
    policy: Policy, frame: pd.DataFrame, truth: pd.DataFrame, catalog: Catalog | None = None
) -> TruthEvaluation:
    """The policy's value on the contacts of ``frame`` (a policy input) by the
    simulator's ground truth ``truth`` (``expected_value.parquet`` rows), vs the oracle
    over ``catalog`` (default: the policy's; a policy that predates some of its actions
    never chooses them)."""
    scores = policy.score(contacts_from_frame(frame, policy.catalog))
    wide = catalog or policy.catalog
    if wide.ids != policy.catalog.ids:
        scores = widen_scores(scores, policy.catalog, wide)
    return evaluate_against_truth(scores, wide, frame["contact_id"].tolist(), truth)


def simulate_loop(
    rounds: int,
    out: Path,
    settings: Settings | None = None,
    *,
    customers: int = 25_000,
    months: int = 12,
    weeks_per_round: int = 4,
    epsilon: float = 0.3,
    control_share: float = 0.1,
    challenger_share: float = 0.2,
    gate: Gate | None = None,
    scenario: Scenario | None = None,
    seed: int = 42,
    step: Callable[[str], None] | None = None,
) -> LoopReport:
    """Run the loop for ``rounds`` rounds on a new simulated world written to ``out``.

    The held-out period has one slice of ``weeks_per_round`` weeks per round plus a last
    one that is never served: true values are measured there, so no model is judged on
    contacts whose outcomes it learnt from. One challenger at a time collects evidence
    (its share of customers, and every decision for DR) from the round after it was
    trained until the gate decides; only then is the next one trained."""
    if rounds < 1:
        raise NBAError(f"--rounds must be at least 1, got {rounds}")
    s = settings or get_settings()
    g = gate or Gate(max_looks=LOOP_MAX_LOOKS)
    world = scenario or Scenario()
    say = step or (lambda _m: None)
    config = loop_world(customers, rounds + 1, weeks_per_round, seed, months)
    if config.holdout_weeks > config.weeks - 3:  # the simulator keeps 3 weeks of decisions
        raise NBAError(
            f"--rounds {rounds} x --weeks-per-round {weeks_per_round}, plus one slice never "
            f"served, need {config.holdout_weeks} weeks of contacts, more than --months "
            f"{months} leaves after the decisions round 0 learns from (at most "
            f"{config.weeks - 3}): raise --months or lower --rounds or --weeks-per-round"
        )
    config.validate()
    exploration = Exploration(
        "epsilon", epsilon=epsilon, control_share=control_share, challenger_share=challenger_share
    )
    say(f"simulating {customers:,} customers with a random logging policy")
    run_simulation(config, out)
    if world.name == "launch":
        hidden = hide_action(out, world.new_action)
        say(
            f"launch: {world.new_action} is new at round 1 "
            f"({hidden:,} logged offers of it taken out of the log)"
        )
    say("round 0: profiles and the champion trained on the random log only")
    build_features(out, s, online=False)
    train(out, s, seed=seed)
    truth = pd.read_parquet(out / "truth" / "expected_value.parquet")
    contacts, slices = held_out_slices(out, s, weeks_per_round, rounds + 1)
    # The gate's bounds are tightest at about two rounds' worth of logged decisions (one
    # round's contacts: fixed by the design, before any outcome is seen; valid at any n).
    g = replace(g, planned_n=max(len(slices[0]), 1_000))
    # The never-served slice: its policy input (profiles, history) does not depend on
    # the model, so it is built once and every model is scored on it.
    held_out = _policy_input(out, slices[-1])
    truth = truth.set_index(["contact_id", "action_id"])
    full_catalog = load_catalog()
    channel = drift_channel(contacts, world)

    def measure(version: str, r: int) -> TruthEvaluation:
        on = truth_at(r)
        return true_value(load_policy(model_ref(version)), held_out, on, full_catalog)

    # The held-out slice's truth, as simulated and (drift) as drifted: built once, each
    # model is measured on one of them.
    held_truth = truth[
        truth.index.get_level_values("contact_id").isin(set(held_out["contact_id"]))
    ]
    held_drifted = held_truth
    if world.name == "drift":
        hit = set(held_out.loc[held_out["channel"] == channel, "contact_id"])
        held_drifted = drifted(held_truth, hit, world.drift_family)
    held_truth, held_drifted = held_truth.reset_index(), held_drifted.reset_index()

    def truth_at(r: int) -> pd.DataFrame:
        return held_drifted if world.name == "drift" and r >= world.drift_round else held_truth

    champion_version = resolve(CHAMPION, s).version
    champion = measure(champion_version, 0)
    report = LoopReport(
        out, scenario=world.name, new_action=world.new_action if world.name == "launch" else None
    )
    report.rounds.append(
        LoopRound(0, champion_version, None, None, champion.normalised["nba"],
                  champion.values["nba"], 0, None, None, None, None, None, 0.0,
                  new_action_agreement=_agreement(champion, world))
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    pending: str | None = None  # the challenger collecting evidence
    pending_since: datetime | None = None
    looks = 0
    long_term: dict[str, float] = {}  # each answer's expected revenue over the horizon
    for r in range(1, rounds + 1):
        began = time.perf_counter()
        part = slices[r - 1]
        if world.name == "launch" and r == 1:
            launch(out)
            # A new catalog is a reason for a challenger: one that knows the new action
            # (from its family and the catalog, not yet from any outcome), so that its
            # share of customers starts exploring it at once.
            say(f"round 1: {world.new_action} joins the catalog; training a challenger")
            pending = train(out, s, seed=seed + 1000).version
            pending_since, looks = _just_before(part), 0
            report.rounds[0].challenger = pending
            report.rounds[0].challenger_normalised_value = measure(pending, 1).normalised["nba"]
        served_truth = truth
        if world.name == "drift" and r >= world.drift_round:
            hit = set(part.loc[part["channel"] == channel, "contact_id"])
            served_truth = drifted(truth, hit, world.drift_family)
            if r == world.drift_round:
                say(f"round {r}: {world.drift_family} offers stop working on {channel}")
                report.drift_round = r
                report.value_at_drift = measure(champion_version, r).normalised["nba"]
        arms = "the champion" + (" and the challenger" if pending else "")
        say(f"round {r}: serving {len(part):,} contacts with {arms}")
        log = DecisionLog(s.decision_log)
        log.start()
        try:
            current = s.home_dir / "retrain-data" if r > 1 else out
            challenger_ref = model_ref(pending) if pending else None
            true_greedy, answered = serve_round(
                current, part, served_truth, exploration, log, rng, challenger_ref, long_term
            )
        finally:
            log.close()
        merged, _, _ = refresh(out, s)
        round_start = _just_before(part)
        comparison: Comparison
        if pending is None:  # nothing to judge yet: the champion's estimate only
            set_alias(CHALLENGER, champion_version, s)
            comparison = compare_policies(merged, s, since=round_start, long_term=long_term)
        else:
            looks += 1
            say(f"round {r}: the gate's look {looks} at challenger v{pending}")
            set_alias(CHALLENGER, pending, s)
            comparison = promote_if_better(
                merged, s, gate=g, looks=looks, since=pending_since, long_term=long_term
            )
        judged, verdict = pending, comparison.verdict
        on_round = judged is None or pending_since == round_start  # DR error: one round
        if comparison.promoted:
            champion_version = str(pending)
        if verdict in ("promote", "retire"):
            pending = None
        trained_truth, look = None, looks
        if pending is None and r < rounds:
            say(f"round {r}: training a challenger on the feedback so far")
            pending = train(merged, s, seed=seed + r, split="shuffled", purpose="retrain").version
            pending_since, looks = _just_before(slices[r]), 0
            trained_truth = measure(pending, r + 1)
        champion = measure(champion_version, r)
        dr = comparison.values["champion"]["dr"].value
        seq = comparison.sequences
        report.rounds.append(
            LoopRound(
                r, champion_version, pending, comparison.promoted, champion.normalised["nba"],
                champion.values["nba"], answered, dr if on_round else None,
                true_greedy if on_round else None,
                abs(dr - true_greedy) / abs(true_greedy) if on_round and true_greedy else None,
                seq["dr"].mean if "dr" in seq else None, seq["dr"].low if "dr" in seq else None,
                round(time.perf_counter() - began, 1),
                trained_truth.normalised["nba"] if trained_truth else None,
                judged=judged, verdict=verdict, looks=look if judged else None,
                gain_dr_high=seq["dr"].high if "dr" in seq else None,
                gain_arms=seq["arms"].mean if "arms" in seq else None,
                gain_arms_low=seq["arms"].low if "arms" in seq else None,
                gain_arms_high=seq["arms"].high if "arms" in seq else None,
                new_action_agreement=_agreement(champion, world),
            )
        )  # fmt: skip
    set_alias(CHALLENGER, pending or champion_version, s)
    report.run_id = _log_loop(report, config, epsilon)
    if control_share > 0:
        say("impact report: NBA against the control group")
        report.impact = impact_report(s, out=out.parent / f"{out.name}-impact")
    return report


def _just_before(part: pd.DataFrame) -> datetime:
    moment: datetime = pd.Timestamp(part["timestamp"].min()).to_pydatetime()
    return moment - timedelta(microseconds=1)


def _agreement(evaluation: TruthEvaluation, world: Scenario) -> float | None:
    """Launch: of the held-out contacts where the oracle would choose the new action, the
    share where the policy chooses it too."""
    if world.name != "launch":
        return None
    return evaluation.agreement.get(world.new_action)


def _log_loop(report: LoopReport, config: SimulationConfig, epsilon: float) -> str:
    import tempfile

    import mlflow

    name = f"simulate-loop: {report.scenario}, {len(report.rounds) - 1} rounds"
    with mlflow.start_run(experiment_id=configure(), run_name=name) as run:
        mlflow.log_params({**asdict(config), "epsilon": epsilon, "rounds": len(report.rounds) - 1,
                           "scenario": report.scenario})  # fmt: skip
        for r in report.rounds:
            metrics = {
                "normalised_value": r.normalised_value,
                "value_per_contact": r.value_per_contact,
                "promoted": float(r.verdict == "promote"),
                "champion_version": float(r.champion),
            }
            for name in ("dr_relative_error", "gain_arms", "gain_arms_low", "gain_dr",
                         "gain_dr_low", "new_action_agreement",
                         "challenger_normalised_value"):  # fmt: skip
                value = getattr(r, name)
                if value is not None and np.isfinite(value):
                    metrics[name] = value
            if r.judged:
                metrics["judged_challenger_version"] = float(r.judged)
            mlflow.log_metrics({k: round(v, 4) for k, v in metrics.items()}, step=r.round)
        with tempfile.TemporaryDirectory() as tmp:
            chart = loop_chart(report, Path(tmp) / "values_per_round.png")
            log_summary(loop_summary(report, chart), "simulate-loop")
        return str(run.info.run_id)
