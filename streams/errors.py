from schemas.errors import TradecoreError


class StreamsError(TradecoreError):
    """A Kafka-side failure: topics, producers, consumers, processors."""


class AppendFailed(StreamsError):
    """Kafka did not acknowledge an event; it may or may not be in the log."""


class TopicConfigError(StreamsError):
    """An existing topic differs from its declared layout in a way that cannot be fixed in place."""


class TelemetryConfigError(StreamsError):
    """The OTEL_* or metrics settings ask for something this process cannot do."""


class MarketDataMissing(StreamsError):
    """A recorded market-data file is not in the folder the settings name (``TRADECORE_MARKET_DATA``)."""
