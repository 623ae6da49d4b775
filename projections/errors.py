"""What the read side refuses or fails at, each with what to do about it."""

from schemas.errors import TradecoreError


class ProjectionError(TradecoreError):
    """A read model cannot be built, migrated or served."""
