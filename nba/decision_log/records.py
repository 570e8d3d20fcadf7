"""What the decision log stores: served answers and reported outcomes, and its time format.

Timestamps are UTC text ``YYYY-MM-DD HH:MM:SS.ffffff`` (sortable, identical in SQLite and
PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the log itself needs no model code
    from nba.policy.policy import Recommendation

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
_MICROSECOND = timedelta(microseconds=1)


def now_utc() -> datetime:
    return datetime.now(UTC)


def age_days(delta: timedelta) -> float:
    """Whole microseconds over a day's, rounded once: exactly the age batch scoring computes
    in SQL (``date_diff('microsecond', ...) / 86400000000.0``), so both see the same history."""
    return (delta // _MICROSECOND) / 86_400_000_000


def to_text(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime(TIME_FORMAT)


def from_text(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ServedRecord:
    """One recommendation answer. ``ranking`` holds the recommended actions, best first, as
    dicts with ``action_id``, ``propensity``, ``value``, ``priority`` and
    ``shown_probability`` (for the top action: the exact probability it was drawn with)."""

    decision_id: str
    customer_id: str
    timestamp: datetime
    channel: str
    reason: str | None
    agent_id: str | None
    model_version: str
    features_timestamp: datetime | None
    known_customer: bool
    degraded: bool
    degraded_reason: str | None
    ranking: list[dict[str, Any]]
    arm: str = "nba"
    """``nba``, ``challenger`` or ``control`` (a uniformly random candidate)."""


def ranking_entries(
    ranked: Sequence[Recommendation], order: Sequence[int], probability: float
) -> list[dict[str, Any]]:
    """A served answer's ``ranking``: the policy's ranked candidates in the order shown.
    The top one carries the exact probability it was drawn with (1.0 when not exploring;
    lower ranks have none, no use for OPE); every one its policy rank (1 = the NBA's
    choice, also for the control group), by which the impact report segments."""
    return [
        {
            "action_id": ranked[j].action_id,
            "propensity": ranked[j].propensity,
            "value": ranked[j].value,
            "priority": ranked[j].priority,
            "shown_probability": probability if i == 0 else None,
            "policy_rank": j + 1,
        }
        for i, j in enumerate(order)
    ]


@dataclass(frozen=True)
class OutcomeRecord:
    decision_id: str
    action_id: str
    outcome: str
    agent_id: str | None
    recorded_at: datetime = field(default_factory=now_utc)


class OutcomeStatus(Enum):
    RECORDED = "recorded"
    DUPLICATE = "duplicate"  # the same outcome again: idempotent, nothing changes
    CONFLICT = "conflict"  # a different outcome for a pair already reported
    UNKNOWN_DECISION = "unknown_decision"
    NOT_RECOMMENDED = "not_recommended"  # the action was not in that decision's ranking


@dataclass(frozen=True)
class OutcomeResult:
    status: OutcomeStatus
    customer_id: str | None = None
    recorded_outcome: str | None = None


@dataclass(frozen=True)
class InteractionEvent:
    """One pushed interaction: the contract's ``interactions`` row and the client's id."""

    event_id: str
    customer_id: str
    timestamp: datetime  # UTC
    channel: str
    type: str
    amount: float | None = None
    sentiment: float | None = None

    def same_as(self, row: Sequence[Any]) -> bool:
        """Whether a stored row (the ``events`` columns, in order) holds this event."""
        return tuple(row) == self.row()

    def row(self) -> tuple[Any, ...]:
        return (
            self.event_id,
            self.customer_id,
            to_text(self.timestamp),
            self.channel,
            self.type,
            self.amount,
            self.sentiment,
        )


@dataclass(frozen=True)
class EventBatch:
    """Events committed together or not at all."""

    events: tuple[InteractionEvent, ...]
    received_at: datetime = field(default_factory=now_utc)


@dataclass(frozen=True)
class EventResult:
    """``recorded``: every event is committed. Otherwise none is: ``already`` names the
    events whose id was recorded before, each with whether the content is the same."""

    recorded: bool
    already: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class AppliedMark:
    """These events are in the online profiles (written at ``at``)."""

    event_ids: tuple[str, ...]
    at: datetime = field(default_factory=now_utc)
