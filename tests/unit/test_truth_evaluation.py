"""The evaluation against the simulator's truth: every policy, the oracle included,
chooses within the contact policy, and what the policy costs is reported apart."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nba.catalog import NO_ACTION, parse_catalog
from nba.policy.arbitration import OK, RULE_FAMILY_OFFERS
from nba.policy.evaluation import evaluate_against_truth
from nba.policy.policy import Scores

ACTIONS = [
    {"id": "gesture", "family": "retention_gesture", "name": "G", "value": 0},
    {"id": "plan", "family": "installment_offer", "name": "P", "value": 0},
]


def test_the_oracle_chooses_within_the_contact_policy_and_its_cost_is_reported() -> None:
    catalog = parse_catalog({"objective": "incremental", "actions": ACTIONS})
    # contact c0: the gesture is worth most but the contact policy holds it back
    totals = {("c0", "gesture"): 10.0, ("c0", "plan"): 5.0, ("c0", NO_ACTION): 0.0,
              ("c1", "gesture"): 8.0, ("c1", "plan"): 2.0, ("c1", NO_ACTION): 0.0}  # fmt: skip
    truth = pd.DataFrame(
        [
            {"contact_id": c, "action_id": a, "expected_total": v, "eligible": True,
             "p_accept": 0.5, "value": 0.0, "cost": 0.0, "expected_revenue": v, "mc_se": 0.1}
            for (c, a), v in totals.items()
        ]
    )  # fmt: skip
    status = np.array([[RULE_FAMILY_OFFERS, OK], [OK, OK]], dtype=np.int8)
    scores = Scores(
        propensity=np.full((2, 2), 0.5),
        net_value=np.zeros((2, 2)),
        priority=np.array([[-np.inf, 1.0], [2.0, 1.0]]),
        status=status,
        count=np.zeros((2, 2), dtype=np.int32),
    )
    result = evaluate_against_truth(scores, catalog, ["c0", "c1"], truth)
    assert result.values["oracle"] == (5.0 + 8.0) / 2  # not 10 for c0: it is held back
    assert result.values["nba"] == result.values["oracle"]  # plan for c0, gesture for c1
    assert result.normalised["nba"] == 1.0
    assert result.contact_policy_cost == (10.0 - 5.0) / 2
    assert result.held_back_share == 0.5
