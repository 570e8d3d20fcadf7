"""The closed learning loop, in simulation: serve -> outcomes -> retrain -> evaluate ->
promote, round after round, with the policy's true value measured each round.

The world is simulated with a uniformly random logging policy (``exploration=1``) and a
long held-out period whose contacts carry the simulator's ground truth (each action's
acceptance probability and net value). Round 0's champion is trained on the random log
only. Each round then takes the next slice of held-out contacts and:

1. **serves** them with the champion (a control group of customers gets a random
   candidate), exploring as the API does (:mod:`nba.policy.exploration`,
   the same draw and the same logged probability), and writes each answer to the
   workspace's decision log as the API would;
2. draws each shown action's **outcome** from the ground truth (accepted with its true
   probability; otherwise declined or no response) and reports it to the decision log;
3. **evaluates** the challenger trained in the previous round against the champion on
   this round's log, decisions it never saw, and **promotes** it only if the gate passes
   (:mod:`pipelines.evaluate`);
4. **retrains** a new challenger on the original data plus all feedback so far
   (:mod:`pipelines.retrain`, shuffled split so that the feedback is learnt from);
5. measures the champion's **true value** against the oracle on a last held-out slice
   that is never served, and how far DR's estimate of the champion's value on this
   round's log is from the truth on the same contacts.

The policy runs in process rather than over HTTP (same policy object, exploration code
and decision log as the API). The simulated world does not react to the loop's actions:
the ground truth was drawn when the world was simulated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from nba.catalog import NO_ACTION
from nba.config import Settings, get_settings
from nba.contract import load_dataset
from nba.exceptions import NBAError
from nba.policy.evaluation import TruthEvaluation, evaluate_against_truth
from nba.policy.exploration import Exploration, choose, shown_order
from nba.policy.frames import contacts_from_frame
from nba.policy.policy import Policy
from nba.simulate import SimulationConfig
from nba.tracking import CHALLENGER, CHAMPION, configure, load_policy, resolve, set_alias
from pipelines.evaluate import compare_policies, promote_if_better
from pipelines.features import build_features
from pipelines.impact import ImpactReport, impact_report
from pipelines.retrain import refresh
from pipelines.simulate import run_simulation
from pipelines.train import train
from serving.decision_log import DecisionLog, OutcomeRecord, ServedRecord, ranking_entries

DECLINE_SHARE = 0.65  # of the offers not accepted, as in the simulator


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


@dataclass
class LoopReport:
    data_dir: Path
    rounds: list[LoopRound] = field(default_factory=list)
    run_id: str = ""
    impact: ImpactReport | None = None

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


def serve_round(
    data_dir: Path,
    contacts: pd.DataFrame,
    truth: pd.DataFrame,
    exploration: Exploration,
    log: DecisionLog,
    rng: np.random.Generator,
) -> tuple[float, int]:
    """Serve ``contacts`` with the champion and report outcomes drawn from ``truth``.
    Returns (true value per contact of the champion's own choices, nothing included;
    answers logged)."""
    ref = resolve(CHAMPION)
    policy = load_policy(ref)
    frame = _policy_input(data_dir, contacts)
    decisions = policy.decide(contacts_from_frame(frame, policy.catalog), None)
    p_accept = truth["p_accept"].to_dict()
    # What each choice is truly worth: immediate value and revenue over the horizon.
    expected = truth["expected_total"].to_dict()
    greedy_value = 0.0
    answered = 0
    moments = [t.to_pydatetime() for t in pd.to_datetime(contacts["timestamp"], utc=True)]
    for row, moment, decision in zip(
        contacts.itertuples(index=False), moments, decisions, strict=True
    ):
        recs = decision.recommendations
        choice = choose(
            str(row.customer_id),
            np.array([r.propensity for r in recs]),
            np.array([r.value for r in recs]),
            exploration,
            rng,
        )
        if choice.index < 0:
            greedy_value += expected[(row.contact_id, NO_ACTION)]
            continue  # nothing worth offering: no answer to log
        greedy_value += expected[(row.contact_id, recs[0].action_id)]
        order = shown_order(len(recs), choice.index)[:3]
        decision_id = uuid.uuid4().hex
        log.write(
            ServedRecord(
                decision_id=decision_id,
                customer_id=str(row.customer_id),
                timestamp=moment,
                channel=str(row.channel),
                reason=row.reason if isinstance(row.reason, str) else None,
                agent_id="simulated",
                model_version=ref.version,
                features_timestamp=None,
                known_customer=True,
                degraded=False,
                degraded_reason=None,
                ranking=ranking_entries(recs, order, choice.probability),
                arm=choice.arm,
            )
        )
        top = recs[order[0]].action_id
        if rng.random() < p_accept[(row.contact_id, top)]:
            outcome = "accepted"
        else:  # the decline draw only for offers not accepted (keeps the random stream)
            outcome = "declined" if rng.random() < DECLINE_SHARE else "no_response"
        log.write(OutcomeRecord(decision_id, top, outcome, "simulated", moment))
        answered += 1
    return greedy_value / max(len(contacts), 1), answered


def _policy_input(data_dir: Path, contacts: pd.DataFrame) -> pd.DataFrame:
    """The policy's input for ``contacts``: profiles and history as of each contact."""
    from nba.inputs import policy_input

    dataset = load_dataset(data_dir)
    try:
        return policy_input(dataset, contacts)
    finally:
        dataset.close()


def true_value(policy: Policy, frame: pd.DataFrame, truth: pd.DataFrame) -> TruthEvaluation:
    """The policy's value on the contacts of ``frame`` (a policy input) by the
    simulator's ground truth ``truth`` (``expected_value.parquet`` rows), vs the oracle."""
    scores, _ = policy.score(contacts_from_frame(frame, policy.catalog))
    return evaluate_against_truth(scores, policy.catalog, frame["contact_id"].tolist(), truth)


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
    seed: int = 42,
    step: Callable[[str], None] | None = None,
) -> LoopReport:
    """Run the loop for ``rounds`` rounds on a new simulated world written to ``out``.

    The held-out period has one slice of ``weeks_per_round`` weeks per round plus a last
    one that is never served: true values are measured there, so no model is judged on
    contacts whose outcomes it learnt from. A challenger trained after round r is gated
    on round r + 1's log, decisions it never saw."""
    if rounds < 1:
        raise NBAError(f"--rounds must be at least 1, got {rounds}")
    s = settings or get_settings()
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
    say(f"simulating {customers:,} customers with a random logging policy")
    run_simulation(config, out)
    say("round 0: profiles and the champion trained on the random log only")
    build_features(out, s, online=False)
    train(out, s, seed=seed)
    truth = pd.read_parquet(out / "truth" / "expected_value.parquet")
    dataset = load_dataset(out, settings=s)
    try:
        contacts = dataset.con.sql("SELECT * FROM contacts ORDER BY timestamp, contact_id").df()
    finally:
        dataset.close()
    start = pd.to_datetime(contacts["timestamp"]).min()
    week = ((pd.to_datetime(contacts["timestamp"]) - start).dt.days // 7).to_numpy()
    slices = [
        contacts[(week >= k * weeks_per_round) & (week < (k + 1) * weeks_per_round)]
        for k in range(rounds + 1)
    ]
    # The never-served slice: its policy input (profiles, history) does not depend on
    # the model, so it is built once and every model is scored on it.
    held_out = _policy_input(out, slices[-1])
    held_out_truth = truth[truth["contact_id"].isin(set(held_out["contact_id"]))]
    truth = truth.set_index(["contact_id", "action_id"])
    champion = true_value(load_policy(resolve(CHAMPION, s)), held_out, held_out_truth)
    report = LoopReport(out)
    report.rounds.append(
        LoopRound(0, resolve(CHAMPION, s).version, None, None, champion.normalised["nba"],
                  champion.values["nba"], 0, None, None, None, None, None, 0.0)
    )  # fmt: skip
    exploration = Exploration("epsilon", epsilon=epsilon, control_share=control_share)
    rng = np.random.default_rng(seed)
    pending: str | None = None  # challenger trained last round, not yet judged
    pending_truth = champion
    for r in range(1, rounds + 1):
        began = time.perf_counter()
        part = slices[r - 1]
        say(f"round {r}: serving {len(part):,} contacts with the champion")
        log = DecisionLog(s.decision_log)
        log.start()
        try:
            current = s.home_dir / "retrain-data" if r > 1 else out
            true_greedy, answered = serve_round(current, part, truth, exploration, log, rng)
        finally:
            log.close()
        merged, _, _ = refresh(out, s)
        since = pd.Timestamp(part["timestamp"].min()).to_pydatetime() - timedelta(microseconds=1)
        say(f"round {r}: champion against the last round's challenger on this round's log")
        set_alias(CHALLENGER, pending or resolve(CHAMPION, s).version, s)
        if pending is None:  # nothing to judge yet: the champion's estimate only
            comparison = compare_policies(merged, s, since=since)
        else:
            comparison = promote_if_better(merged, s, since=since)
            if comparison.promoted:
                champion = pending_truth
        say(f"round {r}: training a challenger on the feedback so far")
        pending = train(merged, s, seed=seed, split="shuffled").version
        set_alias(CHALLENGER, pending, s)
        pending_truth = true_value(load_policy(resolve(CHALLENGER, s)), held_out, held_out_truth)
        dr = comparison.values["champion"]["dr"].value
        report.rounds.append(
            LoopRound(
                r,
                resolve(CHAMPION, s).version,
                pending,
                comparison.promoted,
                champion.normalised["nba"],
                champion.values["nba"],
                answered,
                dr,
                true_greedy,
                abs(dr - true_greedy) / abs(true_greedy) if true_greedy else None,
                comparison.gain["dr"].value if comparison.promoted is not None else None,
                comparison.gain["dr"].low if comparison.promoted is not None else None,
                round(time.perf_counter() - began, 1),
                pending_truth.normalised["nba"],
            )
        )
    report.run_id = _log_loop(report, config, epsilon)
    if control_share > 0:
        say("impact report: NBA against the control group")
        report.impact = impact_report(s, out=out.parent / f"{out.name}-impact")
    return report


def _log_loop(report: LoopReport, config: SimulationConfig, epsilon: float) -> str:
    import mlflow

    with mlflow.start_run(experiment_id=configure(), run_name="simulate-loop") as run:
        mlflow.log_params({**asdict(config), "epsilon": epsilon, "rounds": len(report.rounds) - 1})
        for r in report.rounds:
            metrics = {
                "normalised_value": r.normalised_value,
                "value_per_contact": r.value_per_contact,
            }
            if r.dr_relative_error is not None:
                metrics["dr_relative_error"] = r.dr_relative_error
            mlflow.log_metrics(metrics, step=r.round)
        return str(run.info.run_id)
