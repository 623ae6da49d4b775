"""The root of every error tradecore raises on purpose."""


class TradecoreError(Exception):
    """Base of all tradecore errors; ``hint`` tells the user what to do about it."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  → {self.hint}" if self.hint else text
