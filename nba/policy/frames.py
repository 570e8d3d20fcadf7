"""Tables in and out of the policy: the pyfunc model's input and the recommendations table.

Input: one row per contact with ``contact_id``, ``customer_id``, ``channel``, ``reason``,
every profile feature, and ``history``: the customer's past decisions as a JSON list of
``[action_id, age_days, outcome]`` (what the contact policy counts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from nba.catalog import Catalog
from nba.policy.arbitration import History
from nba.policy.design import profile_matrix
from nba.policy.policy import Contacts, Decision, Policy, Ranking
from nba.profiles import NUMERIC_FEATURE_NAMES

CONTEXT_INPUT = ("contact_id", "customer_id", "channel", "reason", "active_products", "history")
INPUT_COLUMNS: tuple[str, ...] = (*CONTEXT_INPUT, *NUMERIC_FEATURE_NAMES)

RECOMMENDATIONS_SCHEMA = pa.schema(
    [
        ("contact_id", pa.string()),
        ("customer_id", pa.string()),
        ("rank", pa.int64()),
        ("action_id", pa.string()),
        ("family", pa.string()),
        ("propensity", pa.float64()),
        ("value", pa.float64()),
        ("priority", pa.float64()),
        ("reasons", pa.list_(pa.string())),
        ("model_version", pa.string()),
        ("cost", pa.float64()),
        ("long_term_value", pa.float64()),
    ]
)
RECOMMENDATION_COLUMNS = (
    "contact_id",
    "customer_id",
    "rank",
    "action_id",
    "family",
    "propensity",
    "value",
    "priority",
    "reasons",
    "model_version",
    "cost",
    "long_term_value",
)


def history_json(rows: Sequence[tuple[str, float, str]]) -> str:
    """Ages are written in full (``repr`` round-trips a float exactly), so a policy fed
    through this JSON ranks exactly like one fed the arrays directly."""
    return json.dumps([[a, float(d), o] for a, d, o in rows])


def contacts_from_frame(df: pd.DataFrame, catalog: Catalog) -> Contacts:
    """Build the policy's batch from an input frame (see module docstring)."""
    missing = [c for c in INPUT_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"policy input is missing column(s) {missing}")
    n = len(df)
    index = {a: j for j, a in enumerate(catalog.ids)}
    past: list[tuple[int, int, float, bool, bool]] = []
    for i, text in enumerate(df["history"].tolist()):
        if not text:
            continue
        for action_id, age, outcome in json.loads(text):
            past.append(
                (i, index.get(action_id, -1), float(age), outcome == "declined",
                 outcome == "accepted")
            )  # fmt: skip
    history = History.from_rows(past)
    reasons = [None if r is None or r != r else str(r) for r in df["reason"].tolist()]
    return Contacts(
        contact_id=[str(c) for c in df["contact_id"]],
        customer_id=[str(c) for c in df["customer_id"]],
        channel=[str(c) for c in df["channel"]],
        reason=reasons,
        profile_x=profile_matrix({c: df[c].to_numpy() for c in NUMERIC_FEATURE_NAMES}, n),
        active_products=["" if p is None or p != p else str(p) for p in df["active_products"]],
        history=history,
    )


def decisions_to_frame(
    decisions: list[Decision], model_version: str, with_suppressed: bool = False
) -> pd.DataFrame:
    """The contract's ``recommendations`` table (plus name, script and, if asked, the
    suppressed actions with ``rank`` 0 and their ``rule``)."""
    rows = []
    for d in decisions:
        for rank, r in enumerate(d.recommendations, start=1):
            rows.append(
                {
                    "contact_id": d.contact_id,
                    "customer_id": d.customer_id,
                    "rank": rank,
                    "action_id": r.action_id,
                    "family": r.family,
                    "propensity": r.propensity,
                    "value": r.value,
                    "priority": r.priority,
                    "reasons": list(r.reasons),
                    "model_version": model_version,
                    "cost": r.cost,
                    "long_term_value": r.long_term_value,
                    "name": r.name,
                    "script": r.script,
                    "rule": None,
                }
            )
        if with_suppressed:
            for s in d.suppressed:
                rows.append(
                    {
                        "contact_id": d.contact_id,
                        "customer_id": d.customer_id,
                        "rank": 0,
                        "action_id": s.action_id,
                        "family": None,
                        "propensity": None,
                        "value": None,
                        "priority": None,
                        "reasons": [],
                        "model_version": model_version,
                        "cost": None,
                        "long_term_value": None,
                        "name": None,
                        "script": None,
                        "rule": s.rule,
                    }
                )
    columns = [*RECOMMENDATION_COLUMNS, "name", "script", "rule"]
    out = pd.DataFrame(rows, columns=columns)
    out["rank"] = out["rank"].astype("int64")
    return out


def ranking_table(
    ranking: Ranking, contact_id: list[str], customer_id: list[str], policy: Policy, version: str
) -> pa.Table:
    """The contract's ``recommendations`` rows of a ranking (columnar, no per-row Python)."""
    who = pa.array(ranking.contact)
    ids = pa.array(policy.catalog.ids, pa.string())
    families = pa.array([a.family for a in policy.catalog.actions], pa.string())
    act = pa.array(ranking.action)
    r = ranking.reasons
    texts = pa.array(r.texts, pa.string()).take(pa.array(r.ids, pa.int64()))
    reasons = pa.ListArray.from_arrays(pa.array(r.offsets, pa.int32()), texts)
    return pa.Table.from_arrays(
        [
            pa.array(contact_id, pa.string()).take(who),
            pa.array(customer_id, pa.string()).take(who),
            pa.array(ranking.rank, pa.int64()),
            ids.take(act),
            families.take(act),
            pa.array(ranking.propensity, pa.float64()),
            pa.array(ranking.net_value, pa.float64()),
            pa.array(ranking.priority, pa.float64()),
            reasons,
            pa.array(np.full(len(ranking), version, dtype=object), pa.string()),
            pa.array(ranking.cost if ranking.cost is not None else np.zeros(len(ranking))),
            pa.array(ranking.change, pa.float64())
            if ranking.change is not None
            else pa.nulls(len(ranking), pa.float64()),
        ],
        schema=RECOMMENDATIONS_SCHEMA,
    )
