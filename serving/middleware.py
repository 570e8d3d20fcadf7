"""Pure ASGI middleware in front of every route: body limit and deadline, security headers,
latency histogram and access log. (Starlette's BaseHTTPMiddleware costs more per request
than this whole class.)"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nba.config import Settings
from serving.metrics import Metrics

access = logging.getLogger("nba.access")

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

_ROUTES = (
    "/v1/recommendations",
    "/v1/outcomes",
    "/v1/decisions",
    "/v1/customers",
    "/desk",
    "/admin/reload",
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
)
_EVERY_RESPONSE = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
]
# Answers about customers must not be kept by browsers or proxies.
_NO_STORE = [(b"cache-control", b"no-store")]
# The desk loads only its own files and talks only to this API.
_DESK_POLICY = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    )
]


def route_label(path: str) -> str:
    for route in _ROUTES:
        if path == route or path.startswith(route + "/"):
            return route
    return "other"


_API_HEADERS = _EVERY_RESPONSE + _NO_STORE
_DESK_HEADERS = _EVERY_RESPONSE + _DESK_POLICY


def _extra_headers(path: str) -> list[tuple[bytes, bytes]]:
    if path.startswith("/v1/"):
        return _API_HEADERS
    if path.startswith("/desk") or path == "/":
        return _DESK_HEADERS
    return _EVERY_RESPONSE


class _BodyTooLarge(Exception):
    pass


class _BodyTooSlow(Exception):
    pass


class Gate:
    """Refuses bodies over the limit (413) or not sent within the request timeout (408),
    adds the security headers, times every request for the latency histogram and writes
    the access log line."""

    def __init__(self, app: ASGIApp, settings: Settings, metrics: Metrics) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.body_seconds = settings.request_timeout_seconds
        self.metrics = metrics
        self.access_log = settings.access_log

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        extra = _extra_headers(scope["path"])

        async def send_with_headers(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            body_receive = await self._buffered(scope, receive)
        except _BodyTooLarge:
            await _send_problem(
                send_with_headers,
                413,
                "body_too_large",
                f"request body larger than {self.max_bytes} bytes",
            )
        except _BodyTooSlow:
            await _send_problem(
                send_with_headers,
                408,
                "request_timeout",
                f"the request body did not arrive within {self.body_seconds:g} s",
            )
        else:
            await self.app(scope, body_receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            route = route_label(scope["path"])
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
        """Read the whole body (at most ``max_bytes``, within the request timeout) and
        replay it to the app."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                raise _BodyTooLarge
        if scope["method"] in ("GET", "HEAD"):
            return receive
        chunks, size, more = [], 0, True
        deadline = time.monotonic() + self.body_seconds
        while more:
            try:
                message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
            except TimeoutError:
                raise _BodyTooSlow from None
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


async def _send_problem(send: Any, status: int, code: str, detail: str) -> None:
    payload = json.dumps({"code": code, "detail": detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if status == 408:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
