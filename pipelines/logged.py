"""The policy on logged decisions: the decisions as the policy's contacts (profile, context,
prior history), its scores there, the logged feedback (action, propensity, reward) and the
self-normalised IPW values of the policy and its baselines. Shared by training (its test
part and the fixed yardstick) and evaluation (champion against challenger)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nba.catalog import NO_ACTION, Catalog
from nba.contract import Dataset
from nba.inputs import history_for
from nba.policy.evaluation import choices, snipw
from nba.policy.frames import contacts_from_frame
from nba.policy.policy import Contacts, Policy, Scores
from nba.profiles import NUMERIC_FEATURE_NAMES


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    err = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            err += sel.mean() * abs(y[sel].mean() - p[sel].mean())
    return float(err)


def action_metrics(frame: pd.DataFrame, y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    rows = []
    for action, idx in frame.groupby("action_id").indices.items():
        ya, pa_ = y[idx], p[idx]
        both = 0 < ya.sum() < len(ya)
        rows.append(
            {
                "action_id": action,
                "n": len(idx),
                "accept_rate": ya.mean(),
                "mean_propensity": pa_.mean(),
                "auc": roc_auc_score(ya, pa_) if both else np.nan,
                "log_loss": log_loss(ya, pa_, labels=[0, 1]),
                "brier": brier_score_loss(ya, pa_),
                "ece": ece(ya, pa_),
            }
        )
    return pd.DataFrame(rows).set_index("action_id")


def logged_contacts(policy: Policy, dataset: Dataset, rounds: pd.DataFrame) -> Contacts:
    """Logged decisions (rows of :func:`training_frame`) as the policy's contacts, each at
    the decision's moment with its profile and prior history."""
    return contacts_from_frame(logged_inputs(dataset, rounds), policy.catalog)


def logged_inputs(dataset: Dataset, rounds: pd.DataFrame) -> pd.DataFrame:
    """Logged decisions as policy inputs: profile, contact and prior history (JSON)."""
    contacts = pd.DataFrame(
        {
            "contact_id": rounds["decision_id"],
            "customer_id": rounds["customer_id"],
            "timestamp": rounds["timestamp"],
            "channel": rounds["channel"],
            "reason": rounds["reason"],
        }
    )
    frame = rounds[[*NUMERIC_FEATURE_NAMES, "active_products"]].reset_index(drop=True)
    frame = pd.concat([frame, contacts.reset_index(drop=True)], axis=1)
    frame["history"] = history_for(dataset, contacts)
    return frame


def logged_scores(policy: Policy, dataset: Dataset, rounds: pd.DataFrame) -> Scores:
    """The policy's scores for logged decisions (rows of :func:`training_frame`)."""
    scores = policy.score(logged_contacts(policy, dataset, rounds))
    return scores


def logged_feedback(
    rounds: pd.DataFrame, catalog: Catalog
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logged action index, -1 for nothing; logging propensity; reward: the realised value,
    0 when not known, plus the long-term revenue estimate where ``rounds`` has one)."""
    index = {a: j for j, a in enumerate(catalog.ids)} | {NO_ACTION: -1}
    logged = np.array([index[a] for a in rounds["action_id"]], dtype=np.int64)
    prop = rounds["propensity"].to_numpy(dtype=float)
    reward = rounds["value"].fillna(0).to_numpy(dtype=float)
    if "long_term_revenue" in rounds:
        reward = reward + rounds["long_term_revenue"].fillna(0).to_numpy(dtype=float)
    return logged, prop, reward


def logged_policy_values(
    policy: Policy,
    dataset: Dataset | None,
    test: pd.DataFrame,
    catalog: Catalog,
    inputs: pd.DataFrame | None = None,
) -> dict[str, float]:
    """SNIPW estimates, on the test period's log, of the NBA and the baselines. ``inputs``
    (the decisions as policy inputs, :func:`logged_inputs`) replaces reading them from
    ``dataset``: a frozen yardstick carries its own."""
    if inputs is None:
        if dataset is None:
            raise ValueError("logged_policy_values needs the dataset or the inputs")
        inputs = logged_inputs(dataset, test)
    scores = policy.score(contacts_from_frame(inputs, policy.catalog))
    picked = choices(scores, catalog)
    logged, prop, reward = logged_feedback(test, catalog)
    product = np.array([a.family == "product_offer" for a in catalog.actions])
    net = np.where(product, np.nan_to_num(scores.net_value, nan=-np.inf), -np.inf)
    product_first = np.where(np.isfinite(net.max(axis=1)), np.argmax(net, axis=1), -2)
    return {
        "logged_value_logging_policy": float(reward.mean()),
        "logged_value_nba_snipw": snipw(picked["nba"], logged, prop, reward),
        "logged_value_propensity_only_snipw": snipw(
            picked["propensity_only"], logged, prop, reward
        ),
        "logged_value_product_first_snipw": snipw(product_first, logged, prop, reward),
        "logged_value_acceptance_only_snipw": snipw(
            picked["acceptance_only"], logged, prop, reward
        ),
        "logged_value_nothing_snipw": snipw(np.full(len(logged), -1), logged, prop, reward),
    }
