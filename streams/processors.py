"""The processors of the design, as the host runs them: each wraps a pure engine and names its inputs.

| processor | owns state per | partitioned inputs (co-partitioned) | broadcast | writes |
|---|---|---|---|---|
| risk | account | orders, executions.by-account, positions | ticks (reference prices) | orders.checked |
| execution | instrument | orders.checked, ticks | — | executions |
| executions-by-account | — | executions | — | executions.by-account |
| positions | account | executions.by-account | — | positions |
| signals | instrument | ticks | — | signals |
| strategy | instrument | signals | — | orders (through risk like any client's) |
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import polars as pl
from pydantic import Field, create_model

from domain.instruments import DEFAULT_FILE, InstrumentRegistry
from domain.lifecycle import ORDER_MEMORY
from domain.positions.book import PositionBook
from domain.positions.errors import SnapshotError as PositionsSnapshotError
from domain.risk.engine import RiskEngine
from domain.risk.errors import SnapshotError as RiskSnapshotError
from domain.risk.limits import LIMITS, Kind, RiskLimits
from domain.signals.bars import Ints
from domain.signals.config import SignalConfig
from domain.signals.engine import SignalEngine
from domain.signals.errors import SnapshotError as SignalsSnapshotError
from domain.signals.frames import by_instrument
from domain.venue.errors import SnapshotError as VenueSnapshotError
from domain.venue.venue import VenueConfig
from domain.venue.venues import Venues
from schemas.events import Direction, Event, OrderFilled, SignalGenerated, TickIngested
from schemas.settings import TradecoreSettings
from streams.host.processor import Output, UnreadableSnapshot
from streams.models.errors import ModelFileError
from streams.strategy.follower import FollowedAccount, SignalFollower

if TYPE_CHECKING:  # one field per limit, ``risk_<limit>``, made at import from the limits' definition
    from streams.models.store import LoadedModel

    _RiskDefaults = TradecoreSettings
else:
    _RiskDefaults = create_model(
        "_RiskDefaults",
        __base__=TradecoreSettings,
        __module__=__name__,
        **{
            f"risk_{name}": (
                int if limit.kind in (Kind.COUNT, Kind.MILLIS) else Decimal,
                Field(limit.default, description=f"Default until RiskLimitsSet: {limit.doc}"),
            )
            for name, limit in LIMITS.items()
        },
    )


class ProcessorSettings(_RiskDefaults):
    """Reference data and defaults of the processors (``TRADECORE_<FIELD>``); ``risk_<limit>`` for each limit of
    ``domain.risk.limits.RiskLimits``, the engine's until an account's RiskLimitsSet."""

    instruments_file: Path = Field(DEFAULT_FILE, description="TOML file of tradable instruments.")
    order_memory: timedelta = Field(
        ORDER_MEMORY,
        gt=timedelta(0),
        description="Risk and venue: how long, in event time, a client order id stays taken and a finished order "
        "stays known (ISO 8601, e.g. PT24H, or seconds).",
    )
    venue_slippage_bps: Decimal = Field(Decimal(1), description="Simulated venue: market-order slippage in bp.")
    venue_maker_fee_bps: Decimal = Field(Decimal(1), description="Simulated venue: maker fee in bp.")
    venue_taker_fee_bps: Decimal = Field(Decimal(5), description="Simulated venue: taker fee in bp.")
    venue_live_instruments: list[str] = Field(
        default_factory=list,
        description='Instruments executed at the real exchange by `tradecore live-venue`, as JSON: ["BTCUSDT"]; '
        "none by default (all simulated).",
    )
    signals_model: Path | None = Field(
        None,
        description="Model file (`tradecore train`) the signals processor scores each closed bar with, as "
        "model(<sha256>) signals; none by default.",
    )
    strategy_accounts: list[FollowedAccount] = Field(
        default_factory=list,
        description='Accounts the signal follower trades, as JSON: [{"account_id": "ACC-S1", "instrument": '
        '"BTCUSDT", "quantity": "0.01", "indicator": "ema_cross"}]; none by default.',
    )

    def default_limits(self) -> RiskLimits:
        return RiskLimits(**{name: getattr(self, f"risk_{name}") for name in LIMITS})

    def venue(self) -> VenueConfig:
        return VenueConfig(
            slippage_bps=self.venue_slippage_bps,
            maker_fee_bps=self.venue_maker_fee_bps,
            taker_fee_bps=self.venue_taker_fee_bps,
            live_instruments=frozenset(self.venue_live_instruments),
            order_memory=self.order_memory,
        )


class RiskProcessor:
    name: str = "risk"
    partitioned: tuple[str, ...] = ("orders", "executions.by-account", "positions")
    broadcast: tuple[str, ...] = ("ticks",)

    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings
        self._limits = settings.default_limits()
        self._instruments = InstrumentRegistry.from_file(settings.instruments_file)
        self.reset()

    def reset(self) -> None:
        self.engine = RiskEngine(self._limits, self._instruments, order_memory=self._settings.order_memory)

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        return self.engine.handle(event)

    def spawn(self) -> RiskProcessor:
        return RiskProcessor(self._settings)

    def snapshot(self) -> bytes:
        return self.engine.to_snapshot()

    def restore(self, data: bytes) -> None:
        try:
            self.engine = RiskEngine.from_snapshot(
                data,
                default_limits=self._limits,
                instruments=self._instruments,
                order_memory=self._settings.order_memory,
            )
        except RiskSnapshotError as err:
            raise UnreadableSnapshot(str(err)) from err


class ExecutionProcessor:
    name: str = "execution"
    partitioned: tuple[str, ...] = ("orders.checked", "ticks")
    broadcast: tuple[str, ...] = ()

    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings
        self._instruments = InstrumentRegistry.from_file(settings.instruments_file)
        self._config = settings.venue()
        self.reset()

    def reset(self) -> None:
        self.venues = Venues(self._instruments, self._config)

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        return self.venues.handle(event)

    def spawn(self) -> ExecutionProcessor:
        return ExecutionProcessor(self._settings)

    def snapshot(self) -> bytes:
        return self.venues.to_snapshot()

    def restore(self, data: bytes) -> None:
        try:
            self.venues = Venues.from_snapshot(data, self._instruments, self._config)
        except VenueSnapshotError as err:
            raise UnreadableSnapshot(str(err)) from err


class PositionsProcessor:
    name: str = "positions"
    partitioned: tuple[str, ...] = ("executions.by-account",)
    broadcast: tuple[str, ...] = ()

    FORMAT = "tradecore.positions-processor/1"

    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings
        self.reset()

    def reset(self) -> None:
        self.books: dict[str, PositionBook] = {}

    def spawn(self) -> PositionsProcessor:
        return PositionsProcessor(self._settings)

    def snapshot(self) -> bytes:
        # Each book's own canonical JSON, embedded as a value: sorted keys make the whole canonical too.
        books = {account: json.loads(book.to_snapshot()) for account, book in self.books.items()}
        return _canonical({"format": self.FORMAT, "books": books})

    def restore(self, data: bytes) -> None:
        document = _document(data, self.FORMAT)
        try:
            self.books = {
                account: PositionBook.from_snapshot(_canonical(book)) for account, book in document["books"].items()
            }
        except (PositionsSnapshotError, KeyError, AttributeError) as err:
            raise UnreadableSnapshot(f"positions: {err!r}") from err

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        if not isinstance(event, OrderFilled):
            return []
        book = self.books.get(event.account_id)
        if book is None:
            book = self.books[event.account_id] = PositionBook(event.account_id)
        changed = book.apply_fill(event)
        return [] if changed is None else [changed]


class SignalsProcessor:
    name: str = "signals"
    partitioned: tuple[str, ...] = ("ticks",)
    broadcast: tuple[str, ...] = ()

    def __init__(self, settings: ProcessorSettings) -> None:
        self.engine = signal_engine(SignalConfig(), settings.signals_model)

    def reset(self) -> None:
        self.engine.reset()

    def spawn(self) -> SignalsProcessor:
        twin = copy.copy(self)  # the same configuration and model (loaded once), a state of its own
        twin.engine = SignalEngine(self.engine.config, self.engine.model)
        return twin

    def snapshot(self) -> bytes:
        return self.engine.to_snapshot()

    def restore(self, data: bytes) -> None:
        try:
            self.engine = SignalEngine.from_snapshot(data, self.engine.model)
        except SignalsSnapshotError as err:
            raise UnreadableSnapshot(str(err)) from err

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        return self.engine.handle(event) if isinstance(event, TickIngested) else []

    def handle_frame(
        self, topic: str, frame: pl.DataFrame, events: Callable[[list[int]], Sequence[Event]]
    ) -> list[tuple[int, Sequence[Output] | Exception]]:
        found: list[tuple[int, Sequence[Output] | Exception]] = []
        for instrument, positions, ticks in by_instrument(frame):

            def triggers(rows: list[int], positions: Ints = positions) -> Sequence[TickIngested]:
                return cast(Sequence[TickIngested], events(positions[rows].tolist()))  # a frame of ticks

            found += [
                (int(positions[row]), out) for row, out in self.engine.handle_columns(instrument, ticks, triggers)
            ]
        return sorted(found, key=lambda item: item[0])  # (instruments' rows interleave)


def signal_engine(config: SignalConfig, model_file: Path | None) -> SignalEngine:
    """The signal engine of ``config``, scoring with the model in ``model_file`` when one is given.

    Raises:
        ModelFileError: the file is not a model this engine can use, or was trained on other bars than ``config``'s.
    """
    model = None if model_file is None else load_model(model_file)
    if model is not None and model.features.bar_interval != config.bar_interval:
        trained, cut = (c.model_dump(mode="json")["bar_interval"] for c in (model.features, config))
        raise ModelFileError(
            f"the model {model_file} was trained on {trained} bars, the signals processor cuts {cut}",
            hint=f"set TRADECORE_SIGNALS_BAR_INTERVAL={trained} (--param bar_interval={trained} in a backtest)",
        )
    return SignalEngine(config, model)


def load_model(path: Path) -> LoadedModel:
    """The model file, loaded by ``streams.models.store`` (imported here: scikit-learn only where a model runs)."""
    from streams.models.store import load

    return load(path)


class StrategyProcessor:
    name: str = "strategy"
    partitioned: tuple[str, ...] = ("signals",)
    broadcast: tuple[str, ...] = ()

    FORMAT = "tradecore.strategy-processor/1"

    def __init__(self, settings: ProcessorSettings) -> None:
        self._settings = settings
        self._accounts = settings.strategy_accounts
        self._instruments = InstrumentRegistry.from_file(settings.instruments_file)
        self.reset()

    def reset(self) -> None:
        self.follower = SignalFollower(self._accounts, self._instruments)

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        return self.follower.handle(event) if isinstance(event, SignalGenerated) else []

    def spawn(self) -> StrategyProcessor:
        return StrategyProcessor(self._settings)

    def snapshot(self) -> bytes:
        # The follower's whole state: the direction last traded per (account, instrument).
        held = sorted([account, instrument, d.value] for (account, instrument), d in self.follower.direction.items())
        return _canonical({"format": self.FORMAT, "direction": held})

    def restore(self, data: bytes) -> None:
        document = _document(data, self.FORMAT)
        self.reset()
        try:
            self.follower.direction = {(a, i): Direction(d) for a, i, d in document["direction"]}
        except (KeyError, ValueError, TypeError) as err:
            raise UnreadableSnapshot(f"strategy: {err!r}") from err


def _canonical(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _document(data: bytes, expected: str) -> dict[str, Any]:
    """A snapshot's JSON object, if of the ``expected`` format."""
    try:
        document = json.loads(data)
    except ValueError as err:
        raise UnreadableSnapshot(f"not JSON: {err}") from err
    if not isinstance(document, dict) or document.get("format") != expected:
        format_ = document.get("format") if isinstance(document, dict) else None
        raise UnreadableSnapshot(f"not a {expected} snapshot (format {format_!r})")
    return document
