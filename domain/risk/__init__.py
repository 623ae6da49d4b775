"""Pre-trade risk, pure: per-account state folded from events, and the checks every order and amend must pass.

``engine`` (the ``RiskEngine`` a Kafka processor hosts, and how reference prices reach it), ``rules`` (the checks,
in order, and their ``ReasonCode``), ``state`` (what risk knows of an account), ``limits`` (``RiskLimits``),
``snapshot`` (the state as bytes), ``amounts`` (decimal arithmetic independent of the caller's context).
"""

from domain.risk.engine import KILL_SWITCH_REASON, RiskEngine
from domain.risk.errors import NotARiskInputError, RiskError, RiskLimitsError, SnapshotError
from domain.risk.limits import RiskLimits
from domain.risk.rules import AMEND_CHECKS, NEW_ORDER_CHECKS, ReasonCode
from domain.risk.state import AccountRisk, OpenOrder, Reference

__all__ = [
    "AMEND_CHECKS",
    "KILL_SWITCH_REASON",
    "NEW_ORDER_CHECKS",
    "AccountRisk",
    "NotARiskInputError",
    "OpenOrder",
    "ReasonCode",
    "Reference",
    "RiskEngine",
    "RiskError",
    "RiskLimits",
    "RiskLimitsError",
    "SnapshotError",
]
