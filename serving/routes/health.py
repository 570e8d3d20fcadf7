"""Open probes for orchestrators: ``/livez`` (alias ``/healthz``) and ``/readyz``. They
show states, never paths, hosts, users or counts."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from serving.dependencies import LogDep, RecommenderDep
from serving.engine import NO_MODEL_TEXT
from serving.schemas import Readiness

router = APIRouter(tags=["operations"])


@router.get("/livez")
@router.get("/healthz")
async def livez() -> dict[str, str]:
    """The process is up and its event loop answers (liveness)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={
        503: {
            "model": Readiness,
            "description": "Not ready: no model loaded, or the decision log cannot commit.",
        }
    },
)
async def readyz(recommender: RecommenderDep, decision_log: LogDep) -> JSONResponse:
    """Ready to answer: a model is loaded and a write to the decision log could commit now
    (an answer that cannot be logged is not given). A missing or failing online store does
    not make the service unready (answers are degraded), but is reported."""
    model = recommender.model
    log_ok = await decision_log.can_commit()
    ready = model is not None and log_ok
    if model is None:
        detail: str | None = NO_MODEL_TEXT
    elif not log_ok:
        detail = "the decision log cannot commit right now"
    else:
        detail = None
    body = Readiness(
        ready=ready,
        model_version=model.version if model else None,
        feature_store=recommender.settings.online_store,
        feature_store_status=recommender.store_status,
        decision_log=decision_log.kind,
        decision_log_status="ok" if log_ok else "unavailable",
        objective=model.objective if model else None,
        objective_note=model.objective_note if model else None,
        detail=detail,
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
