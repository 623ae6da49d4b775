"""What every `tradecore` command shares: where it prints, and how a tradecore error ends it."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer
from rich.console import Console

from schemas.errors import TradecoreError

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)

Command = TypeVar("Command", bound=Callable[..., Any])


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    """Print ``message`` (and what to do about it) to stderr; the caller raises the returned exit."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    if hint:
        errors.print(f"  → {hint}", highlight=False)
    return typer.Exit(code)


def reporting_errors(command: Command) -> Command:
    """Run ``command``; a ``TradecoreError`` is printed with its hint and exits 1, never as a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except TradecoreError as err:
            raise fail(str(err)) from err

    return run  # type: ignore[return-value]


@contextlib.contextmanager
def foreign_errors(what: str, hint: str | None = None) -> Iterator[None]:
    """A client library's own error (librdkafka, ccxt) inside the block as one line, ``what: Type: message``, and
    exit 1; tradecore errors pass on to ``reporting_errors``."""
    try:
        yield
    except TradecoreError:
        raise
    except Exception as err:
        raise fail(f"{what}: {type(err).__name__}: {err}", hint) from err


class Commands(typer.Typer):
    """A command group whose every command reports tradecore errors as ``reporting_errors`` does."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Command], Command]:
        register = super().command(*args, **kwargs)

        def decorator(function: Command) -> Command:
            register(reporting_errors(function))
            return function

        return decorator
