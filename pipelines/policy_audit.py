"""An independent count of first recommendations that break the company's contact policy.

Batch scoring enforces the policy inside the engine (``nba.policy.arbitration``); this
counts the result again from the files alone: for each contact's first recommendation,
the customer's presented actions in the dataset before the contact, against the family
limits, the limit across all actions and the pause after an accepted action. The demo
prints it beside the action mix; it should be 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa

from nba.catalog import Catalog
from nba.contract import Dataset


@dataclass(frozen=True)
class PolicyAudit:
    checked: int
    """First recommendations checked."""
    after_history: int
    """Of those, contacts whose customer had a presented action in the policy's windows."""
    breaches: int
    """First recommendations that break a family limit, the all-actions limit or a pause."""


def audit(
    dataset: Dataset, contacts: pd.DataFrame, recommendations: Path, catalog: Catalog
) -> PolicyAudit:
    company = catalog.company_policy
    groups = [*company.families.values(), company.all_actions]
    windows = [g.window_days for g in groups if g.window_days] + [
        g.quiet_days_after_accepted for g in groups if g.quiet_days_after_accepted
    ]
    con = dataset.con
    keys = pa.table(
        {
            "contact_id": contacts["contact_id"].astype(str).tolist(),
            "ts": pa.array(pd.to_datetime(contacts["timestamp"]).tolist(), pa.timestamp("us")),
        }
    )
    families = pa.table(
        {"action_id": list(catalog.ids), "fam": [a.family for a in catalog.actions]}
    )
    con.register("audit_keys", keys)
    con.register("audit_families", families)
    try:
        top = con.sql(f"""
            SELECT r.contact_id, r.customer_id, r.family, k.ts
            FROM read_parquet('{str(recommendations).replace("'", "''")}') r
            JOIN audit_keys k USING (contact_id) WHERE r.rank = 1""").df()
        if not windows or top.empty:
            return PolicyAudit(len(top), 0, 0)
        con.register("audit_top", top)
        past = con.sql(f"""
            SELECT t.contact_id, t.family AS top_family, f.fam, d.outcome,
                   date_diff('microsecond', d.timestamp, t.ts) / 86400000000.0 AS age
            FROM audit_top t JOIN decisions d
              ON d.customer_id = t.customer_id AND d.timestamp < t.ts
             AND d.timestamp >= t.ts - INTERVAL {max(windows)} DAY
            JOIN audit_families f ON f.action_id = d.action_id""").df()
    finally:
        for name in ("audit_keys", "audit_families", "audit_top"):
            con.unregister(name)
    broken: set[str] = set()
    for family, g in [*company.families.items(), ("", company.all_actions)]:
        mine = past if not family else past[past["fam"] == family]
        if g.max_offers and g.window_days:
            inside = mine[mine["age"] <= g.window_days]
            if family:
                inside = inside[inside["top_family"] == family]
            counts = inside.groupby("contact_id").size()
            broken |= set(counts.index[counts >= g.max_offers])
        if g.quiet_days_after_accepted:
            taken = mine[
                (mine["outcome"] == "accepted") & (mine["age"] <= g.quiet_days_after_accepted)
            ]
            broken |= set(taken["contact_id"])
    return PolicyAudit(len(top), int(past["contact_id"].nunique()), len(broken))
