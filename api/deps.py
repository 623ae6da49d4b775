"""FastAPI dependencies as ``Annotated`` aliases."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, get_args

from fastapi import Depends, Header, Request
from fastapi.security import OAuth2PasswordBearer

from api.auth import Authenticator, Principal, Role
from api.errors import AuthenticationFailed, Forbidden
from api.live import LiveFeed
from api.outcomes import RiskOutcomes
from api.ratelimit import RateLimiter, SignInLimits
from api.readiness import Readiness
from api.readtokens import LogBounds, WaitSlots
from api.store import IdempotencyKeys
from commands.decide import Stamp
from commands.gateway import CommandGateway
from domain.instruments import InstrumentRegistry
from projections.queries import ReadModels
from streams.replay.pointintime import AccountHistory

# Query text a read model and the log can hold: Postgres text refuses NUL, and no identifier, filter or reason of ours
# has a control character.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


@dataclass(frozen=True)
class Services:
    """What the routes need, built once by the app's lifespan."""

    authenticator: Authenticator
    gateway: CommandGateway
    instruments: InstrumentRegistry
    idempotency: IdempotencyKeys
    account_limiter: RateLimiter
    ticks_limiter: RateLimiter
    sign_in_limits: SignInLimits
    history_limiter: RateLimiter
    outcomes: RiskOutcomes
    order_wait_timeout_s: float
    read_models: ReadModels
    topic_prefix: str
    read_wait_timeout_s: float
    log_bounds: LogBounds
    read_waits: WaitSlots
    readiness: Readiness
    history: AccountHistory
    live: LiveFeed


async def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


bearer = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


async def _principal(
    services: Annotated[Services, Depends(_services)], token: Annotated[str | None, Depends(bearer)]
) -> Principal:
    if not token:
        raise AuthenticationFailed("send an access token: Authorization: Bearer <token> (POST /v1/auth/token)")
    return services.authenticator.verify(token)


async def _stamp(x_correlation_id: Annotated[str | None, Header(max_length=128)] = None) -> Stamp:
    return Stamp(at=datetime.now(UTC), correlation_id=x_correlation_id or str(uuid.uuid4()))


def require(*roles: Role):  # type: ignore[no-untyped-def]
    """A dependency admitting callers with any of ``roles``."""

    async def check(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
        if not principal.has(*roles):
            raise Forbidden(f"{principal.name} lacks the role for this ({' or '.join(roles)})")
        return principal

    return check


def dependency(alias: Any) -> Callable[..., Any]:
    """The function an ``Annotated[..., Depends(f)]`` alias below names (for the routes that call them directly)."""
    found: Callable[..., Any] = get_args(alias)[1].dependency
    return found


ServicesDep = Annotated[Services, Depends(_services)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
Trader = Annotated[Principal, Depends(require(Role.TRADER, Role.ADMIN))]
RiskOfficer = Annotated[Principal, Depends(require(Role.RISK))]
Reader = Annotated[Principal, Depends(require(Role.TRADER, Role.VIEWER, Role.RISK, Role.ADMIN))]
MarketData = Annotated[Principal, Depends(require(Role.ADMIN))]
CommandStamp = Annotated[Stamp, Depends(_stamp)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        description="Repeat a command safely: the same key returns the first outcome and appends nothing.",
    ),
]
