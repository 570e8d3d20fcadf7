"""Assemble the policy's input from a dataset: contacts, their profiles and history.

The reason of a logged decision is the interaction type logged for the same customer at the
same moment on the same channel (the contact itself), as the simulator writes it and as
CRM systems usually log it; without one the reason is unknown.
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import pyarrow as pa

from nba.contract import Dataset
from nba.policy.frames import history_json
from nba.profiles import RECENCY_HORIZON_DAYS, compute_profiles

DECISIONS_WITH_REASON_SQL = """
SELECT d.decision_id, d.customer_id, d.timestamp, d.channel, d.action_id, d.outcome,
       d.propensity, d.value, r.reason
FROM decisions d
LEFT JOIN (
  SELECT customer_id, timestamp, channel, min(type) AS reason
  FROM interactions
  WHERE type NOT IN ('login', 'payment', 'missed_payment', 'purchase')
  GROUP BY customer_id, timestamp, channel
) r USING (customer_id, timestamp, channel)
ORDER BY d.timestamp, d.decision_id
"""


def decisions_with_reason(dataset: Dataset) -> pd.DataFrame:
    """The decision log with each decision's contact reason, oldest first."""
    return dataset.con.sql(DECISIONS_WITH_REASON_SQL).df()


def history_for(dataset: Dataset, contacts: pd.DataFrame) -> list[str]:
    """Each contact's past decisions (last 365 days, strictly before it) as history JSON.

    ``contacts`` needs ``contact_id``, ``customer_id``, ``timestamp``; the result follows its
    row order.
    """
    con = dataset.con
    keys = pa.table(
        {
            "contact_id": contacts["contact_id"].astype(str).tolist(),
            "customer_id": contacts["customer_id"].astype(str).tolist(),
            "ts": pa.array(pd.to_datetime(contacts["timestamp"]).tolist(), pa.timestamp("us")),
        }
    )
    con.register("history_keys", keys)
    try:
        rows = con.sql(f"""
            SELECT k.contact_id, d.action_id,
                   date_diff('microsecond', d.timestamp, k.ts) / 86400000000.0 AS age,
                   d.outcome
            FROM history_keys k JOIN decisions d
              ON d.customer_id = k.customer_id AND d.timestamp < k.ts
             AND d.timestamp >= k.ts - INTERVAL {RECENCY_HORIZON_DAYS} DAY
            ORDER BY k.contact_id, d.timestamp, d.decision_id""").fetchall()
    finally:
        con.unregister("history_keys")
    grouped: dict[str, list[tuple[str, float, str]]] = defaultdict(list)
    for contact_id, action_id, age, outcome in rows:
        grouped[contact_id].append((action_id, age, outcome))
    return [history_json(grouped.get(str(c), [])) for c in contacts["contact_id"]]


def profiles_at(dataset: Dataset, contacts: pd.DataFrame) -> pd.DataFrame:
    """Profiles of each contact's customer as of the contact, in the contacts' row order."""
    q = pa.table(
        {
            "customer_id": contacts["customer_id"].astype(str).tolist(),
            "as_of": pa.array(pd.to_datetime(contacts["timestamp"]).tolist(), pa.timestamp("us")),
        }
    )
    prof = compute_profiles(dataset.con, q).to_pandas()
    prof = prof.rename(columns={"event_timestamp": "timestamp"})
    keys = contacts[["customer_id", "timestamp"]].copy()
    keys["timestamp"] = pd.to_datetime(keys["timestamp"]).dt.tz_localize(None)
    return keys.merge(prof, on=["customer_id", "timestamp"], how="left")


def policy_input(
    dataset: Dataset, contacts: pd.DataFrame, profiles: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The pyfunc model's input for ``contacts`` (``contact_id``, ``customer_id``,
    ``timestamp``, ``channel``, ``reason``). ``profiles`` (same row order) may come from
    Feast; by default they are computed as of each contact."""
    prof = profiles if profiles is not None else profiles_at(dataset, contacts)
    out = prof.drop(columns=["customer_id", "timestamp"], errors="ignore").reset_index(drop=True)
    for col in ("contact_id", "customer_id", "channel", "reason"):
        out[col] = contacts[col].reset_index(drop=True)
    out["history"] = history_for(dataset, contacts)
    return out
