"""One projector per read model, by name."""

from projections.projectors.base import Projector, Record, Writer
from projections.projectors.market import (
    CandlesProjector,
    PnlProjector,
    PositionsProjector,
    SignalsLatestProjector,
)
from projections.projectors.orders import (
    FillsProjector,
    OrderEventsProjector,
    OrdersProjector,
    RiskLimitsProjector,
    RiskRejectionsProjector,
)

PROJECTORS: dict[str, type[Projector]] = {
    cls.name: cls
    for cls in (
        OrdersProjector,
        OrderEventsProjector,
        FillsProjector,
        PositionsProjector,
        PnlProjector,
        CandlesProjector,
        SignalsLatestProjector,
        RiskLimitsProjector,
        RiskRejectionsProjector,
    )
}


def select(names: list[str] | None) -> list[Projector]:
    """The projectors named (all when none are); KeyError names one that does not exist."""
    for name in names or []:
        if name not in PROJECTORS:
            raise KeyError(f"no projection called {name!r}; projections: {', '.join(PROJECTORS)}")
    return [cls() for name, cls in PROJECTORS.items() if not names or name in names]


__all__ = ["PROJECTORS", "Projector", "Record", "Writer", "select"]
