"""Arbitration: which actions may be shown, and in which order.

For each contact and catalog action, in this order: the action's eligibility rule and the
contract's built-in rules, the channel, the action's contact policy (offers in a window,
declines), the company's contact policy (per family, across all actions, a pause after an
accepted action: :mod:`nba.contact_policy`), then priority = propensity x (value - cost) x
lever. Actions at or below zero are dropped: recommending nothing is a valid answer. Every
dropped action keeps the rule that dropped it. Ties are broken by catalog order, so the
same input always gives the same ranking.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from nba.catalog import Catalog
from nba.policy.contact_rules import (
    ALL_ACTIONS,
    COMPANY_RULES,
    OK,
    RULE_ALL_DECLINES,
    RULE_ALL_OFFERS,
    RULE_DECLINES,
    RULE_FAMILY_OFFERS,
    RULE_MAX_OFFERS,
    RULE_PAUSE,
    apply_contact_rules,
)
from nba.profiles import NUMERIC_FEATURE_NAMES
from nba.vocabulary import FAMILIES

RULE_ELIGIBILITY = 1
RULE_EMAIL_KNOWN = 2
RULE_PRODUCT_HELD = 3
RULE_CHANNEL = 4
RULE_VALUE_UNKNOWN = 7
RULE_NOT_WORTH_IT = 8


@dataclass
class History:
    """Past decisions of the contacts' customers, as flat arrays of shape ``(m,)``.

    ``contact`` indexes the batch's contacts; ``action`` is a catalog index (-1 for an action
    not in the catalog); ``age_days`` is the time before the contact; ``declined`` and
    ``accepted`` mark those outcomes (``accepted`` may be left out: none).
    """

    contact: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    action: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    age_days: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=float))
    declined: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    accepted: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))

    def __post_init__(self) -> None:
        if self.accepted.shape != self.contact.shape:
            self.accepted = np.zeros(self.contact.shape, dtype=bool)

    @classmethod
    def from_rows(cls, rows: list[tuple[int, int, float, bool, bool]]) -> History:
        """From ``(contact, action, age_days, declined, accepted)`` tuples."""
        if not rows:
            return cls()
        contact, action, age, declined, accepted = zip(*rows, strict=True)
        return cls(
            np.array(contact, dtype=int),
            np.array(action, dtype=int),
            np.array(age, dtype=float),
            np.array(declined, dtype=bool),
            np.array(accepted, dtype=bool),
        )


@dataclass
class Screen:
    """Result of the rules before scoring: ``status[i, j]`` is OK or the rule that fired,
    with ``count[i, j]`` the offers or declines that triggered a contact-policy rule (for a
    pause: the family code of the accepted action, or :data:`ALL_ACTIONS`) and
    ``age[i, j]`` the days since the newest of them."""

    status: np.ndarray
    count: np.ndarray
    age: np.ndarray | None = None


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
    age = np.full((n, k), np.inf)
    # Per distinct value, not per contact: a batch has millions of contacts, few combinations.
    held_kinds, held_of = _codes(active_products)
    held = [set(p.split(",")) if p else set() for p in held_kinds]
    channel_kinds, channel_of = _codes(channels)

    # One (contact x action) matrix per rule, in the rules' order; a cell keeps the first
    # rule that holds it back.
    failed = np.zeros((n, k), dtype=bool)
    for j, a in enumerate(catalog.actions):
        if a.eligibility is not None:
            failed[:, j] = ~a.eligibility.evaluate(features, n).astype(bool)
    status[failed] = RULE_ELIGIBILITY
    asks = [j for j, a in enumerate(catalog.actions) if a.family == "information_request"]
    if asks:
        known = np.zeros((n, k), dtype=bool)
        known[:, asks] = (features["email_known"] > 0)[:, None]
        status[known & (status == OK)] = RULE_EMAIL_KNOWN
    holds = np.array(
        [[a.product is not None and a.product in h for a in catalog.actions] for h in held],
        dtype=bool,
    ).reshape(len(held), k)[held_of]
    status[holds & (status == OK)] = RULE_PRODUCT_HELD
    barred = np.array(
        [[c not in a.channels for a in catalog.actions] for c in channel_kinds], dtype=bool
    ).reshape(len(channel_kinds), k)[channel_of]
    status[barred & (status == OK)] = RULE_CHANNEL
    apply_contact_rules(catalog, history, status, count, age)
    return Screen(status, count, age)


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


def rule_text(
    catalog: Catalog, j: int, rule: int, count: int, channel: str, age: float = np.inf
) -> str:
    """The plain-language rule that removed action ``j`` (``count`` and ``age``: from the
    :class:`Screen`)."""
    a = catalog.actions[j]
    cp = catalog.company_policy.for_action(a.contact_policy)
    if rule in COMPANY_RULES:
        return _company_text(catalog, a.family, rule, count, age)
    if rule == RULE_DECLINES and age < 1:
        return (
            "contact policy: the customer declined it just now"
            if age < 1 / 24
            else ("contact policy: the customer declined it earlier today")
        )
    texts = {
        # The condition itself (an expression over feature names) is not for agents.
        RULE_ELIGIBILITY: "its conditions do not fit this customer",
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


def _company_text(catalog: Catalog, family: str, rule: int, count: int, age: float) -> str:
    company = catalog.company_policy
    if rule == RULE_PAUSE:
        code = count
        gp = company.all_actions if code == ALL_ACTIONS else company.families[FAMILIES[code]]
        what = "an offer" if code == ALL_ACTIONS else f"a {_label(FAMILIES[code])}"
        return (
            f"contact policy: the customer accepted {what} {_ago(age)}; nothing more is "
            f"offered for {gp.quiet_days_after_accepted} days after that"
        )
    whole = rule in (RULE_ALL_OFFERS, RULE_ALL_DECLINES)
    gp = company.all_actions if whole else company.families[family]
    if rule in (RULE_FAMILY_OFFERS, RULE_ALL_OFFERS):
        what = "offer" if whole else _label(family)
        what = f"{count} {what}" + ("" if count == 1 else "s") + (" of any kind" if whole else "")
        return (
            f"contact policy: {what} in the last {gp.window_days} days (at most {gp.max_offers})"
        )
    what = "offers of any kind" if whole else f"{_label(family)}s"
    return f"contact policy: {what} declined {_times(count)} in the last {gp.suppress_days} days"


def _label(family: str) -> str:
    return family.replace("_", " ")


def _ago(days: float) -> str:
    if days < 1:
        return "today"
    whole = int(days)
    return "yesterday" if whole == 1 else f"{whole} days ago"


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
