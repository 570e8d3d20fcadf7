"""What the agent desk page (``/desk``) needs besides the recommendations: a short
summary of the customer in plain words, and a few example customers to pick from.

The summary is read from the same online profile the recommendation uses and worded by
the same sentence makers as the reasons (:func:`nba.policy.explain.sentence`), so the page
never shows a raw feature name. The page itself is static (``serving/static/desk``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from nba.policy.explain import sentence
from nba.vocabulary import INTERACTION_TYPES
from serving.schemas import CustomerExample, CustomerSummary

STATIC_DIR = Path(__file__).parent / "static" / "desk"

# Contact types worth showing an agent (payments and logins are routine).
_CONTACT_TYPES = [t for t in INTERACTION_TYPES if t not in ("payment", "login", "other")]


def _number(row: dict[str, Any], name: str) -> float:
    value = row.get(name)
    return float(value) if isinstance(value, int | float) else 0.0


def summarise(
    customer_id: str,
    row: dict[str, Any] | None,
    as_of: datetime | None,
    now: datetime | None = None,
    stale_days: float = 7.0,
) -> CustomerSummary:
    """The customer at a glance; ``row`` is the online profile (``None``: unknown). Times
    are told as of ``now``, not as of the profile: a profile a year old does not make the
    last contact "today"."""
    if row is None:
        return CustomerSummary(customer_id=customer_id, known=False)
    age = None
    if as_of is not None and now is not None:
        stamp = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
        age = max((now - stamp).total_seconds() / 86400.0, 0.0)
    since = row.get("days_since_interaction")
    if isinstance(since, int | float) and age is not None:
        since = since + age
    recent = [
        text
        for name in (f"n_{t}_30d" for t in _CONTACT_TYPES)
        if _number(row, name) > 0 and (text := sentence(name, _number(row, name)))
    ]
    missed = _number(row, "n_missed_payment_90d")
    if missed > 0:
        payment = (
            f"{sentence('n_missed_payment_90d', missed)}, "
            f"{sentence('amount_missed_90d', _number(row, 'amount_missed_90d'))}"
        )
    else:
        payment = "no missed payments in the last 3 months"
    attention = []
    if _number(row, "n_cancellation_request_90d") > 0:
        attention.append("asked to cancel in the last 3 months")
    if missed > 0:
        attention.append("payment trouble")
    if _number(row, "sentiment_mean_30d") < -0.2:
        attention.append("unhappy lately")
    # Product ids as the CRM spells them, made readable ("home_insurance": "home insurance").
    products = [p.replace("_", " ") for p in str(row.get("active_products") or "").split(",") if p]
    return CustomerSummary(
        customer_id=customer_id,
        known=True,
        profile_as_of=as_of,
        profile_age_days=None if age is None else round(age, 2),
        profile_stale=age is not None and age > stale_days,
        profile_updated=profile_updated_words(age),
        tenure=sentence("tenure_days", row.get("tenure_days")),
        products=products,
        recent_contacts=recent,
        last_contact=sentence("days_since_interaction", since),
        complaints=(
            f"{sentence('n_complaint_30d', _number(row, 'n_complaint_30d'))}; "
            f"{sentence('n_complaint_90d', _number(row, 'n_complaint_90d'))}"
        ),
        payment_status=payment,
        mood=sentence("sentiment_mean_30d", row.get("sentiment_mean_30d")),
        email=sentence("email_known", _number(row, "email_known")),
        attention=attention,
    )


_VIA = {
    "phone": "called",
    "chat": "chatted",
    "email": "wrote an e-mail",
    "app": "used the app",
    "web": "used the website",
    "branch": "came to a branch",
    "letter": "wrote a letter",
}
_ABOUT = {
    "inquiry": "with a question",
    "complaint": "to complain",
    "cancellation_request": "asking to cancel",
    "billing_question": "about a bill",
    "payment": "about a payment",
    "missed_payment": "about a missed payment",
    "login": "",
    "purchase": "to buy something",
    "contract_change": "to change the contract",
}
# Events without a contact behind them, told as what happened.
_HAPPENED = {
    "payment": "paid {amount}",
    "missed_payment": "missed a payment of {amount}",
    "login": "logged in",
    "purchase": "bought something for {amount}",
}


def pushed_event_words(
    when: datetime, channel: str, kind: str, amount: float | None, now: datetime
) -> str:
    """One pushed event as an agent reads it: "called at 09:14 about a missed payment"."""
    at = f"at {when:%H:%M}" if when.date() == now.date() else f"on {when:%d %b} at {when:%H:%M}"
    money = f"{amount:,.2f}" if amount is not None else "an amount"
    if channel in ("app", "web", "other") and kind in _HAPPENED:
        return f"{_HAPPENED[kind].format(amount=money)} {at}"
    verb = _VIA.get(channel, "was in touch")
    about = _ABOUT.get(kind, "")
    return " ".join(part for part in (verb, at, about) if part)


def profile_updated_words(age_days: float | None) -> str | None:
    """How fresh the profile is, in words: "updated 3 minutes ago"."""
    if age_days is None:
        return None
    seconds = age_days * 86400
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"updated {n} {unit}{'s' if n != 1 else ''} ago"
    return "updated just now"


# (why an agent would look at them, the profile column that says so, and its value there:
# above 0, or exactly 0)
_EXAMPLE_KINDS = (
    ("asked to cancel", "n_cancellation_request_30d", pc.greater),
    ("missed payments", "n_missed_payment_90d", pc.greater),
    ("complained recently", "n_complaint_30d", pc.greater),
    ("no e-mail address on file", "email_known", pc.equal),
)


def example_customers(profiles_path: Path, per_kind: int = 2) -> list[CustomerExample]:
    """A few customers in typical situations, from the newest offline profiles (the first
    row group: ``write_offline`` puts the newest moment first); empty if there are none."""
    if not profiles_path.is_file():
        return []
    columns = [
        "customer_id", "event_timestamp", "active_products", *(c for _, c, _ in _EXAMPLE_KINDS)
    ]  # fmt: skip
    file = pq.ParquetFile(profiles_path)
    if file.metadata.num_row_groups == 0:
        return []
    table = file.read_row_group(0, columns=columns)
    ts = table.column("event_timestamp")
    table = table.filter(pc.equal(ts, pc.max(ts))).sort_by("customer_id")
    # Current customers only: one who has already left is no example of a contact.
    table = table.filter(
        pc.fill_null(pc.greater(pc.utf8_length(table["active_products"]), 0), False)
    )
    chosen: list[CustomerExample] = []
    seen: set[str] = set()
    for why, column, compare in _EXAMPLE_KINDS:
        mask = pc.fill_null(compare(table.column(column), 0), False)
        ids = table.filter(mask).column("customer_id")
        picked = [c for c in ids.to_pylist() if c not in seen][:per_kind]
        seen.update(picked)
        chosen += [CustomerExample(customer_id=c, why=why) for c in picked]
    quiet = [c for c in table.column("customer_id").to_pylist() if c not in seen][:per_kind]
    chosen += [CustomerExample(customer_id=c, why="nothing special") for c in quiet]
    return chosen
