"""The options every command that talks to an exchange through ccxt shares."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from streams.exchanges import ExchangeSettings

ExchangeOptions = Annotated[
    list[str] | None,
    typer.Option(
        "--exchange-option",
        help="ccxt config KEY=VALUE (dotted keys, JSON values), repeatable: options.fetchCurrencies=false.",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(help="Send every REST call to this scheme://host:port (a mirror); TRADECORE_EXCHANGE_BASE_URL."),
]


def exchange_settings(base_url: str | None) -> ExchangeSettings:
    from streams.exchanges import ExchangeSettings

    return ExchangeSettings(exchange_base_url=base_url) if base_url else ExchangeSettings()
