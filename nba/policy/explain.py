"""Plain-language reasons for agents, from per-prediction contributions.

The response model's ``pred_contrib`` says which inputs pushed an action's acceptance up.
The strongest positive ones become short sentences in the customer's terms ("two missed
payments in the last 3 months", "asked to cancel"); raw feature names never reach agents.
"""

from __future__ import annotations

import math
import re

import numpy as np

from nba.policy.design import MODEL_COLUMNS, base_feature
from nba.vocabulary import INTERACTION_TYPES

_NUMBERS = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_WINDOW = {
    7: "this week",
    30: "in the last 30 days",
    90: "in the last 3 months",
    365: "in the last year",
}
_TYPE_NOUN = {
    "inquiry": ("inquiry", "inquiries"),
    "complaint": ("complaint", "complaints"),
    "cancellation_request": ("cancellation request", "cancellation requests"),
    "billing_question": ("billing question", "billing questions"),
    "payment": ("payment", "payments"),
    "missed_payment": ("missed payment", "missed payments"),
    "login": ("login", "logins"),
    "purchase": ("purchase", "purchases"),
    "contract_change": ("contract change", "contract changes"),
    "other": ("other contact", "other contacts"),
    "interactions": ("contact", "contacts"),
}
_FAMILY_NOUN = {
    "retention_gesture": "retention offer",
    "installment_offer": "installment offer",
    "information_request": "information request",
    "product_offer": "product offer",
}
_REASON_TEXT = {
    "inquiry": "is asking a question",
    "complaint": "is calling to complain",
    "cancellation_request": "asked to cancel",
    "billing_question": "has a billing question",
    "contract_change": "wants to change the contract",
    "missed_payment": "is calling about a missed payment",
    "payment": "is calling about a payment",
    "purchase": "is calling about a purchase",
}
# Inputs that are not about the customer: never a reason.
_SILENT = {"ctx_action", "ctx_family", "ctx_channel", "monthly_fees", "n_interactions_7d"}


def _count(n: float, singular: str, plural: str) -> str:
    k = round(n)
    word = _NUMBERS[k] if 0 <= k < len(_NUMBERS) else str(k)
    return f"{word} {singular if k == 1 else plural}"


def _days(d: float) -> str:
    k = round(d)
    if k <= 0:
        return "today"
    if k == 1:
        return "yesterday"
    return f"{k} days ago"


def sentence(feature: str, value: float | None, reason: str | None = None) -> str | None:
    """A plain sentence for one input and its value; ``None`` if it has nothing to say."""
    if feature == "ctx_reason":
        return f"customer {_REASON_TEXT[reason]}" if reason in _REASON_TEXT else None
    if feature in _SILENT:
        return None
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    v = 0.0 if missing else float(value)  # type: ignore[arg-type]
    m = re.fullmatch(r"n_(.+)_(\d+)d", feature)
    if m and m.group(1) in _TYPE_NOUN:
        one, many = _TYPE_NOUN[m.group(1)]
        return f"{_count(v, one, many)} {_WINDOW[int(m.group(2))]}"
    if m and m.group(1).startswith("via_"):
        channel = m.group(1)[4:]
        return f"{_count(v, 'contact', 'contacts')} by {channel} {_WINDOW[int(m.group(2))]}"
    m = re.fullmatch(r"n_(offers|declines|accepts)_(.+)_(\d+)d", feature)
    if m:
        verb = {"offers": "was offered", "declines": "declined", "accepts": "accepted"}[m[1]]
        noun = _FAMILY_NOUN[m[2]]
        return f"{verb} {_count(v, noun, noun + 's')} {_WINDOW[int(m[3])]}"
    m = re.fullmatch(r"days_since_(.+)", feature)
    if m:
        what = m.group(1)
        if what.startswith("offer_"):
            noun = _FAMILY_NOUN[what[6:]]
            return f"no {noun} {_WINDOW[365]}" if missing else f"last {noun} {_days(v)}"
        if what == "interaction":
            return "no contact in the last year" if missing else f"last contact {_days(v)}"
        if what in INTERACTION_TYPES:
            one, many = _TYPE_NOUN[what]
            return f"no {many} {_WINDOW[365]}" if missing else f"last {one} {_days(v)}"
        if what == "contract_start":
            return None if missing else f"newest contract started {_days(v)}"
    return _other_sentence(feature, v, missing)


def _other_sentence(feature: str, v: float, missing: bool) -> str | None:
    if feature.startswith("sentiment_mean"):
        if missing:
            return None
        mood = "unhappy" if v < -0.2 else "satisfied" if v > 0.2 else "neutral"
        window = _WINDOW[int(feature.rsplit("_", 1)[1][:-1])]
        return f"sounded {mood} in contacts {window}"
    texts: dict[str, str | None] = {
        "sentiment_trend": None
        if missing
        else ("getting unhappier lately" if v < 0 else "mood improving lately"),
        "complaint_trend": "complaining more than before"
        if v > 0
        else "complaining less than before"
        if v < 0
        else "no change in complaints",
        "missed_payment_ratio_365d": f"missed {v:.0%} of payments in the last year",
        "amount_missed_90d": f"{v:,.2f} in missed payments in the last 3 months",
        "amount_paid_90d": f"paid {v:,.2f} in the last 3 months",
        "amount_purchased_365d": f"bought for {v:,.2f} in the last year",
        "n_sentiment_known_90d": None,
        "n_negative_sentiment_90d": f"{_count(v, 'unhappy contact', 'unhappy contacts')} "
        "in the last 3 months",
        "tenure_days": None if missing else f"customer for {v / 365.25:.1f} years",
        "age_years": None if missing else f"aged {v:.0f}",
        "email_known": "e-mail address on file" if v else "no e-mail address on file",
        "monthly_revenue": None if missing else f"pays {v:,.2f} a month",
        "is_business": "business customer" if v else "private customer",
        "n_active_products": f"has {_count(v, 'product', 'products')}",
        "n_products_ended_90d": f"ended {_count(v, 'product', 'products')} in the last 3 months",
    }
    return texts.get(feature)


def top_reasons(
    contributions: list[float],
    values: list[float | None],
    reason: str | None,
    k: int = 3,
) -> list[str]:
    """The ``k`` strongest positive contributions as distinct sentences.

    ``contributions`` and ``values`` follow ``MODEL_COLUMNS`` order (``values`` holds the
    row's inputs; the reason code's value is ignored in favour of ``reason``).
    """
    c = np.asarray(contributions[: len(MODEL_COLUMNS)], dtype=float)
    # Largest first, ties by column order (lexsort's last key is the primary one).
    order = np.lexsort((np.arange(c.size), -c))
    out: list[str] = []
    for j in order.tolist():
        if c[j] <= 0 or len(out) >= k:
            break
        text = sentence(base_feature(MODEL_COLUMNS[j]), values[j], reason)
        if text and text not in out:
            out.append(text)
    return out
