"""Ground truth of the simulated world: how likely a customer accepts each action.

This is the simulator's secret. The engine never sees it; it only sees the outcomes drawn
from it and the interaction history that the latent state leaves behind. Each family works
for different customers:

- installment offers for customers in financial stress (missed payments, billing questions);
- retention gestures for dissatisfied customers, above all when they ask to cancel;
- information requests for digital, reasonably happy customers;
- product offers for satisfied customers who need the product; they backfire on unhappy or
  stressed customers (low acceptance, and a declined offer raises dissatisfaction).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nba.catalog import Catalog

# Per-action adjustments to the family's logit, for the default catalog's actions.
ACTION_OFFSET: dict[str, float] = {
    "retention_fee_waiver": 0.0,
    "retention_loyalty_discount": -0.3,
    "retention_free_upgrade": 0.3,
    "installment_plan_3m": 0.0,
    "installment_plan_6m": -0.4,
    "payment_holiday": -0.2,
    "offer_broadband": 0.0,
    "offer_tv_stream": 0.2,
    "offer_mobile_plus": -0.1,
    "offer_device_insurance": 0.4,
}
CHANNEL_OFFSET: dict[str, float] = {"branch": 0.3, "phone": 0.0, "chat": -0.2}


@dataclass(frozen=True)
class ContactState:
    """Latent state at a batch of contacts; every array has shape ``(m,)``.

    ``need`` has shape ``(m, n_products)`` with columns in ``products`` order.
    """

    stress: np.ndarray
    dissatisfaction: np.ndarray
    digital: np.ndarray
    need: np.ndarray
    products: tuple[str, ...]
    reason: np.ndarray
    channel: np.ndarray


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


def acceptance_probability(state: ContactState, catalog: Catalog) -> np.ndarray:
    """True probability that each contact accepts each action.

    Returns
    -------
    numpy.ndarray
        Shape ``(m, n_actions)``, actions in catalog order.
    """
    m = state.stress.shape[0]
    s, d, g = state.stress, state.dissatisfaction, state.digital
    ch = np.zeros(m)
    for name, off in CHANNEL_OFFSET.items():
        ch += off * (state.channel == name)
    cancel = (state.reason == "cancellation_request").astype(float)
    complaint = (state.reason == "complaint").astype(float)
    billing = (state.reason == "billing_question").astype(float)
    out = np.empty((m, len(catalog.actions)))
    for j, action in enumerate(catalog.actions):
        off = ACTION_OFFSET.get(action.id, 0.0)
        if action.family == "installment_offer":
            logit = -3.8 + 6.5 * s + 0.9 * billing - 0.8 * d
            if action.id == "installment_plan_6m":
                logit += 1.2 * s  # deeper trouble prefers smaller payments
        elif action.family == "retention_gesture":
            logit = -4.0 + 5.5 * d + 1.8 * cancel + 0.7 * complaint - 0.5 * s
            if action.id == "retention_free_upgrade":
                logit += 1.0 * g - 0.5  # appeals to digital customers
        elif action.family == "information_request":
            logit = -0.9 + 2.4 * g - 3.0 * d
        else:
            k = state.products.index(action.product) if action.product in state.products else -1
            need = state.need[:, k] if k >= 0 else np.zeros(m)
            logit = -2.8 + 4.5 * need - 5.0 * d - 3.5 * s + 0.5 * g - 1.0 * cancel
        out[:, j] = _sigmoid(logit + off + ch)
    return out
