"""Pushed interactions: checked, committed durably, then reflected in the online profile.

Shared by ``POST /v1/interactions`` and ``nba events push``. A batch is all or nothing:
every event is checked first (known customer, vocabulary, ranges, not in the future, not
before the signup, no id twice), then the batch is committed to the decision log's
``events`` table in one transaction (an id recorded before refuses the whole batch); only
then is it acknowledged. The customers' profiles are recomputed (:mod:`nba.live_profiles`)
and written to the online store by :class:`ProfileRefresher`, which also finds events a
crashed process had acknowledged but not yet applied.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nba.decision_log import AppliedMark, DecisionLog, InteractionEvent, now_utc, to_text
from nba.feature_store import manifest_path, read_build_manifest
from nba.live_profiles import History, history_dir, pushed_events
from nba.vocabulary import CHANNELS, INTERACTION_TYPES

if TYPE_CHECKING:
    from feast import FeatureStore

    from nba.config import Settings

log = logging.getLogger("nba.events")

FUTURE_TOLERANCE = timedelta(minutes=5)
"""Clocks differ: an event up to this far ahead of ours is accepted."""
SWEEP_SECONDS = 5.0
"""How often the refresher looks for committed events not yet in the online profiles."""
GATHER_SECONDS = 0.1
"""How long the refresher waits for more customers before recomputing a batch."""


@dataclass(frozen=True)
class EventProblem:
    """What is wrong with one event: which (``events[2]``, ``file.csv line 3``), which
    field, and why, in words."""

    at: str
    what: str
    field: str | None = None
    conflict: bool = False  # an id recorded before (409) rather than a bad event (422)

    def __str__(self) -> str:
        """As the API says it: ``events[2].timestamp: ...``."""
        return f"{self.at}.{self.field}: {self.what}" if self.field else f"{self.at}: {self.what}"

    def in_file(self) -> str:
        """As a command says it of a file: ``events.csv line 3, column 'timestamp': ...``."""
        return f"{self.at}, column '{self.field}': {self.what}" if self.field else str(self)


def parse_event(raw: Mapping[str, Any], where: str) -> InteractionEvent | list[EventProblem]:
    """An event from its fields (API body or file row), or what is wrong with each."""
    problems: list[EventProblem] = []

    def bad(name: str, what: str) -> None:
        problems.append(EventProblem(where, what, name))

    def text(name: str) -> str:
        value = raw.get(name)
        if not isinstance(value, str) or not value.strip():
            bad(name, "is required")
            return ""
        if len(value) > 128:
            bad(name, "is longer than 128 characters")
        return value.strip()

    event_id, customer_id = text("event_id"), text("customer_id")
    channel, kind = text("channel"), text("type")
    if channel and channel not in CHANNELS:
        bad("channel", f"unknown channel '{channel}' (one of {', '.join(CHANNELS)})")
    if kind and kind not in INTERACTION_TYPES:
        bad("type", f"unknown type '{kind}' (one of {', '.join(INTERACTION_TYPES)})")
    stamp = _timestamp(raw.get("timestamp"))
    if stamp is None:
        given = raw.get("timestamp")
        shown = f"'{given}' is not" if given not in (None, "") else "is required:"
        bad("timestamp", f"{shown} a date and time such as 2026-12-07T09:14:00Z")
    numbers: dict[str, float | None] = {}
    for name in ("amount", "sentiment"):
        value = raw.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            numbers[name] = None
        elif (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            bad(name, "must be a number")
        else:
            numbers[name] = float(value)
    sentiment = numbers.get("sentiment")
    if sentiment is not None and not -1 <= sentiment <= 1:
        bad("sentiment", f"{sentiment:g} is outside -1 to 1")
    if problems or stamp is None:
        return problems
    return InteractionEvent(
        event_id, customer_id, stamp, channel, kind, numbers.get("amount"), sentiment
    )


def _timestamp(value: Any) -> datetime | None:
    """UTC; a time without a zone is read as UTC (the contract's convention)."""
    if isinstance(value, datetime):
        stamp = value
    elif isinstance(value, str) and value.strip():
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def check_batch(
    events: Sequence[InteractionEvent],
    signups: Mapping[str, datetime],
    now: datetime,
    where: Callable[[int], str] = lambda i: f"events[{i}]",
    positions: Sequence[int] | None = None,
) -> list[EventProblem]:
    """What the fields alone cannot tell: known customer, time, one id once per batch.
    ``positions``: each event's place in the request or file (default: its index)."""
    problems: list[EventProblem] = []
    first: dict[str, int] = {}
    places = positions if positions is not None else range(len(events))
    for i, e in zip(places, events, strict=True):
        at = where(i)
        signup = signups.get(e.customer_id)
        if signup is None:
            problems.append(EventProblem(at, f"unknown customer '{e.customer_id}'", "customer_id"))
        elif e.timestamp < signup:
            problems.append(
                EventProblem(
                    at,
                    f"{e.timestamp:%Y-%m-%d %H:%M} is before the customer signed up "
                    f"({signup:%Y-%m-%d})",
                    "timestamp",
                )
            )
        if e.timestamp > now + FUTURE_TOLERANCE:
            problems.append(
                EventProblem(at, f"{e.timestamp:%Y-%m-%d %H:%M} is in the future", "timestamp")
            )
        if e.event_id in first:
            problems.append(
                EventProblem(at, f"'{e.event_id}' is also {where(first[e.event_id])}", "event_id")
            )
        else:
            first[e.event_id] = i
    return problems


def already_recorded(
    already: Sequence[tuple[str, bool]],
    index: Mapping[str, int],
    where: Callable[[int], str] = lambda i: f"events[{i}]",
) -> list[EventProblem]:
    """The 409 problems of a batch refused because ids were recorded before."""
    return [
        EventProblem(
            where(index[event_id]),
            f"'{event_id}' was recorded before"
            + (" with the same content (nothing to do)" if same else " with other content"),
            "event_id",
            conflict=True,
        )
        for event_id, same in already
    ]


def open_history(settings: Settings) -> History:
    """The history of the last features build (raises FileNotFoundError if there is none)."""
    manifest = read_build_manifest(settings)
    if manifest is None:
        raise FileNotFoundError("no features build: run `nba features build --data DIR`")
    return History(history_dir(settings.profiles_path), manifest.as_of_latest)


class ProfileRefresher:
    """Recomputes and writes the online profiles of customers with new events, on a thread:
    customers queued by the ingest path, and every :data:`SWEEP_SECONDS` those with events
    committed but not yet applied (by a process that died in between, say)."""

    def __init__(
        self,
        settings: Settings,
        log_: DecisionLog,
        store: FeatureStore,
        *,
        background: bool = True,
    ) -> None:
        from nba.online_load import OnlineWriter

        self.settings = settings
        self.log = log_
        self.writer = OnlineWriter(store)
        self._queue: queue.SimpleQueue[tuple[str, ...] | None] = queue.SimpleQueue()
        self._history: tuple[float, History] | None = None
        self._thread = threading.Thread(target=self._run, name="profile-refresher", daemon=True)
        self.applied = 0  # events applied since start (for tests and metrics)
        if background:
            self._thread.start()

    def submit(self, customer_ids: Sequence[str]) -> None:
        self._queue.put(tuple(customer_ids))

    def close(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=10)

    def history(self) -> History:
        """The last build's history; read again when a new build has replaced it."""
        manifest = manifest_path(self.settings)
        stamp = manifest.stat().st_mtime if manifest.is_file() else -1.0
        if self._history is None or self._history[0] != stamp:
            if self._history is not None:
                self._history[1].close()
            self._history = (stamp, open_history(self.settings))
        return self._history[1]

    def refresh(self, customer_ids: Sequence[str]) -> int:
        """Recompute and write these customers' profiles now; returns events applied."""
        ids = sorted(set(customer_ids))
        if not ids:
            return 0
        events = pushed_events(self.log, ids)
        if events.num_rows == 0:
            return 0
        profiles = self.history().profiles(events)
        if profiles.num_rows:
            self.writer.write(profiles, full=False)
        self.log.write(AppliedMark(tuple(events.column("event_id").to_pylist())))
        return events.num_rows

    def _run(self) -> None:
        next_sweep = time.monotonic()
        while True:
            wait = max(next_sweep - time.monotonic(), 0.0)
            try:
                first = self._queue.get(timeout=wait)
            except queue.Empty:
                first = ()
            if first is None:
                return
            ids = set(first)
            deadline = time.monotonic() + GATHER_SECONDS
            while ids and (left := deadline - time.monotonic()) > 0:
                try:
                    more = self._queue.get(timeout=left)
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                ids.update(more)
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_SECONDS
                ids.update(self._unapplied())
            try:
                self.applied += self.refresh(sorted(ids))
            except Exception as exc:  # retried by the next sweep
                log.warning("profile refresh failed", extra={"error": type(exc).__name__})

    def _unapplied(self) -> list[str]:
        """Customers with events committed a while ago and not yet in their profile."""
        settled = to_text(now_utc() - timedelta(seconds=2))
        try:
            rows = self.log.query(
                "SELECT DISTINCT customer_id FROM events WHERE online_at IS NULL "
                "AND received_at < ?",
                (settled,),
            )
        except Exception:
            return []
        return [r[0] for r in rows]


@dataclass
class EventsFile:
    """A file's events (with each one's row index), the problems of the rows that are not
    events (each naming the line) and notes on how the file was read."""

    events: list[InteractionEvent]
    positions: list[int]
    problems: list[EventProblem]
    notes: list[str]


def read_events_file(path: Path) -> EventsFile:
    """The events of a CSV or Parquet file in the ``interactions`` format plus ``event_id``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nba.csv_files import CsvReadError, read_csv

    notes: list[str] = []
    if path.suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException):
            problem = EventProblem(path.name, "cannot be read as a Parquet file")
            return EventsFile([], [], [problem], [])
        first_line = 1
        label = "row"
    elif path.suffix == ".csv":
        try:
            read = read_csv(path, frozenset({"amount", "sentiment"}))
        except CsvReadError as exc:
            return EventsFile(
                [], [], [EventProblem(path.name, str(exc).removeprefix(f"{path.name}: "))], []
            )
        table, notes = read.table, read.notes
        first_line = 2  # after the header
        label = "line"
    else:
        return EventsFile(
            [], [], [EventProblem(path.name, "expected a .csv or .parquet file")], []
        )
    missing = [
        c
        for c in ("event_id", "customer_id", "timestamp", "channel", "type")
        if c not in table.column_names
    ]
    if missing:
        problem = EventProblem(path.name, f"missing column(s) {', '.join(missing)}")
        return EventsFile([], [], [problem], notes)
    events: list[InteractionEvent] = []
    problems: list[EventProblem] = []
    positions: list[int] = []
    for i, row in enumerate(table.to_pylist()):
        for name in ("amount", "sentiment"):
            value = row.get(name)
            if isinstance(value, str):
                row[name] = _number(value)
        parsed = parse_event(row, f"{path.name} {label} {i + first_line}")
        if isinstance(parsed, list):
            problems += parsed
        else:
            events.append(parsed)
            positions.append(i)
    return EventsFile(events, positions, problems, notes)


def _number(text: str) -> float | str | None:
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return text  # parse_event says it is not a number
