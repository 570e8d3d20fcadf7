"""The HTTP server under the API: uvicorn with limits a contact centre's network needs.

uvicorn closes idle keep-alive connections, but waits forever for a request that was
started and not finished (a slow or stuck client holds a connection without ever sending
a key). :class:`DeadlineProtocol` gives each request ``NBA_REQUEST_TIMEOUT_SECONDS`` from
its first byte (or from the connection's opening) to arrive completely, headers and body;
then it answers 408 and closes. ``NBA_MAX_CONNECTIONS`` caps concurrent connections
(uvicorn answers 503 beyond it).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from nba.config import Settings, get_settings

_TIMEOUT_BODY = b'{"code": "request_timeout", "detail": "the request did not arrive in time"}'
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on every incoming request. The deadline
    comes from the process's settings, so that worker processes (``--workers N``), which
    are sent this class by name, read it too."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.request_timeout = get_settings().request_timeout_seconds
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._grace_given = False
        self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            assert self._deadline is not None
            self._deadline.cancel()
            self._deadline = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.write(_TIMEOUT_ANSWER)  # nothing was answered on it yet
        elif not self._grace_given:
            # The app is reading the body under its own deadline, which answers 408; close
            # only if even that does not come.
            self._grace_given = True
            self._deadline = self.loop.call_later(self.request_timeout, self._too_slow)
            return
        self.transport.close()


def run(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve the API with the environment's ``settings`` until stopped: in this process, or
    in ``workers`` processes sharing the port (each with its own model, decision-log writer
    and online-store reader)."""
    import uvicorn

    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,  # the app writes its own JSON access line (no customer data)
        "loop": "uvloop",
        "limit_concurrency": settings.max_connections,  # per worker
        "timeout_keep_alive": 5,
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        uvicorn.run(
            "serving.app:worker_app",
            factory=True,
            workers=workers,
            http="serving.server:DeadlineProtocol",
            **common,
        )
        return
    from serving.app import create_app

    uvicorn.run(create_app(settings), http=DeadlineProtocol, **common)
