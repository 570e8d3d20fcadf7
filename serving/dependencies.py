"""What the routes need, as typed dependencies: the server's state (on ``app.state``) and
the API-key check per scope. All ``async``: FastAPI runs a plain ``def`` dependency in its
thread pool, a hand-off per dependency and request."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from nba.config import Settings
from nba.decision_log import DecisionLog
from nba.event_ingest import ProfileRefresher
from serving.auth import FailedKeys
from serving.engine import Recommender
from serving.errors import ApiError
from serving.keys import verify_async
from serving.metrics import Metrics


@dataclass
class ServerState:
    """Everything set up once in the lifespan and shared by the routes."""

    settings: Settings
    metrics: Metrics
    failed_keys: FailedKeys
    log: DecisionLog | None = None
    recommender: Recommender | None = None
    refresher: ProfileRefresher | None = None
    """Writes profiles after pushed events; ``None`` until there is a features build."""
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    examples: list[Any] = field(default_factory=list)


async def get_state(request: Request) -> ServerState:
    state: ServerState = request.app.state.nba
    return state


async def get_recommender(request: Request) -> Recommender:
    recommender = request.app.state.nba.recommender
    assert recommender is not None  # set in the lifespan, before any request
    return recommender


async def get_log(request: Request) -> DecisionLog:
    decision_log = request.app.state.nba.log
    assert decision_log is not None
    return decision_log


State = Annotated[ServerState, Depends(get_state)]
RecommenderDep = Annotated[Recommender, Depends(get_recommender)]
LogDep = Annotated[DecisionLog, Depends(get_log)]

api_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="A key made by `nba keys create --scopes ...`.",
)
bearer = HTTPBearer(
    auto_error=False,
    description="The same key as `Authorization: Bearer <key>` (for Prometheus scrapers).",
)
_CHALLENGE = {"WWW-Authenticate": "ApiKey"}


def require(scope: str) -> Any:
    """A dependency admitting only keys with ``scope`` (when ``NBA_AUTH`` is on)."""

    async def check(
        request: Request,
        state: State,
        key: Annotated[str | None, Security(api_key_header)],
        token: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    ) -> None:
        if not state.settings.auth:
            return
        presented = key or (token.credentials if token else None)
        if not presented:
            raise ApiError(
                401, "unauthorized", "missing API key: send it in the X-API-Key header", _CHALLENGE
            )
        address = request.client.host if request.client else "unknown"
        wait = state.failed_keys.blocked_for(address)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_failed_keys",
                "too many invalid API keys from this address; try again later",
                {"Retry-After": str(math.ceil(wait))},
            )
        assert state.log is not None
        found = await verify_async(state.log, presented)
        if found is None:
            state.failed_keys.failed(address)
            raise ApiError(401, "unauthorized", "invalid or revoked API key", _CHALLENGE)
        if scope not in found[1]:
            raise ApiError(403, "forbidden", f"this API key lacks the '{scope}' scope")

    return Depends(check)
