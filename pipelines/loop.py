"""The closed learning loop, in simulation: serve -> outcomes -> retrain -> evaluate ->
promote, round after round, with the policy's true value measured each round.

The world is simulated with a uniformly random logging policy (``exploration=1``) and a
long held-out period whose contacts carry the simulator's ground truth (each action's
acceptance probability and net value). Round 0's champion is trained on the random log
only. Each round then takes the next slice of held-out contacts and:

1. **serves** them with the champion, exploring as the API does (:mod:`nba.policy.exploration`,
   the same draw and the same logged probability), and writes each answer to the
   workspace's decision log as the API would;
2. draws each shown action's **outcome** from the ground truth (accepted with its true
   probability; otherwise declined or no response) and reports it to the decision log;
3. **retrains** a challenger on the original data plus all feedback so far
   (:mod:`pipelines.retrain`);
4. **evaluates** champion and challenger on this round's log and **promotes** the
   challenger only if the gate passes (:mod:`pipelines.evaluate`);
5. measures the champion's **true value** on all held-out contacts against the oracle,
   and how far DR's estimate of the champion's value on this round's log is from the
   truth on the same contacts.

The policy runs in process rather than over HTTP (same policy object, exploration code
and decision log as the API). The simulated world does not react to the loop's actions:
the ground truth was drawn when the world was simulated.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nba.config import Settings, get_settings
from nba.contract import load_dataset
from nba.exceptions import NBAError
from nba.policy.exploration import Exploration, choose
from nba.policy.frames import contacts_from_frame
from nba.policy.policy import Policy
from nba.simulate import SimulationConfig
from nba.tracking import CHAMPION, configure, resolve
from pipelines.evaluate import promote_if_better
from pipelines.features import build_features
from pipelines.retrain import retrain
from pipelines.simulate import run_simulation
from pipelines.train import train
from serving.decision_log import DecisionLog, OutcomeRecord, ServedRecord

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


@dataclass
class LoopReport:
    data_dir: Path
    rounds: list[LoopRound] = field(default_factory=list)
    run_id: str = ""

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.rounds])


def loop_world(customers: int, rounds: int, weeks_per_round: int, seed: int) -> SimulationConfig:
    """The default world (12 months) with a random logging policy and one held-out slice
    of ``weeks_per_round`` weeks per round."""
    return SimulationConfig(
        customers=customers,
        seed=seed,
        exploration=1.0,
        holdout_weeks=rounds * weeks_per_round,
    )


def _policy() -> Policy:
    import mlflow

    policy: Policy = mlflow.pyfunc.load_model(resolve(CHAMPION).uri).unwrap_python_model().policy
    return policy


def serve_round(
    data_dir: Path,
    contacts: pd.DataFrame,
    truth: pd.DataFrame,
    exploration: Exploration,
    log: DecisionLog,
    rng: np.random.Generator,
) -> tuple[str, float, int]:
    """Serve ``contacts`` with the champion and report outcomes drawn from ``truth``.
    Returns (champion version, true value per answer of its greedy choices, answers)."""
    version = resolve(CHAMPION).version
    policy = _policy()
    dataset = load_dataset(data_dir)
    try:
        from nba.inputs import policy_input

        frame = policy_input(dataset, contacts)
    finally:
        dataset.close()
    decisions = policy.decide(contacts_from_frame(frame, policy.catalog), None)
    p_accept = truth["p_accept"].to_dict()
    expected = truth["expected_net_value"].to_dict()
    greedy_value = 0.0
    answered = 0
    moments = pd.to_datetime(contacts["timestamp"], utc=True).dt.to_pydatetime()
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
            continue  # nothing worth offering: no answer to log
        greedy_value += expected[(row.contact_id, recs[0].action_id)]
        shown = [recs[choice.index], *recs[: choice.index], *recs[choice.index + 1 :]][:3]
        decision_id = uuid.uuid4().hex
        log.write(
            ServedRecord(
                decision_id=decision_id,
                customer_id=str(row.customer_id),
                timestamp=moment,
                channel=str(row.channel),
                reason=row.reason if isinstance(row.reason, str) else None,
                agent_id="simulated",
                model_version=version,
                features_timestamp=None,
                known_customer=True,
                degraded=False,
                degraded_reason=None,
                ranking=[
                    {"action_id": r.action_id, "propensity": r.propensity, "value": r.value,
                     "priority": r.priority,
                     "shown_probability": choice.probability if i == 0 else None}
                    for i, r in enumerate(shown)
                ],
                arm=choice.arm,
            )
        )  # fmt: skip
        top = shown[0].action_id
        accepted = rng.random() < p_accept[(row.contact_id, top)]
        outcome = (
            "accepted"
            if accepted
            else "declined"
            if rng.random() < DECLINE_SHARE
            else "no_response"
        )
        log.write(OutcomeRecord(decision_id, top, outcome, "simulated", moment))
        answered += 1
    return version, greedy_value / max(answered, 1), answered


def simulate_loop(
    rounds: int,
    out: Path,
    settings: Settings | None = None,
    *,
    customers: int = 25_000,
    weeks_per_round: int = 4,
    epsilon: float = 0.1,
    seed: int = 42,
    step: Callable[[str], None] | None = None,
) -> LoopReport:
    """Run the loop for ``rounds`` rounds on a new simulated world written to ``out``."""
    if rounds < 1:
        raise NBAError(f"--rounds must be at least 1, got {rounds}")
    s = settings or get_settings()
    say = step or (lambda _m: None)
    config = loop_world(customers, rounds, weeks_per_round, seed)
    config.validate()
    say(f"simulating {customers:,} customers with a random logging policy")
    run_simulation(config, out)
    say("round 0: profiles and the champion trained on the random log only")
    build_features(out, s, online=False)
    first = train(out, s, seed=seed)
    if first.truth is None:
        raise NBAError("the simulated world has no ground truth")
    report = LoopReport(out)
    report.rounds.append(
        LoopRound(0, first.version, None, None, first.truth.normalised["nba"],
                  first.truth.values["nba"], 0, None, None, None, None, None, 0.0)
    )  # fmt: skip
    truth = pd.read_parquet(out / "truth" / "expected_value.parquet").set_index(
        ["contact_id", "action_id"]
    )
    dataset = load_dataset(out, settings=s)
    try:
        contacts = dataset.con.sql("SELECT * FROM contacts ORDER BY timestamp, contact_id").df()
    finally:
        dataset.close()
    start = pd.to_datetime(contacts["timestamp"]).min()
    week = ((pd.to_datetime(contacts["timestamp"]) - start).dt.days // 7).to_numpy()
    exploration = Exploration("epsilon", epsilon=epsilon)
    rng = np.random.default_rng(seed)
    champion_truth = first.truth
    for r in range(1, rounds + 1):
        began = time.perf_counter()
        part = contacts[(week >= (r - 1) * weeks_per_round) & (week < r * weeks_per_round)]
        say(f"round {r}: serving {len(part):,} contacts")
        log = DecisionLog(s.decision_log)
        log.start()
        try:
            current = s.home_dir / "retrain-data" if r > 1 else out
            _, true_greedy, answered = serve_round(current, part, truth, exploration, log, rng)
        finally:
            log.close()
        say(f"round {r}: retraining on the feedback")
        challenger = retrain(out, s, seed=seed)
        say(f"round {r}: champion against challenger on this round's log")
        merged = load_dataset(challenger.data_dir)
        try:
            n_logged = int(
                merged.con.sql(
                    "SELECT count(*) FROM decisions WHERE propensity IS NOT NULL"
                ).fetchall()[0][0]
            )
        finally:
            merged.close()
        comparison = promote_if_better(challenger.data_dir, s, share=answered / n_logged)
        if comparison.promoted and challenger.train.truth is not None:
            champion_truth = challenger.train.truth
        dr = comparison.values["champion"]["dr"].value
        report.rounds.append(
            LoopRound(
                r,
                resolve(CHAMPION).version,
                challenger.version,
                comparison.promoted,
                champion_truth.normalised["nba"],
                champion_truth.values["nba"],
                answered,
                dr,
                true_greedy,
                abs(dr - true_greedy) / abs(true_greedy) if true_greedy else None,
                comparison.gain["dr"].value,
                comparison.gain["dr"].low,
                round(time.perf_counter() - began, 1),
            )
        )
    report.run_id = _log_loop(report, config, epsilon)
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
