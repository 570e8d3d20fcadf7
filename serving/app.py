"""The real-time API for agent desktops (FastAPI). Start it with ``nba serve``.

Routes live in ``serving.routes`` (one module per resource), their dependencies in
``serving.dependencies``, the error-to-status mapping in ``serving.errors``. Everything
heavy (model, feature service, decision log) is set up once in the lifespan and kept on
``app.state.nba``; see ``serving.engine`` for how one answer is made.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from nba.config import Settings, get_settings
from nba.decision_log import DecisionLog
from serving import errors
from serving.auth import FailedKeys
from serving.dependencies import ServerState
from serving.desk import STATIC_DIR
from serving.engine import Recommender
from serving.metrics import Metrics
from serving.middleware import Gate
from serving.reloads import reload_count
from serving.routes import admin, customers, health, interactions, outcomes, recommendations

log = logging.getLogger("nba.serving")

STORE_RETRY_SECONDS = 1.0  # how often a missing feature store or first model is looked for


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API, configured from ``settings`` (default: the environment)."""
    s = settings or get_settings()
    state = ServerState(s, Metrics(), FailedKeys(s.auth_failures_per_minute))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        decision_log = DecisionLog(s.decision_log, deadline=s.decision_log_deadline_ms / 1000)
        decision_log.start()
        recommender = Recommender(s, decision_log, state.metrics)
        await run_in_threadpool(recommender.load_model)
        await run_in_threadpool(recommender.open_feature_store)
        state.log, state.recommender = decision_log, recommender
        await run_in_threadpool(_start_refresher, state)
        app.state.nba = state
        poller = asyncio.create_task(_poll(state, recommender))
        log.info(
            "serving",
            extra={
                "model_version": recommender.model.version if recommender.model else None,
                "online_store": s.online_store,
                "decision_log": decision_log.url,  # secrets masked
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
            if state.refresher is not None:
                state.refresher.close()
            decision_log.close()

    app = FastAPI(
        title="NBA engine",
        version="1",
        summary="Next best actions for the customer on the line, with reasons in plain words.",
        lifespan=lifespan,
        responses=errors.DOCUMENTED,
    )
    app.state.nba = state
    errors.install(app)
    for module in (recommendations, outcomes, interactions, customers, admin, health):
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/desk/")

    # The agent desk: static files, no build step. The key is entered on the page.
    app.mount("/desk", StaticFiles(directory=STATIC_DIR, html=True), name="desk")
    app.add_middleware(Gate, settings=s, metrics=state.metrics)
    return app


def worker_app() -> FastAPI:
    """The app of one worker process of ``nba serve --workers N``: settings and JSON logs
    from the environment, as the parent process had them."""
    from serving.logs import configure_json_logging

    settings = get_settings()
    configure_json_logging(settings.log_level)
    # uvicorn silences its own access lines in the parent only; the app writes its own.
    logging.getLogger("uvicorn.access").propagate = False
    return create_app(settings)


async def _poll(state: ServerState, recommender: Recommender) -> None:
    """Pick up a new @champion, or the first model and the feature store after a late
    `make demo` (or a store that was missing at start), without a restart; and a reload
    requested through another worker (:mod:`serving.reloads`)."""
    s = state.settings
    loop = asyncio.get_running_loop()
    # With the poll off and a model loaded, the registry is read only when asked to.
    next_model = math.inf if recommender.model is not None and not s.model_poll_seconds else 0.0
    seen = await _reload_count(recommender)
    while True:
        missing_model = recommender.model is None
        missing_store = recommender.reader is None
        await asyncio.sleep(STORE_RETRY_SECONDS)
        if missing_store:
            async with state.reload_lock:
                await run_in_threadpool(recommender.open_feature_store)
        if state.refresher is None and recommender.reader is not None:
            await run_in_threadpool(_start_refresher, state)
        asked = await _reload_count(recommender)
        moved = asked is not None and seen is not None and asked != seen
        seen = asked if asked is not None else seen
        # The registry: every 10 s at most until there is a model, then at the set pace;
        # at once when a reload was asked for.
        if not moved and loop.time() < next_model:
            continue
        pace = s.model_poll_seconds
        next_model = loop.time() + (min(pace or 10.0, 10.0) if missing_model else pace or math.inf)
        async with state.reload_lock:
            if not await run_in_threadpool(recommender.load_model):
                await run_in_threadpool(recommender.load_challenger)


def _start_refresher(state: ServerState) -> None:
    """Start writing profiles after pushed events, once the online store is there."""
    from nba.event_ingest import ProfileRefresher
    from nba.feature_store import open_store

    if state.recommender is None or state.recommender.reader is None or state.log is None:
        return
    try:
        state.refresher = ProfileRefresher(state.settings, state.log, open_store(state.settings))
    except Exception as exc:  # looked for again by the poll
        log.warning("profile refresher unavailable", extra={"error": str(exc)})


async def _reload_count(recommender: Recommender) -> int | None:
    """The shared reload counter; ``None`` while the decision log cannot be read."""
    try:
        return await reload_count(recommender.log)
    except Exception:  # the log's own probes report an outage; a missed count waits
        return None
