"""`tradecore live-venue`: orders of the live instruments executed at a real exchange."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.exchange import BaseUrl, ExchangeOptions, exchange_settings
from api.cli.reporting import Commands, console, fail

app = Commands()


@app.command("live-venue")
def live_venue(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    poll_interval: Annotated[float, typer.Option(help="Seconds between polls of the orders still working.")] = 1.0,
    exchange_option: ExchangeOptions = None,
    base_url: BaseUrl = None,
) -> None:
    """Execute the orders of the live instruments (TRADECORE_VENUE_LIVE_INSTRUMENTS) at EXCHANGE, until SIGTERM."""
    import logging
    import signal
    import threading

    from domain.instruments import InstrumentRegistry
    from schemas.serde import register_all
    from schemas.settings import RegistrySettings
    from streams.exchanges import connect, parse_options
    from streams.execution.adapter import AdapterStats, LiveVenueAdapter
    from streams.kafka.registry import registry_client
    from streams.processors import ProcessorSettings
    from streams.settings import KafkaSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    credentials = exchange_settings(base_url)
    if not credentials.exchange_api_key.get_secret_value() or not credentials.exchange_secret.get_secret_value():
        raise fail(
            "the live venue signs its orders: set TRADECORE_EXCHANGE_API_KEY and TRADECORE_EXCHANGE_SECRET "
            "(never on the command line)",
            code=2,
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def report(s: AdapterStats) -> None:
        console.print(
            f"{exchange}: rebuilt {s.rebuilt_orders} orders from the log; placed {s.placed}, found already placed "
            f"{s.looked_up}, refused {s.refused}, cancels {s.cancels}, events written {s.events}, retries {s.retries}",
            highlight=False,
        )

    kafka_settings = KafkaSettings()
    client = registry_client(RegistrySettings())
    register_all(client, kafka_settings.topic_prefix)
    processors = ProcessorSettings()
    adapter = LiveVenueAdapter(
        connect(exchange, credentials, parse_options(exchange_option or [])),
        kafka_settings,
        client,
        InstrumentRegistry.from_file(processors.instruments_file),
        processors.venue_live_instruments,
        poll_interval_s=poll_interval,
    )
    adapter.run(stop, report)
    report(adapter.stats)
