"""Operations with a key: ``POST /admin/reload`` and ``GET /metrics``."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nba.exceptions import DecisionLogError
from serving.dependencies import RecommenderDep, State, require
from serving.engine import NO_MODEL_TEXT
from serving.errors import unavailable
from serving.reloads import request_reload
from serving.schemas import Problem, ReloadResponse

log = logging.getLogger("nba.serving")
router = APIRouter(tags=["operations"])


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    dependencies=[require("admin")],
    responses={503: {"model": Problem, "description": "No model to load."}},
)
async def reload(state: State, recommender: RecommenderDep) -> ReloadResponse:
    """Load nba-policy@champion now (and @challenger, with challenger traffic on), in
    every worker: this one at once, the others within about a second. Requests keep being
    answered by the old version until the new one is ready."""
    async with state.reload_lock:
        changed = await run_in_threadpool(recommender.load_model)
        if not changed:
            changed = await run_in_threadpool(recommender.load_challenger)
    try:
        await run_in_threadpool(request_reload, recommender.log)
    except DecisionLogError:
        log.warning("reload not passed on: the other workers follow at their next poll")
    if recommender.model is None:
        raise unavailable("model_not_ready", NO_MODEL_TEXT)
    return ReloadResponse(model_version=recommender.model.version, changed=changed)


@router.get("/metrics", response_class=Response, dependencies=[require("metrics")])
async def prometheus(state: State) -> Response:
    """Prometheus metrics (a key with the ``metrics`` scope, as X-API-Key or as
    ``Authorization: Bearer``: they count decisions per action)."""
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
