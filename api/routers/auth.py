"""Access tokens for configured users (OAuth2 password flow)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from starlette.concurrency import run_in_threadpool

from api.deps import ServicesDep
from api.models import Token

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/token", response_model=Token, summary="Log in", responses={401: {"description": "Wrong name or password"}}
)
async def token(form: Annotated[OAuth2PasswordRequestForm, Depends()], services: ServicesDep) -> dict[str, Any]:
    """Exchange a user name and password for a bearer token (JWT, HS256) carrying the user's roles and accounts."""
    services.login_limiter.hit(form.username)
    # argon2 is deliberately slow: keep it off the event loop.
    user = await run_in_threadpool(services.authenticator.login, form.username, form.password)
    return Token(access_token=services.authenticator.issue(user), expires_in=services.authenticator.ttl_s).model_dump()
