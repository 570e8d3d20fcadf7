"""The agent desk's customer look-ups: example customers and one customer at a glance."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as FastApiPath
from fastapi.concurrency import run_in_threadpool

from nba.decision_log import DecisionLog, from_text, to_text
from serving.dependencies import LogDep, RecommenderDep, State, require
from serving.desk import example_customers, pushed_event_words, summarise
from serving.errors import unavailable
from serving.schemas import IDENTIFIER_PATTERN, CustomerExample, CustomerSummary, Problem

router = APIRouter(tags=["agent desk"])

SUMMARY_WAIT = 2.0  # seconds a customer summary may wait for the online store


@router.get(
    "/v1/customers/examples",
    response_model=list[CustomerExample],
    dependencies=[require("recommend")],
)
async def customer_examples(state: State) -> list[CustomerExample]:
    """A few customers in typical situations (asked to cancel, missed payments, ...),
    from the newest profiles: something to try the desk with."""
    if not state.examples:  # none yet: look again (features built later)
        state.examples = await run_in_threadpool(example_customers, state.settings.profiles_path)
    examples: list[CustomerExample] = state.examples
    return examples


@router.get(
    "/v1/customers/{customer_id:path}",  # ids may hold a /
    response_model=CustomerSummary,
    dependencies=[require("recommend")],
    responses={503: {"model": Problem, "description": "The online store is unavailable."}},
)
async def customer_summary(
    customer_id: Annotated[str, FastApiPath(pattern=IDENTIFIER_PATTERN, max_length=128)],
    recommender: RecommenderDep,
    decision_log: LogDep,
) -> CustomerSummary:
    """The customer at a glance, in plain words: tenure, products, recent contacts,
    complaints, payment status, mood; ``known: false`` for a customer without a
    profile."""
    reader = recommender.reader
    if reader is None:
        raise unavailable("online_store_unavailable", "the customer profiles are unavailable")
    try:
        # Not on the recommendation's tight budget, but never hung on a stuck store.
        found = await asyncio.wait_for(reader.submit(customer_id), SUMMARY_WAIT)
    except TimeoutError:
        raise unavailable(
            "online_store_unavailable", f"the online store was slower than {SUMMARY_WAIT:g} s"
        ) from None
    except Exception:
        raise unavailable(
            "online_store_unavailable", "the customer's profile could not be read right now"
        ) from None
    row, as_of = found if found is not None else (None, None)
    settings = recommender.settings
    now = datetime.now(UTC)
    summary = summarise(customer_id, row, as_of, now, settings.stale_profile_days)
    if summary.known:
        summary.today = await _pushed_today(decision_log, customer_id, now)
    return summary


async def _pushed_today(decision_log: DecisionLog, customer_id: str, now: datetime) -> list[str]:
    """The customer's interactions pushed in the last 24 hours, in words (none while the
    log cannot be read: the summary is still worth showing)."""
    try:
        rows = await decision_log.query_async(
            "SELECT timestamp, channel, type, amount FROM events "
            "WHERE customer_id = ? AND received_at >= ? ORDER BY timestamp",
            (customer_id, to_text(now - timedelta(days=1))),
        )
    except Exception:
        return []
    return [pushed_event_words(from_text(t), c, k, a, now) for t, c, k, a in rows]
