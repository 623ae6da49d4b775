"""Access tokens for configured users (OAuth2 password flow)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.errors import AuthenticationFailed
from api.models import Token
from api.problems import documented

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=Token,
    summary="Log in",
    responses=documented(
        400,
        (401, "Wrong name or password, or the user is disabled (the same answer for an unknown name)"),
        422,
        (429, "Too many failed sign-ins from this address, for this name or any; see Retry-After"),
    ),
)
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, services: ServicesDep
) -> dict[str, Any]:
    """Exchange a user name and password for a bearer token (JWT, HS256) carrying the user's roles and accounts."""
    # Behind a proxy this is the proxy's address unless uvicorn is told to trust its forwarded headers.
    address = request.client.host if request.client else "unknown"
    services.sign_in_limits.check(form.username, address)
    try:
        # argon2 is deliberately slow: keep it off the event loop.
        user = await run_in_threadpool(services.authenticator.login, form.username, form.password)
    except AuthenticationFailed:
        services.sign_in_limits.failed(form.username, address)
        raise
    return Token(access_token=services.authenticator.issue(user), expires_in=services.authenticator.ttl_s).model_dump()
