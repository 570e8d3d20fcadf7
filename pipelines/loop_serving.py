"""One simulated round of serving, as the API would serve it: the champion (and the
challenger, for its share of customers) decides each contact, the shown action is drawn
with the same exploration code, and the answer and its outcome, drawn from the
simulator's ground truth, go to the decision log. Used by the simulated loop
(:mod:`pipelines.loop`) and the gate's benchmarks."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from nba.catalog import NO_ACTION
from nba.config import Settings
from nba.contract import load_dataset
from nba.decision_log import DecisionLog, OutcomeRecord, ServedRecord, ranking_entries
from nba.policy.exploration import Exploration, assign_arm, choose, shown_order
from nba.policy.frames import contacts_from_frame
from nba.tracking import CHAMPION, MODEL_NAME, ModelRef, load_policy, resolve

DECLINE_SHARE = 0.65  # of the offers not accepted, as in the simulator


def serve_round(
    data_dir: Path,
    contacts: pd.DataFrame,
    truth: pd.DataFrame,
    exploration: Exploration,
    log: DecisionLog,
    rng: np.random.Generator,
    challenger: ModelRef | None = None,
    long_term: dict[str, float] | None = None,
) -> tuple[float, int]:
    """Serve ``contacts`` with the champion (and the challenger's share of customers with
    ``challenger``) and report outcomes drawn from ``truth``. Returns (true value per
    contact of the champion's own choices, nothing included; answers logged). Each
    answer's expected revenue over the horizon (the truth's, under the reactive dynamics)
    goes into ``long_term`` by its decision id: the world's contracts were drawn before
    the loop and do not react to what it serves."""
    refs = {"nba": resolve(CHAMPION)}
    if challenger is not None and exploration.challenger_share > 0:
        refs["challenger"] = challenger
    else:
        exploration = replace(exploration, challenger_share=0.0)
    frame = _policy_input(data_dir, contacts)
    arms = np.array([assign_arm(str(c), exploration) for c in contacts["customer_id"]])
    champion = load_policy(refs["nba"])
    # The champion decides every contact (its own choice is what its value on the log is
    # checked against); the challenger answers its share of customers.
    own = champion.decide(contacts_from_frame(frame, champion.catalog), None)
    served = list(own)
    version = np.full(len(contacts), refs["nba"].version, dtype=object)
    rows = np.flatnonzero(arms == "challenger")
    if "challenger" in refs and len(rows):
        policy = load_policy(refs["challenger"])
        part = frame.iloc[rows].reset_index(drop=True)
        for at, d in zip(rows, policy.decide(contacts_from_frame(part, policy.catalog), None),
                         strict=True):  # fmt: skip
            served[at] = d
        version[rows] = refs["challenger"].version
    p_accept = truth["p_accept"].to_dict()
    # What each choice is truly worth: immediate value and revenue over the horizon.
    expected = truth["expected_total"].to_dict()
    revenue = truth["expected_revenue"].to_dict()
    greedy_value = 0.0
    answered = 0
    moments = [t.to_pydatetime() for t in pd.to_datetime(contacts["timestamp"], utc=True)]
    for i, (row, moment, decision) in enumerate(
        zip(contacts.itertuples(index=False), moments, served, strict=True)
    ):
        recs = decision.recommendations
        greedy = own[i].recommendations
        choice = choose(
            str(row.customer_id),
            np.array([r.propensity for r in recs]),
            np.array([r.value for r in recs]),
            exploration,
            rng,
        )
        greedy_value += expected[(row.contact_id, greedy[0].action_id if greedy else NO_ACTION)]
        if choice.index < 0:
            continue  # nothing worth offering: no answer to log
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
                model_version=str(version[i]),
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
        if long_term is not None:
            long_term[f"{decision_id}:{top}"] = float(revenue[(row.contact_id, top)])
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


def held_out_slices(
    out: Path, s: Settings, weeks_per_round: int, n: int
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The held-out contacts of a simulated world (time order) and their ``n`` slices of
    ``weeks_per_round`` weeks."""
    dataset = load_dataset(out, settings=s)
    try:
        contacts = dataset.con.sql("SELECT * FROM contacts ORDER BY timestamp, contact_id").df()
    finally:
        dataset.close()
    stamp = pd.to_datetime(contacts["timestamp"])
    week = ((stamp - stamp.min()).dt.days // 7).to_numpy()
    slices = [
        contacts[(week >= k * weeks_per_round) & (week < (k + 1) * weeks_per_round)]
        for k in range(n)
    ]
    return contacts, slices


def model_ref(version: str) -> ModelRef:
    return ModelRef(f"models:/{MODEL_NAME}/{version}", version, None)
