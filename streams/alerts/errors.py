"""The errors of the alerts service, under the stream side's base error."""

from streams.errors import StreamsError


class AlertsError(StreamsError):
    """The alerts service cannot go on (a rule, the secret, Kafka)."""


class RulesError(AlertsError):
    """The rules file is not valid TOML or a rule in it is wrong; the message names the line and the field."""


class Interrupted(AlertsError):
    """A stop was asked for while an alert was still being retried: it stays uncommitted and is sent again on the
    next start, under the same idempotency key."""
