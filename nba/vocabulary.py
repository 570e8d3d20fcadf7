"""Closed vocabularies of the data contract, shared by every module."""

from __future__ import annotations

CHANNELS: tuple[str, ...] = ("phone", "chat", "email", "app", "web", "branch", "letter", "other")
"""Contact channels; any other value in the data is kept as ``other``."""

INTERACTION_TYPES: tuple[str, ...] = (
    "inquiry",
    "complaint",
    "cancellation_request",
    "billing_question",
    "payment",
    "missed_payment",
    "login",
    "purchase",
    "contract_change",
    "other",
)
"""Interaction types; any other value in the data is kept as ``other``."""

FAMILIES: tuple[str, ...] = (
    "retention_gesture",
    "installment_offer",
    "information_request",
    "product_offer",
)
"""Action families of the catalog."""

OUTCOMES: tuple[str, ...] = ("accepted", "declined", "no_response")
"""Outcomes of a presented action."""

ID_PATTERN = r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]{0,126}[^\x00-\x20\x7f])?$"
"""The one rule for ids (customers, decisions, contacts) in the data contract, its
validation and the API: 1 to 128 characters, no control characters, no space at either
end. Spaces inside, umlauts and any punctuation are allowed (the API takes such an id
URL-encoded in a path)."""
ID_RULE = "1 to 128 characters, no control characters, no space at either end"
