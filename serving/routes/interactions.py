"""``POST /v1/interactions``: events pushed during the day, reflected in the next answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from nba.decision_log import EventBatch, InteractionEvent, now_utc
from nba.event_ingest import already_recorded, check_batch, parse_event
from serving.dependencies import LogDep, State, require
from serving.errors import ApiError, unavailable
from serving.schemas import InteractionIn, InteractionsRequest, InteractionsResponse, Problem

router = APIRouter(tags=["events"])

_SHOWN = 10  # problems named in one answer


def _refuse(status: int, problems: list[Any]) -> ApiError:
    more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
    code = "conflict" if status == 409 else "invalid_request"
    return ApiError(status, code, "; ".join(str(p) for p in problems[:_SHOWN]) + more)


@router.post(
    "/v1/interactions",
    response_model=InteractionsResponse,
    dependencies=[require("events")],
    responses={
        409: {
            "model": Problem,
            "description": "An event id was recorded before; nothing of the request is "
            "recorded (the message says whether the content was the same).",
        },
        422: {"model": Problem, "description": "A bad event; the message names it and the field."},
        503: {"model": Problem, "description": "No features build yet, or the log is down."},
    },
)
async def interactions(
    body: InteractionsRequest | InteractionIn, state: State, decision_log: LogDep
) -> InteractionsResponse:
    """Record one interaction or a batch (all or nothing), durably, before answering; the
    customer's profile is recomputed within about a second, so the next recommendation and
    the desk see it. Pushing an event id again is refused with 409 and changes nothing."""
    single = isinstance(body, InteractionIn)
    raws = [body] if isinstance(body, InteractionIn) else body.events
    where: Callable[[int], str] = (lambda _i: "event") if single else (lambda i: f"events[{i}]")
    refresher = state.refresher
    if refresher is None:
        raise unavailable(
            "online_store_unavailable", "no customer profiles yet: run a features build first"
        )
    events: list[InteractionEvent] = []
    positions: list[int] = []
    problems: list[Any] = []
    for i, raw in enumerate(raws):
        parsed = parse_event(raw.model_dump(), where(i))
        if isinstance(parsed, list):
            problems += parsed
        else:
            events.append(parsed)
            positions.append(i)
    try:
        history = await run_in_threadpool(refresher.history)
        signups = await run_in_threadpool(history.signups, [e.customer_id for e in events])
    except FileNotFoundError:
        raise unavailable(
            "online_store_unavailable", "no customer profiles yet: run a features build first"
        ) from None
    problems += check_batch(events, signups, now_utc(), where, positions)
    if problems:
        # In the request's order, each event's problems together.
        order = {where(i): i for i in range(len(raws))}
        raise _refuse(422, sorted(problems, key=lambda p: order.get(p.at, 0)))
    result = await decision_log.committed(EventBatch(tuple(events)))
    if not result.recorded:
        index = {e.event_id: i for i, e in zip(positions, events, strict=True)}
        raise _refuse(409, already_recorded(result.already, index, where))
    customers = sorted({e.customer_id for e in events})
    refresher.submit(customers)
    state.metrics.events.inc(len(events))
    return InteractionsResponse(recorded=len(events), customers=customers)
