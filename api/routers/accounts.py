"""Risk controls: an account's limits and its kill switch (risk role only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from api.bodies import StrictJsonRoute
from api.deps import CommandStamp, RiskOfficer, ServicesDep
from api.models import AccountAck, EventRef
from api.problems import documented
from commands.models import SetRiskLimits, ToggleKillSwitch

router = APIRouter(prefix="/v1", tags=["risk"], route_class=StrictJsonRoute)

AccountId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:\-]+$")]
_ERRORS = documented(
    400,
    401,
    (403, "Not a risk officer (separation of duties: traders and admins do not set risk controls)"),
    413,
    422,
    (503, "Kafka did not confirm in time: the command may be in the log; retry the same request"),
)


@router.put(
    "/accounts/{account_id}/risk-limits",
    status_code=202,
    response_model=AccountAck,
    responses=_ERRORS,
    summary="Set risk limits",
)
async def set_risk_limits(
    account_id: AccountId, command: SetRiskLimits, principal: RiskOfficer, services: ServicesDep, stamp: CommandStamp
) -> dict[str, Any]:
    """Append RiskLimitsSet: the account's limits, replacing the previous ones entirely."""
    done = await services.gateway.set_risk_limits(account_id, command, principal.name, stamp)
    return AccountAck(
        account_id=account_id, status="risk_limits_set", event=EventRef(**done.appended._asdict())
    ).model_dump()


@router.post(
    "/kill-switch",
    status_code=202,
    response_model=AccountAck,
    responses=_ERRORS,
    summary="Engage or release a kill switch",
)
async def toggle_kill_switch(
    command: ToggleKillSwitch, principal: RiskOfficer, services: ServicesDep, stamp: CommandStamp
) -> dict[str, Any]:
    """Append KillSwitchToggled. While engaged, risk rejects the account's new orders and cancels its open ones."""
    done = await services.gateway.toggle_kill_switch(command, principal.name, stamp)
    status = "kill_switch_engaged" if command.engaged else "kill_switch_released"
    return AccountAck(
        account_id=command.account_id, status=status, event=EventRef(**done.appended._asdict())
    ).model_dump()
