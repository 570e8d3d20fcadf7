"""``POST /v1/outcomes`` (what happened to a presented action) and ``GET /v1/decisions/{id}``
(a logged decision)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from nba.decision_log import OutcomeRecord, OutcomeStatus
from serving.dependencies import LogDep, RecommenderDep, State, require
from serving.errors import ApiError
from serving.schemas import OutcomeRequest, OutcomeResponse, Problem

router = APIRouter(tags=["agent desktop"])


@router.post(
    "/v1/outcomes",
    response_model=OutcomeResponse,
    dependencies=[require("outcomes")],
    responses={
        404: {"model": Problem, "description": "Unknown decision."},
        409: {"model": Problem, "description": "A different outcome was already recorded."},
    },
)
async def outcomes(
    body: OutcomeRequest, state: State, recommender: RecommenderDep, decision_log: LogDep
) -> OutcomeResponse:
    """Report what happened to a presented action. Idempotent on (decision, action);
    the next recommendation for the customer already counts it."""
    model = recommender.model
    if model is not None and body.action_id not in model.policy.catalog.ids:
        raise ApiError(422, "invalid_request", f"action_id: unknown action '{body.action_id}'")
    record = OutcomeRecord(body.decision_id, body.action_id, body.outcome, body.agent_id)
    result = await decision_log.committed(record)
    if result.status is OutcomeStatus.UNKNOWN_DECISION:
        raise ApiError(404, "not_found", f"decision_id: unknown decision '{body.decision_id}'")
    if result.status is OutcomeStatus.NOT_RECOMMENDED:
        raise ApiError(
            422,
            "invalid_request",
            f"action_id: '{body.action_id}' was not recommended in decision '{body.decision_id}'",
        )
    if result.status is OutcomeStatus.CONFLICT:
        raise ApiError(
            409,
            "conflict",
            f"outcome '{result.recorded_outcome}' is already recorded for this decision "
            "and action; outcomes cannot be changed",
        )
    status: Literal["recorded", "duplicate"] = (
        "duplicate" if result.status is OutcomeStatus.DUPLICATE else "recorded"
    )
    state.metrics.outcomes.labels(body.outcome, status).inc()
    return OutcomeResponse(
        decision_id=body.decision_id,
        action_id=body.action_id,
        outcome=body.outcome,
        status=status,
    )


@router.get(
    "/v1/decisions/{decision_id}",
    dependencies=[require("recommend")],
    responses={404: {"model": Problem, "description": "Unknown decision."}},
)
async def decision(decision_id: str, decision_log: LogDep) -> dict[str, Any]:
    """A logged decision: its ranking, model version and the outcomes reported."""
    found = await decision_log.decision_async(decision_id)
    if found is None:
        raise ApiError(404, "not_found", f"decision_id: unknown decision '{decision_id}'")
    result: dict[str, Any] = found
    return result
