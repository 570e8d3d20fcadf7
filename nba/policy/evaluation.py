"""How good is a policy? Against the simulator's oracle, and on logged data.

Baselines (each picks at most one action per contact):

- **random**: a uniformly random eligible action (its value is the mean over eligible ones);
- **product-first**: the product offer with the highest catalog net value whenever one is
  eligible, otherwise a random eligible action (the product-centric habit);
- **propensity-only**: the action most likely to be accepted, whatever it is worth.

Normalised value = (V_policy - V_random) / (V_oracle - V_random): 0 is random, 1 the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nba.catalog import Catalog
from nba.policy.arbitration import OK, RULE_NOT_WORTH_IT, RULE_VALUE_UNKNOWN
from nba.policy.policy import Scores

POLICIES = ("nba", "random", "product_first", "propensity_only", "oracle")


@dataclass
class TruthEvaluation:
    values: dict[str, float]
    """Mean true expected net value per contact, per policy."""
    normalised: dict[str, float]
    by_family: pd.DataFrame
    """Rows: the oracle's family; columns: normalised value per policy, and contacts."""
    n_contacts: int
    action_mix: dict[str, float]


def choices(scores: Scores, catalog: Catalog) -> dict[str, np.ndarray]:
    """Chosen action index per contact for the NBA and the model-based baselines
    (-1 = nothing), shape ``(n_contacts,)`` each."""
    ok = scores.status == OK
    ranked = np.where(ok, scores.priority, -np.inf)
    nba = np.where(ok.any(axis=1), np.argmax(ranked, axis=1), -1)
    screened = (
        (scores.status == OK)
        | (scores.status == RULE_NOT_WORTH_IT)
        | (scores.status == RULE_VALUE_UNKNOWN)
    )
    prop = np.where(screened, scores.propensity, -np.inf)
    propensity_only = np.where(screened.any(axis=1), np.argmax(prop, axis=1), -1)
    return {"nba": nba, "propensity_only": propensity_only}


def evaluate_against_truth(
    scores: Scores, catalog: Catalog, contact_ids: list[str], truth: pd.DataFrame
) -> TruthEvaluation:
    """Score the policy and baselines with the simulator's expected net values.

    ``truth`` is ``truth/expected_value.parquet`` (contact_id, action_id, eligible,
    expected_net_value); rows of ``scores`` follow ``contact_ids``.
    """
    k = len(catalog.actions)
    t = truth.set_index(["contact_id", "action_id"])
    idx = pd.MultiIndex.from_product([contact_ids, list(catalog.ids)])
    env = t["expected_net_value"].reindex(idx).to_numpy().reshape(-1, k)
    eligible = t["eligible"].reindex(idx).fillna(False).to_numpy(dtype=bool).reshape(-1, k)
    if np.isnan(env).any():
        raise ValueError("truth does not cover every scored contact and action")
    n = len(contact_ids)
    rows = np.arange(n)
    masked = np.where(eligible, env, np.nan)
    any_elig = eligible.any(axis=1)
    with np.errstate(all="ignore"):
        v_random = np.where(any_elig, np.nanmean(masked, axis=1), 0.0)
        v_oracle = np.where(any_elig, np.maximum(np.nanmax(masked, axis=1), 0.0), 0.0)
    picked = choices(scores, catalog)

    def value_of(choice: np.ndarray) -> np.ndarray:
        return np.where(choice >= 0, env[rows, np.maximum(choice, 0)], 0.0)

    is_product = np.array([a.family == "product_offer" for a in catalog.actions])
    catalog_net = np.nan_to_num(scores.net_value, nan=-np.inf)
    prod = np.where(eligible & is_product, catalog_net, -np.inf)
    has_prod = (eligible & is_product).any(axis=1)
    v_product = np.where(has_prod, env[rows, np.argmax(prod, axis=1)], v_random)
    per_contact = {
        "nba": value_of(picked["nba"]),
        "random": v_random,
        "product_first": v_product,
        "propensity_only": value_of(picked["propensity_only"]),
        "oracle": v_oracle,
    }
    values = {p: float(v.mean()) for p, v in per_contact.items()}
    span = values["oracle"] - values["random"]
    normalised = {
        p: (values[p] - values["random"]) / span if span > 0 else float("nan") for p in POLICIES
    }
    best_family = np.array(
        [
            catalog.actions[j].family
            for j in np.nanargmax(np.where(eligible, env, -np.inf), axis=1)
        ],
        dtype=object,
    )
    best_family[~any_elig | (v_oracle <= 0)] = "nothing"
    frame = pd.DataFrame({p: per_contact[p] for p in POLICIES})
    frame["family"] = best_family
    by_family = frame.groupby("family").agg(["mean"]).droplevel(1, axis=1)
    spans = by_family["oracle"] - by_family["random"]
    out = pd.DataFrame(
        {
            p: (by_family[p] - by_family["random"]) / spans.where(spans > 0)
            for p in ("nba", "product_first", "propensity_only")
        }
    )
    out["contacts"] = frame.groupby("family").size()
    chosen = picked["nba"]
    mix = pd.Series([catalog.actions[j].family if j >= 0 else "nothing" for j in chosen])
    shares = {str(f): float(v) for f, v in mix.value_counts(normalize=True).round(4).items()}
    return TruthEvaluation(values, normalised, out, n, shares)


def snipw(
    chosen: np.ndarray, logged: np.ndarray, propensity: np.ndarray, reward: np.ndarray
) -> float:
    """Self-normalised IPW estimate of a deterministic policy's value from a log.

    All arrays have shape ``(n,)``: the policy's choice and the logged action (catalog
    indices), the logging propensity and the observed reward.
    """
    w = (chosen == logged) / propensity
    return float((w * reward).sum() / w.sum()) if w.sum() > 0 else float("nan")
