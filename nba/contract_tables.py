"""The data contract's tables (docs/DATA_CONTRACT.md): columns, kinds, rules, keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nba.vocabulary import CHANNELS, INTERACTION_TYPES, OUTCOMES

Kind = Literal["string", "timestamp", "int", "float"]


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: Kind
    nullable: bool
    vocabulary: tuple[str, ...] | None = None
    """Closed set of values; anything else is kept as ``other`` (channels, types)."""
    allowed: tuple[str, ...] | None = None
    """Closed set of values; anything else is a violation (outcomes)."""
    check: tuple[str, str] | None = None
    """(SQL condition that must hold on non-null values, rule text), e.g. a range."""
    silent_if_absent: bool = False
    """An absent column is no news worth a note (most exports do not have it)."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    required: bool
    columns: tuple[Column, ...]
    key: str | None = None
    references_customers: bool = True

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


_CHANNEL = Column("channel", "string", False, vocabulary=CHANNELS)

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "customers",
            True,
            (
                Column("customer_id", "string", False),
                Column("signup_date", "timestamp", False),
                Column("birth_year", "int", True, check=("{v} BETWEEN 1900 AND 2100", "a year")),
                Column("region", "string", True),
                Column("segment", "string", True),
                Column("email_since", "timestamp", True),
                Column("monthly_revenue", "float", True, check=("{v} >= 0", ">= 0")),
            ),
            key="customer_id",
            references_customers=False,
        ),
        TableSpec(
            "contracts",
            True,
            (
                Column("customer_id", "string", False),
                Column("product", "string", False),
                Column("start_date", "timestamp", False),
                Column("end_date", "timestamp", True),
                Column("monthly_fee", "float", True, check=("{v} >= 0", ">= 0")),
            ),
        ),
        TableSpec(
            "interactions",
            True,
            (
                Column("customer_id", "string", False),
                Column("timestamp", "timestamp", False),
                _CHANNEL,
                Column("type", "string", False, vocabulary=INTERACTION_TYPES),
                Column("amount", "float", True),
                Column("sentiment", "float", True, check=("{v} BETWEEN -1 AND 1", "in [-1, 1]")),
                # The pushing system's id (POST /v1/interactions): an export that carries
                # it never counts a pushed event twice.
                Column("event_id", "string", True, silent_if_absent=True),
            ),
        ),
        TableSpec(
            "decisions",
            False,
            (
                Column("decision_id", "string", False),
                Column("customer_id", "string", False),
                Column("timestamp", "timestamp", False),
                _CHANNEL,
                Column("action_id", "string", False),
                Column("outcome", "string", False, allowed=OUTCOMES),
                Column("propensity", "float", True, check=("{v} > 0 AND {v} <= 1", "in (0, 1]")),
                Column("value", "float", True),
            ),
            key="decision_id",
        ),
        TableSpec(
            "contacts",
            False,
            (
                Column("contact_id", "string", False),
                Column("customer_id", "string", False),
                Column("timestamp", "timestamp", False),
                _CHANNEL,
                Column("reason", "string", True, vocabulary=INTERACTION_TYPES),
            ),
            key="contact_id",
        ),
    )
}
