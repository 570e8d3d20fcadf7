"""Every error the API answers, with a stable code and a sentence in plain words, mapped to
its HTTP status in one place. Clients branch on ``code``; ``detail`` is for people and never
holds exception text from inside the engine."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from nba.exceptions import DecisionLogError, DecisionLogUnavailable
from serving.schemas import Problem

log = logging.getLogger("nba.serving")

RETRY_AFTER_SECONDS = 1  # what a client is told to wait after a 503 for a dependency

# Status -> the code an error without a more specific one gets.
_CODES = {
    400: "unreadable_body",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "body_too_large",
    422: "invalid_request",
    429: "too_many_failed_keys",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An answer other than success: status, stable code, plain sentence."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def unavailable(code: str, detail: str) -> ApiError:
    """A dependency is down or too slow: 503, try again shortly."""
    return ApiError(503, code, detail, {"Retry-After": str(RETRY_AFTER_SECONDS)})


def problem(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        Problem(code=code, detail=detail).model_dump(), status_code=status, headers=headers
    )


DOCUMENTED: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The body is not readable JSON (not UTF-8, too "
          "deeply nested, cut off)."},
    401: {"model": Problem, "description": "Missing, invalid or revoked API key."},
    403: {"model": Problem, "description": "The key lacks the scope this endpoint needs."},
    408: {"model": Problem, "description": "The request was not sent completely in time."},
    413: {"model": Problem, "description": "Request body too large."},
    422: {"model": Problem, "description": "Malformed request; the message names the field."},
    429: {"model": Problem, "description": "Too many failed API keys from this address; "
          "wait as long as Retry-After says."},
    500: {"model": Problem, "description": "A fault of the engine (logged); never a fault "
          "of the request."},
    503: {"model": Problem, "description": "Not ready (no model) or a dependency is down "
          "(decision log); try again after Retry-After seconds."},
}  # fmt: skip


def install(app: FastAPI) -> None:
    """The exception-to-answer mapping of the whole API."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
        return problem(422, "invalid_request", "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 400:  # FastAPI's JSON decoding failure
            detail = "the request body is not readable JSON"
        code = _CODES.get(exc.status_code, "error")
        return problem(exc.status_code, code, detail, dict(exc.headers or {}))

    @app.exception_handler(DecisionLogUnavailable)
    async def log_down(request: Request, _: DecisionLogUnavailable) -> JSONResponse:
        return await api_error(
            request,
            unavailable(
                "decision_log_unavailable",
                "the decision log cannot record answers right now; try again shortly",
            ),
        )

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        code = "decision_log_error" if isinstance(exc, DecisionLogError) else "internal_error"
        return problem(500, code, "the engine failed on this request")
