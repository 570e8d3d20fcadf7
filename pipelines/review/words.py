"""Numbers in plain words: money with its currency, intervals, shares, small-sample
warnings. Shared by every run summary so that all of them read alike."""

from __future__ import annotations

import math

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}
FEW_CASES = 200
"""Below this many cases a number is told with a warning: read it as a hint only."""


def money(value: float, currency: str = "EUR", signed: bool = False) -> str:
    """``€12.35``, ``-€3.10``, ``+€1.40`` (signed), ``12.35 CHF`` for other currencies."""
    if value is None or not math.isfinite(value):
        return "not known"
    sign = ("+" if signed and value >= 0 else "") + ("-" if value < 0 else "")
    amount = f"{abs(value):,.2f}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def interval(low: float, high: float, currency: str = "EUR") -> str:
    """``[-€0.60, +€3.40]``, or "interval not known"."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "[interval not known]"
    return f"[{money(low, currency, True)}, {money(high, currency, True)}]"


def share(value: float) -> str:
    return "not known" if not math.isfinite(value) else f"{value:.1%}"


def family_label(family: str) -> str:
    """A catalog family as words: ``retention_gesture`` -> ``retention gesture``."""
    return str(family).replace("_", " ")


def few_cases(n: int, what: str = "contacts") -> str:
    """The warning for a number resting on ``n`` cases, or "" when there are enough."""
    if n >= FEW_CASES:
        return ""
    return f"only {n:,} {what}: read this as a hint, not a measurement"
