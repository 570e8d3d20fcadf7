"""Arbitration: which actions may be shown, and in which order.

For each contact and catalog action, in this order: the action's eligibility rule and the
contract's built-in rules, the channel, the contact policy (offers in a window, declines),
then priority = propensity x (value - cost) x lever. Actions at or below zero are dropped:
recommending nothing is a valid answer. Every dropped action keeps the rule that dropped it.
Ties are broken by catalog order, so the same input always gives the same ranking.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from nba.catalog import Catalog
from nba.profiles import NUMERIC_FEATURE_NAMES

OK = 0
RULE_ELIGIBILITY = 1
RULE_EMAIL_KNOWN = 2
RULE_PRODUCT_HELD = 3
RULE_CHANNEL = 4
RULE_MAX_OFFERS = 5
RULE_DECLINES = 6
RULE_VALUE_UNKNOWN = 7
RULE_NOT_WORTH_IT = 8


@dataclass
class History:
    """Past decisions of the contacts' customers, as flat arrays of shape ``(m,)``.

    ``contact`` indexes the batch's contacts; ``action`` is a catalog index (-1 for an action
    not in the catalog); ``age_days`` is the time before the contact; ``declined`` marks a
    declined outcome.
    """

    contact: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    action: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    age_days: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=float))
    declined: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))


@dataclass
class Screen:
    """Result of the rules before scoring: ``status[i, j]`` is OK or the rule that fired,
    with ``count[i, j]`` the offers or declines that triggered a contact-policy rule."""

    status: np.ndarray
    count: np.ndarray


def _window_counts(hist: History, mask: np.ndarray, days: float, n: int, j: int) -> np.ndarray:
    sel = (hist.action == j) & mask & (hist.age_days <= days)
    return np.bincount(hist.contact[sel], minlength=n)


def _codes(values: list[str]) -> tuple[list[str], np.ndarray]:
    """(distinct values, each value's index among them)."""
    index: dict[str, int] = {}
    codes = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int64, len(values))
    return list(index), codes


def screen(
    catalog: Catalog,
    features: Mapping[str, np.ndarray],
    active_products: list[str],
    channels: list[str],
    history: History,
) -> Screen:
    """Apply every rule that does not need the model. Shapes: ``(n_contacts, n_actions)``."""
    n, k = len(channels), len(catalog.actions)
    status = np.zeros((n, k), dtype=np.int8)
    count = np.zeros((n, k), dtype=np.int32)
    # Per distinct value, not per contact: a batch has millions of contacts, few combinations.
    held_kinds, held_of = _codes(active_products)
    held = [set(p.split(",")) if p else set() for p in held_kinds]
    channel_kinds, channel_of = _codes(channels)
    all_rows = np.ones(history.contact.shape[0], dtype=bool)
    has_history = bool(history.contact.shape[0])  # no past decisions: no contact-policy rule

    def mark(j: int, rows: np.ndarray, rule: int) -> None:
        free = rows & (status[:, j] == OK)
        status[free, j] = rule

    for j, a in enumerate(catalog.actions):
        if a.eligibility is not None:
            ok = a.eligibility.evaluate(features, n).astype(bool)
            mark(j, ~ok, RULE_ELIGIBILITY)
        if a.family == "information_request":
            mark(j, features["email_known"] > 0, RULE_EMAIL_KNOWN)
        if a.product is not None:
            holds = np.array([a.product in h for h in held], dtype=bool)[held_of]
            mark(j, holds, RULE_PRODUCT_HELD)
        allowed = np.array([c in a.channels for c in channel_kinds], dtype=bool)[channel_of]
        mark(j, ~allowed, RULE_CHANNEL)
        if not has_history:
            continue
        cp = a.contact_policy
        if cp.max_offers is not None and cp.window_days is not None:
            offers = _window_counts(history, all_rows, cp.window_days, n, j)
            hit = offers >= cp.max_offers
            count[hit & (status[:, j] == OK), j] = offers[hit & (status[:, j] == OK)]
            mark(j, hit, RULE_MAX_OFFERS)
        if cp.suppress_after_declines is not None and cp.suppress_days is not None:
            declines = _window_counts(history, history.declined, cp.suppress_days, n, j)
            hit = declines >= cp.suppress_after_declines
            count[hit & (status[:, j] == OK), j] = declines[hit & (status[:, j] == OK)]
            mark(j, hit, RULE_DECLINES)
    return Screen(status, count)


def amounts(
    catalog: Catalog, features: Mapping[str, np.ndarray], n: int
) -> tuple[np.ndarray, np.ndarray]:
    """((value - cost) x lever, cost) per contact and action, shapes ``(n, n_actions)``."""
    net = np.empty((n, len(catalog.actions)))
    cost = np.empty((n, len(catalog.actions)))
    for j, a in enumerate(catalog.actions):
        cost[:, j] = a.cost_of(features, n)
        net[:, j] = (a.value_of(features, n) - cost[:, j]) * a.lever
    return net, cost


def rule_text(catalog: Catalog, j: int, rule: int, count: int, channel: str) -> str:
    """The plain-language rule that removed action ``j``."""
    a = catalog.actions[j]
    cp = a.contact_policy
    texts = {
        RULE_ELIGIBILITY: "eligibility rule not met: "
        + (a.eligibility.source if a.eligibility else ""),
        RULE_EMAIL_KNOWN: "e-mail address already known",
        RULE_PRODUCT_HELD: f"customer already has {a.product}",
        RULE_CHANNEL: f"not offered on {channel}",
        RULE_MAX_OFFERS: f"contact policy: offered {_times(count)} in the last "
        f"{cp.window_days} days (limit {cp.max_offers})",
        RULE_DECLINES: f"contact policy: declined {_times(count)} in the last "
        f"{cp.suppress_days} days",
        RULE_VALUE_UNKNOWN: "value unknown for this customer",
        RULE_NOT_WORTH_IT: "expected net value not above zero",
    }
    return texts[rule]


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


_FEATURE_INDEX = {name: j for j, name in enumerate(NUMERIC_FEATURE_NAMES)}


class FeatureColumns(Mapping[str, np.ndarray]):
    """Name -> column view of a profile matrix, for expressions. Columns are taken when
    asked for: an expression reads two or three of the 126 (this runs on every answer)."""

    def __init__(self, x_profiles: np.ndarray) -> None:
        self._x = x_profiles

    def __getitem__(self, name: str) -> np.ndarray:
        column: np.ndarray = self._x[:, _FEATURE_INDEX[name]]
        return column

    def __iter__(self) -> Iterator[str]:
        return iter(_FEATURE_INDEX)

    def __len__(self) -> int:
        return len(_FEATURE_INDEX)


def feature_arrays(x_profiles: np.ndarray) -> FeatureColumns:
    """Name -> column view of a profile matrix, for expressions."""
    return FeatureColumns(x_profiles)
