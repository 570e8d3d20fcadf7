"""Point-in-time customer profiles built from the contract's tables.

A profile *as of* time ``t`` uses only what was known strictly before ``t``: interactions,
decisions and contract starts/ends with a timestamp ``< t`` (the contact happening at ``t`` is
context of the decision, not history). E-mail is known when ``email_since <= t``, as the data
contract's information-request rule says. Windows are half-open: "in the last 30 days" means
``t - 30 days <= timestamp < t``.

The feature list below is the single source of truth: the Feast schema, the SQL that computes
profiles, the catalog's expression checker and the docs (``docs/profile_features.md``) are all
generated from it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import duckdb
import pyarrow as pa

from nba.vocabulary import CHANNELS, FAMILIES, INTERACTION_TYPES

WINDOWS: tuple[int, ...] = (7, 30, 90, 365)
"""Look-back windows in days for counts."""

RECENCY_HORIZON_DAYS = 365
"""Recency features look this far back; older events leave them empty (null)."""

ENTITY_KEY = "customer_id"
TIMESTAMP_FIELD = "event_timestamp"
"""Column of the offline store holding the profile's as-of time."""

Dtype = Literal["int", "float", "string"]


@dataclass(frozen=True)
class ProfileFeature:
    """One profile feature: its name (what rules refer to), type, meaning and window."""

    name: str
    dtype: Dtype
    description: str
    window_days: int | None
    sql: str
    """Aggregate expression over the joined rows (see ``_profile_sql``)."""
    group: str


def _readable(token: str) -> str:
    return token.replace("_", " ")


def _interaction_features() -> list[ProfileFeature]:
    feats: list[ProfileFeature] = []
    for w in WINDOWS:
        feats.append(
            ProfileFeature(
                f"n_interactions_{w}d",
                "int",
                f"Interactions of any type in the last {w} days.",
                w,
                f"count(*) FILTER (WHERE i.age_days <= {w})",
                "interactions",
            )
        )
    for typ in INTERACTION_TYPES:
        for w in WINDOWS:
            feats.append(
                ProfileFeature(
                    f"n_{typ}_{w}d",
                    "int",
                    f"Interactions of type '{typ}' in the last {w} days.",
                    w,
                    f"count(*) FILTER (WHERE i.type = '{typ}' AND i.age_days <= {w})",
                    "interactions by type",
                )
            )
    for ch in CHANNELS:
        for w in WINDOWS:
            feats.append(
                ProfileFeature(
                    f"n_via_{ch}_{w}d",
                    "int",
                    f"Interactions on channel '{ch}' in the last {w} days.",
                    w,
                    f"count(*) FILTER (WHERE i.channel = '{ch}' AND i.age_days <= {w})",
                    "interactions by channel",
                )
            )
    feats.append(
        ProfileFeature(
            "days_since_interaction",
            "float",
            "Days since the latest interaction of any type (empty if none in 365 days).",
            RECENCY_HORIZON_DAYS,
            "min(i.age_days)",
            "recency",
        )
    )
    for typ in INTERACTION_TYPES:
        feats.append(
            ProfileFeature(
                f"days_since_{typ}",
                "float",
                f"Days since the latest '{_readable(typ)}' (empty if none in 365 days).",
                RECENCY_HORIZON_DAYS,
                f"min(i.age_days) FILTER (WHERE i.type = '{typ}')",
                "recency",
            )
        )
    for w in (30, 90, 365):
        feats.append(
            ProfileFeature(
                f"sentiment_mean_{w}d",
                "float",
                f"Mean sentiment (-1..1) of interactions with a known sentiment, last {w} days"
                " (empty if none known).",
                w,
                f"avg(i.sentiment) FILTER (WHERE i.age_days <= {w})",
                "sentiment",
            )
        )
    feats += [
        ProfileFeature(
            "n_sentiment_known_90d",
            "int",
            "Interactions with a known sentiment in the last 90 days.",
            90,
            "count(i.sentiment) FILTER (WHERE i.age_days <= 90)",
            "sentiment",
        ),
        ProfileFeature(
            "n_negative_sentiment_90d",
            "int",
            "Interactions with sentiment below -0.3 in the last 90 days.",
            90,
            "count(*) FILTER (WHERE i.sentiment < -0.3 AND i.age_days <= 90)",
            "sentiment",
        ),
        ProfileFeature(
            "amount_paid_90d",
            "float",
            "Sum of payment amounts in the last 90 days.",
            90,
            "coalesce(sum(i.amount) FILTER (WHERE i.type = 'payment' AND i.age_days <= 90), 0)",
            "payments",
        ),
        ProfileFeature(
            "amount_missed_90d",
            "float",
            "Sum of missed payment amounts in the last 90 days.",
            90,
            "coalesce(sum(i.amount) FILTER "
            "(WHERE i.type = 'missed_payment' AND i.age_days <= 90), 0)",
            "payments",
        ),
        ProfileFeature(
            "amount_purchased_365d",
            "float",
            "Sum of purchase amounts in the last 365 days.",
            365,
            "coalesce(sum(i.amount) FILTER (WHERE i.type = 'purchase'), 0)",
            "payments",
        ),
    ]
    return feats


# Features derived from other features after aggregation (computed in the outer SELECT).
_DERIVED: list[ProfileFeature] = [
    ProfileFeature(
        "sentiment_trend",
        "float",
        "Mean sentiment of the last 30 days minus that of the last 365 days"
        " (negative: getting unhappier; empty if either is unknown).",
        30,
        "sentiment_mean_30d - sentiment_mean_365d",
        "sentiment",
    ),
    ProfileFeature(
        "complaint_trend",
        "float",
        "Complaints in the last 30 days minus the monthly average of the 60 days before"
        " (positive: complaining more).",
        90,
        "n_complaint_30d - (n_complaint_90d - n_complaint_30d) / 2.0",
        "interactions by type",
    ),
    ProfileFeature(
        "missed_payment_ratio_365d",
        "float",
        "Share of due payments missed in the last 365 days (0 when nothing was due).",
        365,
        "CASE WHEN n_payment_365d + n_missed_payment_365d = 0 THEN 0.0 ELSE "
        "n_missed_payment_365d / (n_payment_365d + n_missed_payment_365d) END",
        "payments",
    ),
]


def _decision_features() -> list[ProfileFeature]:
    feats: list[ProfileFeature] = []
    for fam in FAMILIES:
        feats += [
            ProfileFeature(
                f"n_offers_{fam}_90d",
                "int",
                f"Times a {_readable(fam)} was presented in the last 90 days.",
                90,
                f"count(*) FILTER (WHERE d.family = '{fam}' AND d.age_days <= 90)",
                "offer history",
            ),
            ProfileFeature(
                f"n_declines_{fam}_90d",
                "int",
                f"Times a {_readable(fam)} was declined in the last 90 days.",
                90,
                f"count(*) FILTER (WHERE d.family = '{fam}' AND d.outcome = 'declined'"
                " AND d.age_days <= 90)",
                "offer history",
            ),
            ProfileFeature(
                f"n_accepts_{fam}_365d",
                "int",
                f"Times a {_readable(fam)} was accepted in the last 365 days.",
                365,
                f"count(*) FILTER (WHERE d.family = '{fam}' AND d.outcome = 'accepted')",
                "offer history",
            ),
            ProfileFeature(
                f"days_since_offer_{fam}",
                "float",
                f"Days since a {_readable(fam)} was last presented (empty if none in 365 days).",
                RECENCY_HORIZON_DAYS,
                f"min(d.age_days) FILTER (WHERE d.family = '{fam}')",
                "offer history",
            ),
        ]
    feats += [
        ProfileFeature(
            "n_offers_30d",
            "int",
            "Actions of any family presented in the last 30 days.",
            30,
            "count(*) FILTER (WHERE d.age_days <= 30)",
            "offer history",
        ),
        ProfileFeature(
            "n_declines_30d",
            "int",
            "Actions of any family declined in the last 30 days.",
            30,
            "count(*) FILTER (WHERE d.outcome = 'declined' AND d.age_days <= 30)",
            "offer history",
        ),
    ]
    return feats


_CONTRACT_FEATURES: list[ProfileFeature] = [
    ProfileFeature(
        "n_active_products",
        "int",
        "Contracts active at the time (started before it, not yet ended).",
        None,
        "count(*) FILTER (WHERE k.active)",
        "products",
    ),
    ProfileFeature(
        "active_products",
        "string",
        "Comma-separated, sorted product codes of the active contracts ('' if none).",
        None,
        "coalesce(string_agg(DISTINCT k.product, ',' ORDER BY k.product) "
        "FILTER (WHERE k.active), '')",
        "products",
    ),
    ProfileFeature(
        "monthly_fees",
        "float",
        "Sum of the monthly fees of the active contracts.",
        None,
        "coalesce(sum(k.monthly_fee) FILTER (WHERE k.active), 0)",
        "products",
    ),
    ProfileFeature(
        "n_products_ended_90d",
        "int",
        "Contracts that ended in the last 90 days.",
        90,
        "count(*) FILTER (WHERE k.ended_age_days <= 90)",
        "products",
    ),
    ProfileFeature(
        "days_since_contract_start",
        "float",
        "Days since the most recent contract started (empty if none).",
        None,
        "min(k.start_age_days)",
        "products",
    ),
]

_CUSTOMER_FEATURES: list[ProfileFeature] = [
    ProfileFeature(
        "tenure_days",
        "float",
        "Days since the relationship started (signup_date).",
        None,
        "date_diff('second', c.signup_date, q.as_of) / 86400.0",
        "customer",
    ),
    ProfileFeature(
        "age_years",
        "float",
        "Age in years, from birth_year (empty if unknown).",
        None,
        "year(q.as_of) - c.birth_year",
        "customer",
    ),
    ProfileFeature(
        "email_known",
        "int",
        "1 if an e-mail address is known at the time (email_since <= t), else 0.",
        None,
        "CASE WHEN c.email_since IS NOT NULL AND c.email_since <= q.as_of THEN 1 ELSE 0 END",
        "customer",
    ),
    ProfileFeature(
        "monthly_revenue",
        "float",
        "Current monthly revenue from the customer (customers.monthly_revenue; empty if unknown).",
        None,
        "c.monthly_revenue",
        "customer",
    ),
    ProfileFeature(
        "is_business",
        "int",
        "1 if the customer's segment is 'business', else 0.",
        None,
        "CASE WHEN c.segment = 'business' THEN 1 ELSE 0 END",
        "customer",
    ),
]

_INTERACTION_FEATURES = _interaction_features()
_DECISION_FEATURES = _decision_features()

FEATURES: tuple[ProfileFeature, ...] = tuple(
    _CUSTOMER_FEATURES + _CONTRACT_FEATURES + _INTERACTION_FEATURES + _DERIVED + _DECISION_FEATURES
)
"""Every profile feature, in the column order of the profile table."""

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
NUMERIC_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES if f.dtype != "string")
FEATURES_BY_NAME: dict[str, ProfileFeature] = {f.name: f for f in FEATURES}

FEATURE_SERVICE = "nba_v1"
"""Name of the Feast feature service that is the models' input contract."""
FEATURE_VIEW = "customer_profile"


def _select(features: Iterable[ProfileFeature]) -> str:
    return ",\n  ".join(f"{f.sql} AS {f.name}" for f in features)


def _profile_sql() -> str:
    """SQL computing every feature for each row of ``asof(customer_id, as_of)``.

    Each source is aggregated separately per (customer_id, as_of) and then joined, so that
    no join multiplies another's rows.
    """
    ages = "date_diff('microsecond', {col}, q.as_of) / 86400000000.0"
    inter_age = ages.format(col="x.timestamp")
    dec_age = ages.format(col="x.timestamp")
    return f"""
WITH q AS (SELECT DISTINCT customer_id, as_of FROM profile_queries),
inter AS (
  SELECT q.customer_id, q.as_of, x.type, x.channel, x.sentiment, x.amount,
         {inter_age} AS age_days
  FROM q JOIN interactions x
    ON x.customer_id = q.customer_id
   AND x.timestamp < q.as_of
   AND x.timestamp >= q.as_of - INTERVAL {RECENCY_HORIZON_DAYS} DAY
),
inter_agg AS (
  SELECT i.customer_id, i.as_of,
  {_select(_INTERACTION_FEATURES)}
  FROM inter i GROUP BY i.customer_id, i.as_of
),
dec AS (
  SELECT q.customer_id, q.as_of, x.family, x.outcome, {dec_age} AS age_days
  FROM q JOIN decisions_with_family x
    ON x.customer_id = q.customer_id
   AND x.timestamp < q.as_of
   AND x.timestamp >= q.as_of - INTERVAL {RECENCY_HORIZON_DAYS} DAY
),
dec_agg AS (
  SELECT d.customer_id, d.as_of,
  {_select(_DECISION_FEATURES)}
  FROM dec d GROUP BY d.customer_id, d.as_of
),
con AS (
  SELECT q.customer_id, q.as_of, x.product, x.monthly_fee,
         (x.end_date IS NULL OR x.end_date >= q.as_of) AS active,
         CASE WHEN x.end_date < q.as_of
              THEN date_diff('microsecond', x.end_date, q.as_of) / 86400000000.0 END
           AS ended_age_days,
         date_diff('microsecond', x.start_date, q.as_of) / 86400000000.0 AS start_age_days
  FROM q JOIN contracts x
    ON x.customer_id = q.customer_id AND x.start_date < q.as_of
),
con_agg AS (
  SELECT k.customer_id, k.as_of,
  {_select(_CONTRACT_FEATURES)}
  FROM con k GROUP BY k.customer_id, k.as_of
),
base AS (
  SELECT q.customer_id, q.as_of,
  {_select(_CUSTOMER_FEATURES)},
  {", ".join(_coalesced(f, "ka") for f in _CONTRACT_FEATURES)},
  {", ".join(_coalesced(f, "ia") for f in _INTERACTION_FEATURES)},
  {", ".join(_coalesced(f, "da") for f in _DECISION_FEATURES)}
  FROM q
  JOIN customers c ON c.customer_id = q.customer_id
  LEFT JOIN con_agg ka ON ka.customer_id = q.customer_id AND ka.as_of = q.as_of
  LEFT JOIN inter_agg ia ON ia.customer_id = q.customer_id AND ia.as_of = q.as_of
  LEFT JOIN dec_agg da ON da.customer_id = q.customer_id AND da.as_of = q.as_of
)
SELECT customer_id, as_of AS {TIMESTAMP_FIELD},
  {", ".join(_column(f) for f in FEATURES if f not in _DERIVED)},
  {", ".join(f"CAST({f.sql} AS DOUBLE) AS {f.name}" for f in _DERIVED)}
FROM base
ORDER BY customer_id, {TIMESTAMP_FIELD}
"""


def _coalesced(f: ProfileFeature, alias: str) -> str:
    """Counts of a customer with no rows in a source are 0, not null; other values stay null."""
    if f.dtype == "int":
        return f"coalesce({alias}.{f.name}, 0) AS {f.name}"
    if f.dtype == "string":
        return f"coalesce({alias}.{f.name}, '') AS {f.name}"
    if f.sql.startswith("coalesce("):
        return f"coalesce({alias}.{f.name}, 0) AS {f.name}"
    return f"{alias}.{f.name} AS {f.name}"


def _column(f: ProfileFeature) -> str:
    sql_type = {"int": "BIGINT", "float": "DOUBLE", "string": "VARCHAR"}[f.dtype]
    return f"CAST({f.name} AS {sql_type}) AS {f.name}"


PROFILE_SQL = _profile_sql()


def compute_profiles(con: duckdb.DuckDBPyConnection, asof: pa.Table) -> pa.Table:
    """Profiles for each distinct ``(customer_id, as_of)`` row of ``asof``.

    Parameters
    ----------
    con
        A connection holding the normalised contract tables (``customers``, ``contracts``,
        ``interactions``, ``decisions_with_family``), as made by :mod:`nba.contract`.
    asof
        Arrow table with columns ``customer_id`` (string) and ``as_of`` (timestamp, UTC),
        shape ``(n_queries, 2)``. Customers missing from ``customers`` yield no row.

    Returns
    -------
    pyarrow.Table
        Shape ``(n_distinct_queries, 2 + len(FEATURES))``: ``customer_id``,
        ``event_timestamp`` (the as-of time) and one column per feature, sorted by customer
        and time.
    """
    con.register("profile_queries", asof)
    try:
        return con.sql(PROFILE_SQL).to_arrow_table()
    finally:
        con.unregister("profile_queries")


def features_markdown() -> str:
    """The feature reference (docs/profile_features.md), generated from ``FEATURES``."""
    lines = [
        "# Profile features",
        "",
        "Generated from `nba/profiles.py` (`python -m nba.profiles > docs/profile_features.md`).",
        "A profile as of time *t* uses only events strictly before *t*; windows are the last",
        "*N* days before *t*. These are the names that catalog expressions (`eligibility`,",
        "`value`) may use; `active_products` is text, all others are numbers.",
        "",
    ]
    group = None
    for f in FEATURES:
        if f.group != group:
            group = f.group
            lines += ["", f"## {group.capitalize()}", "", "| name | type | window | meaning |"]
            lines.append("|---|---|---|---|")
        window = f"{f.window_days} d" if f.window_days else "-"
        lines.append(f"| `{f.name}` | {f.dtype} | {window} | {f.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(features_markdown(), end="")
