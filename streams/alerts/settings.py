"""The secret that signs every alert: from the environment only, never an option (argv shows in `ps`)."""

from pydantic import Field, SecretStr

from schemas.settings import TradecoreSettings
from streams.alerts.errors import AlertsError

MIN_SECRET_CHARS = 16


class AlertsSettings(TradecoreSettings):
    """Settings of `tradecore alerts` beside the rules file."""

    alerts_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of the Tradecore-Signature header (TRADECORE_ALERTS_SECRET)."
    )

    def secret(self) -> bytes:
        """The key, refused when missing or short; the message never holds the value."""
        if self.alerts_secret is None or not self.alerts_secret.get_secret_value():
            raise AlertsError(
                "TRADECORE_ALERTS_SECRET is not set: alerts are signed with it",
                hint="export TRADECORE_ALERTS_SECRET (e.g. from your secret store); the receiver verifies with it",
            )
        value = self.alerts_secret.get_secret_value()
        if len(value) < MIN_SECRET_CHARS:
            raise AlertsError(f"TRADECORE_ALERTS_SECRET is shorter than {MIN_SECRET_CHARS} characters")
        return value.encode()
