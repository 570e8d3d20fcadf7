"""The real-time API for agent desktops (FastAPI). Start it with ``nba serve``.

Endpoints: ``POST /v1/recommendations``, ``POST /v1/outcomes``, ``GET /v1/decisions/{id}``,
``POST /admin/reload``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``, OpenAPI docs at
``/docs``. Everything heavy (model, feature service, decision log) is set up once in the
lifespan; see ``serving.engine`` for how one answer is made.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi import Path as FastApiPath
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from nba.config import Settings, get_settings
from serving.decision_log import DecisionLog, OutcomeRecord, OutcomeStatus
from serving.desk import STATIC_DIR, example_customers, summarise
from serving.engine import ModelNotReady, Recommender
from serving.keys import verify
from serving.metrics import Metrics
from serving.schemas import (
    IDENTIFIER_PATTERN,
    CustomerExample,
    CustomerSummary,
    OutcomeRequest,
    OutcomeResponse,
    Problem,
    Readiness,
    RecommendationRequest,
    RecommendationResponse,
    ReloadResponse,
)

log = logging.getLogger("nba.serving")
access = logging.getLogger("nba.access")

_ROUTES = (
    "/v1/recommendations",
    "/v1/outcomes",
    "/v1/decisions",
    "/v1/customers",
    "/desk",
    "/admin/reload",
    "/healthz",
    "/readyz",
    "/metrics",
)
SUMMARY_WAIT = 2.0  # seconds a customer summary may wait for the online store
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _route_label(path: str) -> str:
    for route in _ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return "other"


class _BodyTooLarge(Exception):
    pass


class Gate:
    """Pure ASGI middleware: refuses bodies over the limit (413), times every request for
    the latency histogram and writes the access log line. (Starlette's BaseHTTPMiddleware
    costs more per request than this whole class.)"""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.metrics = metrics
        self.access_log = settings.access_log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            body_receive = await self._buffered(scope, receive)
        except _BodyTooLarge:
            status = 413
            await _send_json(
                send, 413, {"detail": f"request body larger than {self.max_bytes} bytes"}
            )
        else:
            await self.app(scope, body_receive, send_status)
        finally:
            seconds = time.perf_counter() - started
            route = _route_label(scope["path"])
            self.metrics.latency.labels(route, f"{status // 100}xx").observe(seconds)
            if self.access_log:
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "ms": round(seconds * 1000, 3),
                    },
                )

    async def _buffered(self, scope: dict[str, Any], receive: Any) -> Any:
        """Read the whole body (at most ``max_bytes``) and replay it to the app."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise _BodyTooLarge
        if scope["method"] in ("GET", "HEAD"):
            return receive
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return _replay(message)
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                raise _BodyTooLarge
            more = message.get("more_body", False)
        return _replay({"type": "http.request", "body": b"".join(chunks), "more_body": False})


def _replay(message: dict[str, Any]) -> Callable[[], Awaitable[dict[str, Any]]]:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return message
        await asyncio.Event().wait()  # like a client that keeps the connection open
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    import json

    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="A key made by `nba keys create --scopes ...`.",
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing, invalid or revoked API key."},
    403: {"model": Problem, "description": "The key lacks the scope this endpoint needs."},
    413: {"model": Problem, "description": "Request body too large."},
    422: {"model": Problem, "description": "Malformed request; the message names the field."},
}


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API, configured from ``settings`` (default: the environment)."""
    s = settings or get_settings()
    metrics = Metrics()
    state: dict[str, Any] = {}
    reload_lock = asyncio.Lock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        decision_log = DecisionLog(s.decision_log)
        decision_log.start()
        recommender = Recommender(s, decision_log, metrics)
        await run_in_threadpool(recommender.load_model)
        await run_in_threadpool(recommender.open_feature_store)
        state.update(log=decision_log, recommender=recommender)
        poller = asyncio.create_task(_poll(recommender))
        log.info(
            "serving",
            extra={
                "model_version": recommender.model.version if recommender.model else None,
                "online_store": recommender.reader.profiles.online_store
                if recommender.reader
                else None,
                "decision_log": decision_log.url,
                "auth": s.auth,
            },
        )
        try:
            yield
        finally:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
            recommender.close()
            decision_log.close()

    async def _poll(recommender: Recommender) -> None:
        """Pick up a new @champion, or the first model and feature store after a late
        `make demo`, without a restart."""
        while True:
            missing = recommender.model is None or recommender.reader is None
            if not missing and not s.model_poll_seconds:
                return
            # Until both are there, every 10 s at most; then at the configured pace.
            await asyncio.sleep(
                min(s.model_poll_seconds or 10.0, 10.0) if missing else s.model_poll_seconds
            )
            async with reload_lock:
                if not await run_in_threadpool(recommender.load_model):
                    await run_in_threadpool(recommender.load_challenger)
                if recommender.reader is None:
                    await run_in_threadpool(recommender.open_feature_store)

    app = FastAPI(
        title="NBA engine",
        version="1",
        summary="Next best actions for the customer on the line, with reasons in plain words.",
        lifespan=lifespan,
        responses=_ERRORS,
    )

    def require(scope: str) -> Callable[..., Awaitable[None]]:
        async def check(key: str | None = Security(api_key_header)) -> None:
            if not s.auth:
                return
            if not key:
                raise HTTPException(
                    401,
                    "missing API key: send it in the X-API-Key header",
                    headers={"WWW-Authenticate": "ApiKey"},
                )
            found = verify(state["log"], key)
            if found is None:
                raise HTTPException(
                    401, "invalid or revoked API key", headers={"WWW-Authenticate": "ApiKey"}
                )
            if scope not in found[1]:
                raise HTTPException(403, f"this API key lacks the '{scope}' scope")

        return check

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(ModelNotReady)
    async def not_ready(_: Request, exc: ModelNotReady) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, 500)

    @app.post(
        "/v1/recommendations",
        response_model=RecommendationResponse,
        dependencies=[Depends(require("recommend"))],
        responses={503: {"model": Problem, "description": "No model loaded yet."}},
        tags=["agent desktop"],
    )
    async def recommendations(req: RecommendationRequest) -> Response:
        """Ranked next best actions for the customer on the line, with reasons, and the
        actions held back with the rule that removed each. Logged before it is returned."""
        recommender: Recommender = state["recommender"]
        answer = await recommender.recommend(req)
        # Serialised directly: the answer is already a validated model, and FastAPI's
        # re-validation of the return value costs about a tenth of the whole request.
        return Response(answer.model_dump_json(), media_type="application/json")

    @app.post(
        "/v1/outcomes",
        response_model=OutcomeResponse,
        dependencies=[Depends(require("outcomes"))],
        responses={
            404: {"model": Problem, "description": "Unknown decision."},
            409: {"model": Problem, "description": "A different outcome was already recorded."},
        },
        tags=["agent desktop"],
    )
    async def outcomes(body: OutcomeRequest) -> OutcomeResponse:
        """Report what happened to a presented action. Idempotent on (decision, action);
        the next recommendation for the customer already counts it."""
        recommender: Recommender = state["recommender"]
        model = recommender.model
        if model is not None and body.action_id not in model.policy.catalog.ids:
            raise HTTPException(422, f"action_id: unknown action '{body.action_id}'")
        record = OutcomeRecord(body.decision_id, body.action_id, body.outcome, body.agent_id)
        result = await asyncio.wrap_future(state["log"].submit(record))
        if result.status is OutcomeStatus.UNKNOWN_DECISION:
            raise HTTPException(404, f"decision_id: unknown decision '{body.decision_id}'")
        if result.status is OutcomeStatus.NOT_RECOMMENDED:
            raise HTTPException(
                422,
                f"action_id: '{body.action_id}' was not recommended in decision "
                f"'{body.decision_id}'",
            )
        if result.status is OutcomeStatus.CONFLICT:
            raise HTTPException(
                409,
                f"outcome '{result.recorded_outcome}' is already recorded for this decision "
                "and action; outcomes cannot be changed",
            )
        status: Literal["recorded", "duplicate"] = (
            "duplicate" if result.status is OutcomeStatus.DUPLICATE else "recorded"
        )
        metrics.outcomes.labels(body.outcome, status).inc()
        return OutcomeResponse(
            decision_id=body.decision_id,
            action_id=body.action_id,
            outcome=body.outcome,
            status=status,
        )

    @app.get(
        "/v1/decisions/{decision_id}",
        dependencies=[Depends(require("recommend"))],
        responses={404: {"model": Problem, "description": "Unknown decision."}},
        tags=["agent desktop"],
    )
    async def decision(decision_id: str) -> dict[str, Any]:
        """A logged decision: its ranking, model version and the outcomes reported."""
        found = state["log"].decision(decision_id)
        if found is None:
            raise HTTPException(404, f"decision_id: unknown decision '{decision_id}'")
        result: dict[str, Any] = found
        return result

    @app.get(
        "/v1/customers/examples",
        response_model=list[CustomerExample],
        dependencies=[Depends(require("recommend"))],
        tags=["agent desk"],
    )
    async def customer_examples() -> list[CustomerExample]:
        """A few customers in typical situations (asked to cancel, missed payments, ...),
        from the newest profiles: something to try the desk with."""
        if not state.get("examples"):  # none yet: look again (features built later)
            state["examples"] = await run_in_threadpool(example_customers, s.profiles_path)
        examples: list[CustomerExample] = state["examples"]
        return examples

    @app.get(
        "/v1/customers/{customer_id:path}",  # ids may hold a /
        response_model=CustomerSummary,
        dependencies=[Depends(require("recommend"))],
        responses={503: {"model": Problem, "description": "The online store is unavailable."}},
        tags=["agent desk"],
    )
    async def customer_summary(
        customer_id: Annotated[str, FastApiPath(pattern=IDENTIFIER_PATTERN, max_length=128)],
    ) -> CustomerSummary:
        """The customer at a glance, in plain words: tenure, products, recent contacts,
        complaints, payment status, mood; ``known: false`` for a customer without a
        profile."""
        recommender: Recommender = state["recommender"]
        if recommender.reader is None:
            raise HTTPException(503, recommender.store_error or "feature store unavailable")
        try:
            # Not on the recommendation's tight budget, but never hung on a stuck store.
            found = await asyncio.wait_for(recommender.reader.submit(customer_id), SUMMARY_WAIT)
        except TimeoutError:
            raise HTTPException(503, f"online store slower than {SUMMARY_WAIT:g} s") from None
        except Exception as exc:
            raise HTTPException(503, f"online store read failed: {exc}") from None
        row, as_of = found if found is not None else (None, None)
        return summarise(customer_id, row, as_of)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/desk/")

    # The agent desk: static files, no build step. The key is entered on the page.
    app.mount("/desk", StaticFiles(directory=STATIC_DIR, html=True), name="desk")

    @app.post(
        "/admin/reload",
        response_model=ReloadResponse,
        dependencies=[Depends(require("admin"))],
        responses={503: {"model": Problem, "description": "No model to load."}},
        tags=["operations"],
    )
    async def reload() -> ReloadResponse:
        """Load nba-policy@champion now (and @challenger, with challenger traffic on).
        Requests keep being answered by the old version until the new one is ready."""
        recommender: Recommender = state["recommender"]
        async with reload_lock:
            changed = await run_in_threadpool(recommender.load_model)
            if not changed:
                changed = await run_in_threadpool(recommender.load_challenger)
        if recommender.model is None:
            raise ModelNotReady(recommender.model_error or "no model")
        return ReloadResponse(model_version=recommender.model.version, changed=changed)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: no model loaded."}},
        tags=["operations"],
    )
    async def readyz() -> JSONResponse:
        """Ready to answer: a model is loaded. A missing feature store does not make the
        service unready (answers are degraded), but is reported."""
        recommender: Recommender = state["recommender"]
        ready = recommender.model is not None
        body = Readiness(
            ready=ready,
            model_version=recommender.model.version if recommender.model else None,
            feature_store=recommender.reader.profiles.online_store
            if recommender.reader
            else f"unavailable ({recommender.store_error})",
            decision_log=state["log"].url,
            objective=recommender.model.objective if recommender.model else None,
            objective_note=recommender.model.objective_note if recommender.model else None,
            detail=None if ready else recommender.model_error,
        )
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(Gate, settings=s, metrics=metrics)
    return app
