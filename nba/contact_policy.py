"""Contact policies: how often a customer may be approached, per action and company-wide.

Each action may limit its own offers and rest after declines (``contact_policy`` on the
action). The catalog's top-level ``contact_policy`` adds one policy for the whole company,
so that several departments cannot chase the same customer:

- ``families``: limits across all actions of a family (at most one retention gesture per
  180 days, whichever gesture it was);
- ``all_actions``: limits across every action (at most N offers of any kind per 30 days);
- ``quiet_days_after_accepted`` (in either): nothing at all for K days after the customer
  accepted an action of that family (or any action);
- ``decline_rest_days`` (default 30): an action the customer declined is not offered again
  for that many days, unless the action sets its own rule for declines;
- ``families_first`` (default true): the ranking shows the best action of each family
  before a second one of the same family.

The rules count what was presented (reported outcomes in the decision log, the dataset's
decisions in batch scoring); a recommendation nobody presented is not an offer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from nba.exceptions import CatalogError
from nba.vocabulary import FAMILIES

DEFAULT_DECLINE_REST_DAYS = 30


@dataclass(frozen=True)
class ContactPolicy:
    """How often an action may be presented (all limits optional)."""

    max_offers: int | None = None
    window_days: int | None = None
    suppress_after_declines: int | None = None
    suppress_days: int | None = None


@dataclass(frozen=True)
class GroupPolicy(ContactPolicy):
    """Limits across a group of actions (a family, or all of them)."""

    quiet_days_after_accepted: int | None = None
    """Nothing at all for this many days after the customer accepted one of the group."""


@dataclass(frozen=True)
class CompanyPolicy:
    """The catalog's company-wide contact policy (see the module docstring)."""

    families: dict[str, GroupPolicy] = field(default_factory=dict)
    all_actions: GroupPolicy = field(default_factory=GroupPolicy)
    decline_rest_days: int = DEFAULT_DECLINE_REST_DAYS
    families_first: bool = True

    def for_action(self, own: ContactPolicy) -> ContactPolicy:
        """The action's own policy, with the company's rest after a decline where the
        action sets no rule for declines of its own."""
        if own.suppress_after_declines is not None or not self.decline_rest_days:
            return own
        return ContactPolicy(own.max_offers, own.window_days, 1, self.decline_rest_days)


_ACTION_KEYS = tuple(f.name for f in fields(ContactPolicy))
_GROUP_KEYS = tuple(f.name for f in fields(GroupPolicy))
_COMPANY_KEYS = ("families", "all_actions", "decline_rest_days", "families_first")


def parse_action_policy(raw: Any, where: str) -> ContactPolicy:
    """An action's ``contact_policy``."""
    return ContactPolicy(**_limits(raw, where, "contact_policy", _ACTION_KEYS))


def parse_company_policy(raw: Any, source: str) -> CompanyPolicy:
    """The catalog's top-level ``contact_policy``; absent: the defaults."""
    if raw is None:
        return CompanyPolicy()
    key = "key 'contact_policy"
    if not isinstance(raw, dict):
        keys = ", ".join(_COMPANY_KEYS)
        raise CatalogError(f"{source}: {key}': expected a mapping (keys: {keys})")
    unknown = sorted(set(raw) - set(_COMPANY_KEYS))
    if unknown:
        raise CatalogError(
            f"{source}: {key}': unknown key(s) {unknown}; allowed: {list(_COMPANY_KEYS)}"
        )
    families_raw = raw.get("families") or {}
    if not isinstance(families_raw, dict):
        raise CatalogError(f"{source}: {key}.families': expected a mapping of family to limits")
    families = {}
    for family, limits in families_raw.items():
        if family not in FAMILIES:
            raise CatalogError(
                f"{source}: {key}.families': unknown family '{family}' "
                f"(one of {', '.join(FAMILIES)})"
            )
        path = f"contact_policy.families.{family}"
        families[family] = GroupPolicy(**_limits(limits, source, path, _GROUP_KEYS))
    rest = raw.get("decline_rest_days", DEFAULT_DECLINE_REST_DAYS)
    if isinstance(rest, bool) or not isinstance(rest, int) or rest < 0:
        raise CatalogError(
            f"{source}: {key}.decline_rest_days': expected a whole number of days (0 turns "
            f"the rest after a decline off), got {rest!r}"
        )
    first = raw.get("families_first", True)
    if not isinstance(first, bool):
        raise CatalogError(
            f"{source}: {key}.families_first': expected true or false, got {first!r}"
        )
    every = _limits(raw.get("all_actions"), source, "contact_policy.all_actions", _GROUP_KEYS)
    return CompanyPolicy(
        families=families,
        all_actions=GroupPolicy(**every),
        decline_rest_days=rest,
        families_first=first,
    )


def _limits(raw: Any, where: str, path: str, keys: tuple[str, ...]) -> dict[str, int | None]:
    """Whole positive numbers under ``keys``, with the pairs that go together checked."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CatalogError(f"{where}: key '{path}': expected a mapping")
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise CatalogError(
            f"{where}: key '{path}': unknown key(s) {unknown}; allowed: {sorted(keys)}"
        )
    values: dict[str, int | None] = {}
    for key in keys:
        v = raw.get(key)
        if v is None:
            values[key] = None
            continue
        if isinstance(v, bool) or not isinstance(v, int):
            raise CatalogError(f"{where}: key '{path}.{key}': expected a whole number, got {v!r}")
        if v <= 0:
            raise CatalogError(f"{where}: key '{path}.{key}': {v} must be positive")
        values[key] = v
    if (values["max_offers"] is None) != (values["window_days"] is None):
        raise CatalogError(f"{where}: key '{path}': max_offers and window_days go together")
    if (values["suppress_after_declines"] is None) != (values["suppress_days"] is None):
        raise CatalogError(
            f"{where}: key '{path}': suppress_after_declines and suppress_days go together"
        )
    return values
