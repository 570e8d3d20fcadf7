"""``nba events push``: interactions of the day from a file, into the profiles at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from nba.config import get_settings
from nba.event_ingest import EventProblem
from pipelines.cli.app import app, console, err, fail, print_notes

events_app = typer.Typer(
    help="Interactions pushed during the day (as POST /v1/interactions does).",
    no_args_is_help=True,
)
app.add_typer(events_app, name="events")

_SHOWN = 20  # problems listed before "and N more"


@events_app.command("push")
def push(
    file: Annotated[
        Path,
        typer.Argument(help="CSV or Parquet in the interactions format, with an event_id column."),
    ],
) -> None:
    """Record the file's events (all or none) and update those customers' online profiles;
    the next `nba features build` includes them. Exit 2, naming each bad line, if any event
    is bad or was pushed before."""
    from nba.decision_log import DecisionLog, EventBatch, now_utc
    from nba.event_ingest import (
        ProfileRefresher,
        already_recorded,
        check_batch,
        open_history,
        read_events_file,
    )
    from nba.feature_store import open_store

    if not file.is_file():
        fail(f"{file}: file not found")
    s = get_settings()
    read = read_events_file(file)
    print_notes(read.notes)
    events, problems = read.events, list(read.problems)
    try:
        history = open_history(s)
    except FileNotFoundError as exc:
        fail(str(exc))
    label, first = ("row", 1) if file.suffix == ".parquet" else ("line", 2)

    def where(i: int) -> str:
        return f"{file.name} {label} {i + first}"

    signups = history.signups([e.customer_id for e in events])
    problems += check_batch(events, signups, now_utc(), where, read.positions)
    problems.sort(key=lambda p: _line(p.at))
    if not events and not problems:
        fail(f"{file.name}: no events in the file")
    if problems:
        _refuse(problems)
    log = DecisionLog(s.decision_log)
    log.start()
    try:
        result = log.write(EventBatch(tuple(events)))
        if not result.recorded:
            index = {e.event_id: i for i, e in zip(read.positions, events, strict=True)}
            _refuse(already_recorded(result.already, index, where))
        refresher = ProfileRefresher(s, log, open_store(s), background=False)
        customers = sorted({e.customer_id for e in events})
        refresher.refresh(customers)
    finally:
        log.close()
    console.print(
        f"recorded {len(events):,} events of {len(customers):,} customers; "
        "their online profiles are up to date"
    )


def _refuse(problems: Sequence[object]) -> NoReturn:
    for p in problems[:_SHOWN]:
        text = p.in_file() if isinstance(p, EventProblem) else str(p)
        err.print(f"  {text}", highlight=False, soft_wrap=True, markup=False)
    more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
    fail(f"nothing was recorded: {len(problems)} problem(s) in the file{more}")


def _line(at: str) -> int:
    """The line (or row) number a problem names, for listing them in file order."""
    last = at.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0
