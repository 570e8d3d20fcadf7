"""The decision log, shared by the API (which writes it) and the batch jobs that read it
(retraining, the impact report, the simulated loop). See :mod:`nba.decision_log.log`."""

from nba.decision_log.database import SERVED_COLUMNS, redact
from nba.decision_log.log import HISTORY_DAYS, DecisionLog
from nba.decision_log.records import (
    TIME_FORMAT,
    AppliedMark,
    EventBatch,
    EventResult,
    InteractionEvent,
    OutcomeRecord,
    OutcomeResult,
    OutcomeStatus,
    ServedRecord,
    age_days,
    from_text,
    now_utc,
    ranking_entries,
    to_text,
)

__all__ = [
    "HISTORY_DAYS",
    "SERVED_COLUMNS",
    "TIME_FORMAT",
    "AppliedMark",
    "DecisionLog",
    "EventBatch",
    "EventResult",
    "InteractionEvent",
    "OutcomeRecord",
    "OutcomeResult",
    "OutcomeStatus",
    "ServedRecord",
    "age_days",
    "from_text",
    "now_utc",
    "ranking_entries",
    "redact",
    "to_text",
]
