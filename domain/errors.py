from schemas.errors import TradecoreError


class DomainError(TradecoreError):
    """Trading logic refused its input: an order, a fill, a tick, a limit or a snapshot it cannot apply."""


class InstrumentsFileError(DomainError):
    """The instrument registry file cannot be read."""


class MarketNotUsable(DomainError):
    """An exchange's market structure lacks what an instrument needs (increments, bounds)."""
