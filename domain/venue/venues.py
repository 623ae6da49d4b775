"""The simulated venues of one processor: one per instrument, made on first use, sharing one ``Sequences``.

The executions stream's aggregates are orders, and an order lives in one instrument, so one ``Sequences`` serves
every venue; sharing it keeps (order, sequence) — and so the event id — unique even when a cancel names an order
under the wrong instrument. The processor's whole state is ``to_snapshot()``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from domain.derive import Sequences
from domain.instruments import Instrument
from domain.venue import snapshot
from domain.venue.errors import SnapshotError, UnknownInstrumentError
from domain.venue.venue import SimulatedVenue, VenueConfig
from schemas.events import AmendAccepted, CancelAccepted, Event, OrderAccepted, TickIngested

INPUTS = (OrderAccepted, CancelAccepted, AmendAccepted, TickIngested)


class Venues(Mapping[str, SimulatedVenue]):
    """The venues made so far, by instrument symbol; ``handle`` routes each event to its instrument's venue."""

    def __init__(
        self, instruments: Mapping[str, Instrument], config: VenueConfig, *, sequences: Sequences | None = None
    ) -> None:
        self.instruments = instruments
        self.config = config
        self.sequences = Sequences() if sequences is None else sequences
        self._venues: dict[str, SimulatedVenue] = {}

    def __getitem__(self, symbol: str) -> SimulatedVenue:
        return self._venues[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._venues)

    def __len__(self) -> int:
        return len(self._venues)

    def venue(self, symbol: str) -> SimulatedVenue:
        """The venue of ``symbol``, made empty on first use.

        Raises:
            UnknownInstrumentError: ``symbol`` is not one of the instruments given.
        """
        found = self._venues.get(symbol)
        if found is None:
            instrument = self.instruments.get(symbol)
            if instrument is None:
                raise UnknownInstrumentError(
                    f"no simulated venue for unknown instrument {symbol!r}",
                    hint=f"known: {', '.join(self.instruments)}",
                )
            found = self._venues[symbol] = SimulatedVenue(instrument, self.config, sequences=self.sequences)
        return found

    def handle(self, event: Event) -> list[Event]:
        """The executions ``event`` derives at its instrument's venue; none for events no venue acts on, nor for
        instruments configured live (the live venue adapter executes those at the exchange)."""
        if not isinstance(event, INPUTS) or event.instrument in self.config.live_instruments:
            return []
        return self.venue(event.instrument).handle(event)

    def to_snapshot(self) -> bytes:
        """Every venue and the shared sequences as deterministic JSON: equal states give equal bytes."""
        return snapshot.dumps(
            {
                "format": snapshot.FORMAT,
                "sequences": self.sequences.last,
                "venues": {symbol: v.state() for symbol, v in self._venues.items()},
            }
        )

    @classmethod
    def from_snapshot(cls, data: bytes, instruments: Mapping[str, Instrument], config: VenueConfig) -> Venues:
        """The venues ``to_snapshot`` wrote, working again under ``config``."""
        loaded = snapshot.loads(data)
        venues = cls(instruments, config, sequences=snapshot.sequences_from(loaded.get("sequences")))
        states = loaded.get("venues")
        if not isinstance(states, dict):
            raise SnapshotError("a venues snapshot holds a map of instrument to venue state")
        for symbol, state in states.items():
            if not isinstance(state, dict):
                raise SnapshotError(f"the snapshot's state of {symbol} is not an object")
            venues.venue(symbol).restore(state)
        return venues
