"""How good is a policy? Against the simulator's oracle, and on logged data.

A policy's value at a contact is what its choice is truly worth there: the expected
immediate value (chance of a yes x (value - cost)) plus the expected revenue of the
contracts held, over the catalog's horizon, given that choice (the simulator's Monte Carlo
truth). Presenting nothing is a choice like any other. Baselines (each picks at most one
action per contact):

- **nothing**: never present anything;
- **random**: a uniformly random eligible action (its value is the mean over eligible ones);
- **acceptance-only**: the engine's own ranking by chance of a yes x (value - cost) (the
  catalog's ``objective: acceptance``), nothing where no action is above zero;
- **retention habit**: the same, but a retention gesture is worth ``RETENTION_MONTHS``
  months of revenue when accepted (as if everyone who accepts would have left without it);
- **product-first**: the product offer with the highest catalog net value whenever one is
  eligible, otherwise a random eligible action (the product-centric habit);
- **true acceptance**: acceptance-only with the simulator's *true* acceptance
  probabilities: the ceiling of any engine that ranks by acceptance;
- **propensity-only**: the action most likely to be accepted, whatever it is worth.

Normalised value = (V_policy - V_random) / (V_oracle - V_random): 0 is random, 1 the oracle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from nba.catalog import NO_ACTION, Catalog
from nba.policy.arbitration import OK, RULE_ELIGIBILITY, RULE_NOT_WORTH_IT, RULE_VALUE_UNKNOWN
from nba.policy.contact_rules import CONTACT_POLICY_RULES
from nba.policy.policy import Scores
from nba.policy.uplift import FEES_COLUMN

POLICIES = (
    "nba",
    "nothing",
    "random",
    "acceptance_only",
    "retention_habit",
    "product_first",
    "true_acceptance",
    "propensity_only",
    "oracle",
)
RETENTION_MONTHS = 6.0
LABELS = {
    "nba": "NBA",
    "nothing": "always nothing",
    "random": "random eligible action",
    "acceptance_only": "acceptance-only (objective: acceptance)",
    "retention_habit": f"retention saves {RETENTION_MONTHS:g} months of revenue",
    "product_first": "product-first",
    "true_acceptance": "acceptance-only, true acceptance rates",
    "propensity_only": "most likely to be accepted",
    "oracle": "oracle",
}


@dataclass
class TruthEvaluation:
    values: dict[str, float]
    """Mean true expected value per contact (immediate + revenue over the horizon)."""
    normalised: dict[str, float]
    by_family: pd.DataFrame
    """Rows: the oracle's family (or nothing); columns: normalised value per policy, and
    contacts."""
    n_contacts: int
    action_mix: dict[str, float]
    """Share of contacts per family of the NBA's choice ("nothing" included)."""
    nothing_share: dict[str, float]
    """Share of contacts answered with nothing, per policy."""
    gesture_spend_per_kept: dict[str, float]
    """Expected retention-gesture cost per customer-horizon of revenue kept, per policy."""
    mc_error: float
    """Monte Carlo standard error of the NBA's normalised value (from the truth's
    rollouts)."""
    agreement: dict[str, float] = field(default_factory=dict)
    """Per action: of the contacts where the oracle would choose it, the share where the
    NBA chooses it too."""
    held_back_share: float = 0.0
    """Share of contacts where the contact policy held back an action the world allowed."""
    contact_policy_cost: float = 0.0
    """What the contact policy costs the oracle, in value per contact (every policy above
    chooses within it)."""


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
    acceptance = np.where(screened, scores.propensity * scores.net_value, -np.inf)
    return {
        "nba": nba,
        "propensity_only": propensity_only,
        "acceptance_only": _best_positive(acceptance),
    }


def widen_scores(scores: Scores, own: Catalog, wider: Catalog) -> Scores:
    """``scores`` of a policy whose catalog ``own`` lacks some actions of ``wider`` (it
    was trained before they were launched), laid out on ``wider``'s actions: the ones it
    does not know are ineligible for it, so it never chooses them."""
    missing = [a for a in own.ids if a not in wider.ids]
    if missing:
        raise ValueError(f"actions {missing} are not in the wider catalog")
    at = np.array([wider.ids.index(a) for a in own.ids], dtype=np.int64)
    n, k = scores.propensity.shape[0], len(wider.actions)

    def spread(m: np.ndarray | None, fill: float | int) -> np.ndarray | None:
        if m is None:
            return None
        out = np.full((n, k), fill, dtype=m.dtype)
        out[:, at] = m
        return out

    status = spread(scores.status, RULE_ELIGIBILITY)
    assert status is not None
    return Scores(
        spread(scores.propensity, np.nan),  # type: ignore[arg-type]
        spread(scores.net_value, np.nan),  # type: ignore[arg-type]
        spread(scores.priority, -np.inf),  # type: ignore[arg-type]
        status,
        spread(scores.count, 0),  # type: ignore[arg-type]
        spread(scores.change, np.nan),
        spread(scores.cost, np.nan),
    )


def _best_positive(priority: np.ndarray) -> np.ndarray:
    """Per row the column of the highest priority above zero, else -1 (nothing)."""
    p = np.nan_to_num(priority, nan=-np.inf)
    best = np.argmax(p, axis=1)
    return np.where(p[np.arange(p.shape[0]), best] > 0, best, -1)


def truth_matrix(
    truth: pd.DataFrame, contact_ids: list[str], ids: list[str], column: str
) -> np.ndarray:
    """One column of the simulator's truth as a (contact x action) matrix, in the order
    given; NaN where the truth has no row."""
    t = truth.set_index(["contact_id", "action_id"])[column]
    idx = pd.MultiIndex.from_product([contact_ids, ids])
    return t.reindex(idx).to_numpy().reshape(len(contact_ids), len(ids))


def evaluate_against_truth(
    scores: Scores,
    catalog: Catalog,
    contact_ids: list[str],
    truth: pd.DataFrame,
    profile_x: np.ndarray | None = None,
) -> TruthEvaluation:
    """Score the policy and baselines with the simulator's ground truth.

    ``truth`` is ``truth/expected_value.parquet``; rows of ``scores`` follow
    ``contact_ids``; ``profile_x`` (the contacts' profiles) gives the fees for the
    retention-habit baseline.
    """
    k = len(catalog.actions)
    ids = [*catalog.ids, NO_ACTION]
    total = truth_matrix(truth, contact_ids, ids, "expected_total").astype(float)
    eligible = truth_matrix(truth, contact_ids, ids, "eligible")
    eligible = np.where(pd.isna(eligible), False, eligible).astype(bool)
    if np.isnan(total).any():
        raise ValueError("truth does not cover every scored contact and action")
    n = len(contact_ids)
    rows = np.arange(n)
    nothing_value = total[:, k]
    # Every policy, the oracle included, chooses among what the contact policy allows (the
    # company's limits are the business's choice, not the model's error); their cost is
    # reported apart.
    held_back = np.isin(scores.status, CONTACT_POLICY_RULES)
    acts = total[:, :k]
    free_best = np.nanmax(np.where(eligible[:, :k], acts, -np.inf), axis=1)
    act_elig = eligible[:, :k] & ~held_back
    any_elig = act_elig.any(axis=1)
    # The mean over each contact's allowed actions (none allowed: nothing's value), summed
    # by hand: nanmean warns on every contact without one.
    known = act_elig & ~np.isnan(acts)
    n_known = known.sum(axis=1)
    total_known = np.where(known, acts, 0.0).sum(axis=1)
    mean_known = np.divide(total_known, n_known, out=np.full(len(acts), np.nan), where=n_known > 0)
    v_random = np.where(any_elig, mean_known, nothing_value)
    with np.errstate(all="ignore"):
        best_action = np.nanmax(np.where(act_elig, acts, -np.inf), axis=1)
    v_oracle = np.maximum(best_action, nothing_value)
    picked = choices(scores, catalog)
    p_true = truth_matrix(truth, contact_ids, ids, "p_accept")[:, :k].astype(float)
    gross = truth_matrix(truth, contact_ids, ids, "value")[:, :k].astype(float)
    cost = truth_matrix(truth, contact_ids, ids, "cost")[:, :k].astype(float)
    picked["true_acceptance"] = _best_positive(
        np.where(act_elig, p_true * (gross - cost), -np.inf)
    )
    is_retention = np.array([a.family == "retention_gesture" for a in catalog.actions])
    fees = np.nan_to_num(profile_x[:, FEES_COLUMN]) if profile_x is not None else np.zeros(n)
    screened = np.isfinite(scores.propensity * scores.net_value) & (
        (scores.status == OK) | (scores.status == RULE_NOT_WORTH_IT)
    )
    habit_net = scores.net_value + np.outer(fees * RETENTION_MONTHS, is_retention)
    picked["retention_habit"] = _best_positive(
        np.where(screened, scores.propensity * habit_net, -np.inf)
    )

    def value_of(choice: np.ndarray) -> np.ndarray:
        return np.where(choice >= 0, total[rows, np.maximum(choice, 0)], nothing_value)

    is_product = np.array([a.family == "product_offer" for a in catalog.actions])
    catalog_net = np.nan_to_num(scores.net_value, nan=-np.inf)
    prod = np.where(act_elig & is_product, catalog_net, -np.inf)
    has_prod = (act_elig & is_product).any(axis=1)
    per_contact = {
        **{p: value_of(c) for p, c in picked.items()},
        "nothing": nothing_value,
        "random": v_random,
        "product_first": np.where(has_prod, acts[rows, np.argmax(prod, axis=1)], v_random),
        "oracle": v_oracle,
    }
    values = {p: float(per_contact[p].mean()) for p in POLICIES}
    span = values["oracle"] - values["random"]
    normalised = {
        p: (values[p] - values["random"]) / span if span > 0 else float("nan") for p in POLICIES
    }
    best_index = np.argmax(np.where(act_elig, acts, -np.inf), axis=1)
    oracle_pick = np.where(best_action > nothing_value, best_index, -1)
    family_names = np.array([*(a.family for a in catalog.actions), "nothing"], dtype=object)
    best_family = family_names[np.where(oracle_pick >= 0, oracle_pick, k)]
    frame = pd.DataFrame({p: per_contact[p] for p in POLICIES})
    frame["family"] = best_family
    by_family = frame.groupby("family").mean()
    spans = by_family["oracle"] - by_family["random"]
    out = pd.DataFrame(
        {
            p: (by_family[p] - by_family["random"]) / spans.where(spans > 0)
            for p in ("nba", "acceptance_only", "product_first", "true_acceptance")
        }
    )
    out["contacts"] = frame.groupby("family").size()
    chosen = picked["nba"]
    mix = pd.Series(family_names[np.where(chosen >= 0, chosen, k)])
    shares = {str(f): float(v) for f, v in mix.value_counts(normalize=True).round(4).items()}
    nothing_share = {
        p: float((c < 0).mean()) for p, c in {**picked, "oracle": oracle_pick}.items()
    }
    revenue = truth_matrix(truth, contact_ids, ids, "expected_revenue").astype(float)
    spend = {}
    for p, c in {**picked, "oracle": oracle_pick}.items():
        g = (c >= 0) & is_retention[np.maximum(c, 0)] & (fees > 0)
        j = np.maximum(c, 0)[g]
        # One customer kept = the fees held, over the whole horizon.
        whole = fees[g] * catalog.horizon_days / 30.44
        kept = (revenue[g, j] - revenue[g, k]) / whole
        spent = p_true[g, j] * cost[g, j]
        spend[p] = float(spent.sum() / kept.sum()) if kept.sum() > 0 else float("nan")
    se = truth_matrix(truth, contact_ids, ids, "mc_se").astype(float)
    se_nba = np.where(chosen >= 0, se[rows, np.maximum(chosen, 0)], 0.0)
    mc_error = float(np.sqrt((se_nba**2).sum()) / n / span) if span > 0 and n else float("nan")
    agreement = {
        a: float((chosen[oracle_pick == j] == j).mean())
        for j, a in enumerate(catalog.ids)
        if (oracle_pick == j).any()
    }
    policy_cost = float(np.mean(np.maximum(free_best, nothing_value) - v_oracle)) if n else 0.0
    return TruthEvaluation(
        values,
        normalised,
        out,
        n,
        shares,
        nothing_share,
        spend,
        mc_error,
        agreement,
        held_back_share=float((held_back & eligible[:, :k]).any(axis=1).mean()) if n else 0.0,
        contact_policy_cost=policy_cost,
    )


def snipw(
    chosen: np.ndarray, logged: np.ndarray, propensity: np.ndarray, reward: np.ndarray
) -> float:
    """Self-normalised IPW estimate of a deterministic policy's value from a log.

    All arrays have shape ``(n,)``: the policy's choice and the logged action (catalog
    indices), the logging propensity and the observed reward.
    """
    w = (chosen == logged) / propensity
    return float((w * reward).sum() / w.sum()) if w.sum() > 0 else float("nan")
