"""The contact policies applied to a batch of contacts (:mod:`nba.contact_policy` says
what they are): each action's own limits, then the company's per family and across all
actions, then the pause after an accepted action.

Worked on whole ``(n_contacts, n_actions)`` matrices, one count per window and kind of
past decision, not per action: an API answer is one contact, where a dozen small numpy
calls per action would cost more than the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nba.vocabulary import FAMILIES

if TYPE_CHECKING:
    from nba.catalog import Catalog
    from nba.policy.arbitration import History

OK = 0
RULE_MAX_OFFERS = 5
RULE_DECLINES = 6
RULE_FAMILY_OFFERS = 9
RULE_FAMILY_DECLINES = 10
RULE_ALL_OFFERS = 11
RULE_ALL_DECLINES = 12
RULE_PAUSE = 13
COMPANY_RULES = (
    RULE_FAMILY_OFFERS,
    RULE_FAMILY_DECLINES,
    RULE_ALL_OFFERS,
    RULE_ALL_DECLINES,
    RULE_PAUSE,
)
"""The rules of the company's contact policy."""
CONTACT_POLICY_RULES = (RULE_MAX_OFFERS, RULE_DECLINES, *COMPANY_RULES)
"""The rules of the contact policies (the action's own and the company's)."""
ALL_ACTIONS = -1
"""The group code of the company-wide limits across all actions (families: 0, 1, …)."""


class _Tally:
    """The batch's past decisions counted per (contact, action): presented, declined or
    accepted, within a number of days; each count made once."""

    def __init__(self, history: History, n: int, k: int) -> None:
        known = history.action >= 0  # actions not in the catalog count for no rule
        self.key = (history.contact * k + history.action)[known]
        self.age = history.age_days[known]
        self.kind = {
            "offered": np.ones(self.key.shape, dtype=bool),
            "declined": history.declined[known],
            "accepted": history.accepted[known],
        }
        self.n, self.k = n, k
        self._counts: dict[tuple[str, float], np.ndarray] = {}
        self._newest: dict[str, np.ndarray] = {}

    def counts(self, kind: str, days: float) -> np.ndarray:
        """``(n, k)``: past decisions of that kind within ``days``."""
        found = self._counts.get((kind, days))
        if found is None:
            sel = self.kind[kind] & (self.age <= days)
            found = np.bincount(self.key[sel], minlength=self.n * self.k).reshape(self.n, self.k)
            self._counts[(kind, days)] = found
        return found

    def newest(self, kind: str) -> np.ndarray:
        """``(n, k)``: days since the newest past decision of that kind (inf: none)."""
        found = self._newest.get(kind)
        if found is None:
            found = np.full(self.n * self.k, np.inf)
            sel = self.kind[kind]
            np.minimum.at(found, self.key[sel], self.age[sel])
            found = found.reshape(self.n, self.k)
            self._newest[kind] = found
        return found


def apply_contact_rules(
    catalog: Catalog,
    history: History,
    status: np.ndarray,
    count: np.ndarray,
    age: np.ndarray,
) -> None:
    """Mark, in place, the cells still OK that a contact policy holds back: ``status``
    the rule, ``count`` the offers or declines that reached the limit (for a pause: the
    group code), ``age`` the days since the newest of them."""
    n, k = status.shape
    if not history.contact.shape[0]:
        return
    tally = _Tally(history, n, k)

    def mark(rule: int, hit: np.ndarray, counts: np.ndarray, newest: np.ndarray) -> None:
        free = hit & (status == OK)
        status[free] = rule
        count[free] = counts[free]
        age[free] = newest[free]

    company = catalog.company_policy
    own = [company.for_action(a.contact_policy) for a in catalog.actions]
    # Declines first: "declined just now" is what the agent needs to read, not the offer
    # count that the same presentation also reached.
    for rule, kind, limit, days in (
        (RULE_DECLINES, "declined", "suppress_after_declines", "suppress_days"),
        (RULE_MAX_OFFERS, "offered", "max_offers", "window_days"),
    ):
        hit = np.zeros((n, k), dtype=bool)
        counts = np.zeros((n, k), dtype=np.int64)
        for window in {getattr(p, days) for p in own} - {None}:
            cols = [j for j, p in enumerate(own) if getattr(p, days) == window]
            c = tally.counts(kind, window)[:, cols]
            counts[:, cols] = c
            hit[:, cols] = c >= np.array([getattr(own[j], limit) for j in cols])
        if hit.any():
            mark(rule, hit, counts, tally.newest(kind))

    families = np.array([FAMILIES.index(a.family) for a in catalog.actions])
    # (group code, its limits, its actions): each family with limits, then all actions.
    groups = [
        (FAMILIES.index(f), p, families == FAMILIES.index(f)) for f, p in company.families.items()
    ]
    groups.append((ALL_ACTIONS, company.all_actions, np.ones(k, dtype=bool)))
    for code, gp, members in groups:
        whole = code == ALL_ACTIONS
        for rule, kind, most, within in (
            (RULE_ALL_OFFERS if whole else RULE_FAMILY_OFFERS, "offered", gp.max_offers,
             gp.window_days),
            (RULE_ALL_DECLINES if whole else RULE_FAMILY_DECLINES, "declined",
             gp.suppress_after_declines, gp.suppress_days),
        ):  # fmt: skip
            if most is None or within is None or not members.any():
                continue
            c = tally.counts(kind, within)[:, members].sum(axis=1)
            hit = c >= most
            if hit.any():
                newest = tally.newest(kind)[:, members].min(axis=1)
                mark(rule, hit[:, None] & members[None, :], _wide(c, k), _wide(newest, k))
    for code, gp, members in groups:
        quiet = gp.quiet_days_after_accepted
        if quiet is None or not members.any():
            continue
        taken = tally.counts("accepted", quiet)[:, members].sum(axis=1) > 0
        if taken.any():
            newest = tally.newest("accepted")[:, members].min(axis=1)
            mark(RULE_PAUSE, np.repeat(taken[:, None], k, axis=1), np.full((n, k), code),
                 _wide(newest, k))  # fmt: skip


def _wide(column: np.ndarray, k: int) -> np.ndarray:
    return np.repeat(column[:, None], k, axis=1)


FEW_CONTACTS = 8
"""Contacts up to which the families-first order is made in plain Python."""


def families_first(order: np.ndarray, ok: np.ndarray, family_code: np.ndarray) -> np.ndarray:
    """``order`` (actions best first per contact, ``(n, k)``) with each family's best
    allowed action before any family's second: the top of the list shows the choice
    between kinds of action, not three variants of one. The first action never moves;
    held-back actions (``ok`` false) stay last."""
    n, k = order.shape
    if n <= FEW_CONTACTS:  # an API answer: plain Python beats a dozen numpy calls
        return _families_first_few(order, ok, family_code)
    fam = family_code[order]
    allowed = np.take_along_axis(ok, order, axis=1)
    seen = np.zeros((n, len(FAMILIES)), dtype=np.int64)
    nth = np.empty((n, k), dtype=np.int64)
    rows = np.arange(n)
    for position in range(k):
        nth[:, position] = seen[rows, fam[:, position]]
        seen[rows, fam[:, position]] += allowed[:, position]
    # Held-back actions stay last; among the allowed: by n-th of its family, then rank.
    key = np.where(allowed, nth * k + np.arange(k)[None, :], k * k + np.arange(k)[None, :])
    return np.take_along_axis(order, np.argsort(key, axis=1, kind="stable"), axis=1)


def _families_first_few(order: np.ndarray, ok: np.ndarray, family_code: np.ndarray) -> np.ndarray:
    """:func:`families_first` one contact at a time (the same order)."""
    family = family_code.tolist()
    out = np.empty_like(order)
    last = order.shape[1] ** 2
    for i, row in enumerate(order.tolist()):
        allowed = ok[i].tolist()
        seen: dict[int, int] = {}
        keyed = []
        for position, a in enumerate(row):
            if allowed[a]:
                nth = seen.get(family[a], 0)
                seen[family[a]] = nth + 1
                keyed.append((nth, position, a))
            else:
                keyed.append((last, position, a))
        keyed.sort()
        out[i] = [a for _, _, a in keyed]
    return out
