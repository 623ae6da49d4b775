from schemas.errors import TradecoreError


class StackError(TradecoreError):
    """The local stack could not be started, inspected or stopped."""
