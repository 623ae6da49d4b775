"""Every error leaves the API as an RFC 9457 problem+json body that names what is wrong; none is a bare 500."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.errors import ApiError, AuthenticationFailed, BodyRefused, InvalidQuery, RateLimited, ReadModelBehind
from api.models import Problem
from commands.errors import CommandRejected
from commands.gateway import ClientOrderIdReused, UnknownOrder
from schemas.contract_errors import RegistryUnavailableError
from schemas.errors import TradecoreError
from streams.errors import AppendFailed, StreamsError

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("tradecore.api")

DESCRIPTIONS = {
    400: "The body cannot be parsed (not UTF-8, nested too deeply, a number too long); `errors` names `body`",
    401: "No valid access token (missing, expired, forged or revoked)",
    403: "The caller's role or accounts do not allow this",
    404: "No such order, or not one the caller may see",
    409: "client_order_id already used for a different order",
    413: "The body is larger than this route accepts",
    422: "A field, parameter or header breaks a rule; `errors` names each and the rule",
    429: "Over a rate limit; see Retry-After",
    503: "A dependency (Kafka, the registry, Postgres, a projection) did not answer in time; retry (the detail says "
    "whether the command may be in the log)",
}


def documented(*statuses: int | tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer, each a problem+json body: a status alone
    takes its usual description, ``(status, description)`` says what it means on this route."""
    found: dict[int | str, dict[str, Any]] = {}
    for entry in statuses:
        status, description = entry if isinstance(entry, tuple) else (entry, DESCRIPTIONS[entry])
        found[status] = {"model": Problem, "description": description}
    return found


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


UNCONFIRMED = (
    "Kafka did not confirm the command in time, so it may be in the log: retry the same request "
    "(an order is placed once per client_order_id whatever the retries; ticks may then be in the log twice, each "
    "time under sequences of their own)"
)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TradecoreError)
    if isinstance(exc, UnknownOrder):
        return problem(request, 404, "Order not found", str(exc))
    if isinstance(exc, ClientOrderIdReused):
        return problem(request, 409, "Client order id reused", str(exc))
    if isinstance(exc, AppendFailed):  # Kafka's failure does not say the record is not in the log
        log.warning("event log did not confirm: %s", exc)
        return problem(request, 503, "Event log did not confirm", UNCONFIRMED, headers={"Retry-After": "1"})
    if isinstance(exc, StreamsError | RegistryUnavailableError):
        log.warning("event log unavailable: %s", exc)
        return problem(
            request, 503, "Event log unavailable", "the command was not recorded; retry", headers={"Retry-After": "1"}
        )
    log.error("unexpected %s on %s: %s", type(exc).__name__, request.url.path, exc)
    return problem(request, 500, "Internal error", "the command was not recorded; the error is logged")


DATABASE_DOWN = (
    "Postgres did not answer in time (it is down, or every connection is busy); retry the same request (an order is "
    "placed once per client_order_id whatever the retries)"
)


async def _database(request: Request, exc: Exception) -> JSONResponse:
    """Postgres unreachable, or no pooled connection within DatabaseSettings.connection_wait_s: the server's
    dependency, not the client's mistake, and not an internal error either."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return problem(request, 503, "Database unavailable", DATABASE_DOWN, headers={"Retry-After": "1"})


def _unparsable(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not valid UTF-8 (byte {cause.start})"
    if isinstance(cause, RecursionError):
        return "the body is nested too deeply"
    return f"the body cannot be parsed: {cause}"  # e.g. an integer of more digits than Python converts


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.__cause__ is not None:
        # FastAPI raises a bare 400 "There was an error parsing the body" from what went wrong: name it.
        message = _unparsable(exc.__cause__)
        unparsable = [{"field": "body", "rule": "parsable", "message": message}]
        return problem(request, 400, "Body cannot be parsed", message, errors=unparsable)
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


def _problem_media_type(app: FastAPI) -> None:
    """Document error bodies as application/problem+json, the type they are sent with (FastAPI writes a model's
    schema under application/json)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # FastAPI keeps it as app.openapi_schema
            for operation in (op for path in document["paths"].values() for op in path.values()):
                for answer in operation.get("responses", {}).values():
                    content = answer.get("content", {})
                    if content.get("application/json", {}).get("schema") == {"$ref": "#/components/schemas/Problem"}:
                        content[MEDIA_TYPE] = content.pop("application/json")
            return document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    _problem_media_type(app)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(CommandRejected, _rejected)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(TradecoreError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http)
    # A connection refused, dropped or not had in time (psycopg_pool.PoolTimeout is an OperationalError too).
    for unavailable in (psycopg.OperationalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError):
        app.add_exception_handler(unavailable, _database)
    app.add_exception_handler(Exception, _unexpected)
