"""Trading signals from ticks: event-time bars, incremental indicators, crossings as ``SignalGenerated``.

Pure logic — no Kafka, no clock, no randomness — hosted by the signals processor and reused by replay and backtest.
"""

from domain.signals.config import SignalConfig
from domain.signals.engine import SignalEngine
from domain.signals.errors import SignalsError, SnapshotError

__all__ = ["SignalConfig", "SignalEngine", "SignalsError", "SnapshotError"]
