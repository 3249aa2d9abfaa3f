"""Errors as answers: every refusal is a 4xx with a message naming what was wrong; an
unexpected failure is a 500 with a short message and no traceback (that goes to the log)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from edgebatch.errors import EdgebatchError

log = logging.getLogger(__name__)


class NotFound(EdgebatchError):
    """Something named in the request does not exist (a run, a table, a worker)."""


class Conflict(EdgebatchError):
    """The request is valid but the thing is not in a state to allow it."""


def _body(status: int, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"detail": message, **extra}, status_code=status)


def _where(loc: tuple[object, ...] | list[object]) -> str:
    return ".".join(str(x) for x in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = _body(exc.status_code, str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{_where(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()[:10]
        ]
        return _body(422, "invalid request: " + "; ".join(problems))

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _body(404, str(exc))

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> JSONResponse:
        return _body(409, str(exc))

    from edgebatch.warehouse.landing.uploads import UploadTooLarge

    @app.exception_handler(UploadTooLarge)
    async def too_large(request: Request, exc: UploadTooLarge) -> JSONResponse:
        return _body(413, str(exc))

    @app.exception_handler(EdgebatchError)
    async def refused(request: Request, exc: EdgebatchError) -> JSONResponse:
        # The library's own refusals (an unknown job, a bad partition, a bad path) name
        # what was wrong: the request asked for something that cannot be.
        return _body(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return _body(500, f"internal error ({type(exc).__name__}); the server log has details")
