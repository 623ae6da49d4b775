"""Every error leaves the API as an RFC 9457 problem+json body that names what is wrong; none is a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError, AuthenticationFailed, BodyRefused, InvalidQuery, RateLimited, ReadModelBehind
from commands.errors import CommandRejected
from commands.gateway import ClientOrderIdReused, UnknownOrder
from schemas.contract_errors import RegistryUnavailableError
from schemas.errors import TradecoreError
from streams.errors import StreamsError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("tradecore.api")


def problem(
    request: Request,
    status: int,
    title: str,
    detail: str,
    *,
    errors: Sequence[dict[str, str]] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://tradecore.dev/problems/{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {}))


def _field(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    path = ""
    for part in parts:
        path += f"[{part}]" if part.isdigit() else (f".{part}" if path else part)
    return path or "body"


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(e["loc"]), "rule": e["type"], "message": e["msg"]} for e in exc.errors()]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return problem(request, 422, "Request is not valid", detail, errors=errors)


async def _rejected(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CommandRejected)
    errors = [{"field": v.field, "rule": v.rule, "message": v.message} for v in exc.violations]
    return problem(request, 422, "Command rejected", str(exc), errors=errors)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    headers = {}
    if isinstance(exc, AuthenticationFailed):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, ReadModelBehind):
        headers["Retry-After"] = "1"
    errors = []
    if isinstance(exc, InvalidQuery) and exc.field is not None:
        errors.append({"field": exc.field, "rule": exc.rule, "message": str(exc)})
    return problem(request, exc.status, exc.title, str(exc), errors=errors, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TradecoreError)
    if isinstance(exc, UnknownOrder):
        return problem(request, 404, "Order not found", str(exc))
    if isinstance(exc, ClientOrderIdReused):
        return problem(request, 409, "Client order id reused", str(exc))
    if isinstance(exc, StreamsError | RegistryUnavailableError):
        log.warning("event log unavailable: %s", exc)
        return problem(
            request, 503, "Event log unavailable", "the command was not recorded; retry", headers={"Retry-After": "1"}
        )
    log.error("unexpected %s on %s: %s", type(exc).__name__, request.url.path, exc)
    return problem(request, 500, "Internal error", "the command was not recorded; the error is logged")


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    title = {
        404: "Not found",
        405: "Method not allowed",
        413: "Content too large",
        415: "Unsupported media type",
        422: "Request is not valid",
    }.get(exc.status_code, "Error")
    errors = exc.errors if isinstance(exc, BodyRefused) else ()
    return problem(request, exc.status_code, title, str(exc.detail), errors=errors, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(request, 500, "Internal error", "the error is logged; nothing was recorded")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(CommandRejected, _rejected)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(TradecoreError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
