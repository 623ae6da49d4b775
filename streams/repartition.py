"""Re-keying executions by account, so that per-account processors (positions, risk) own all of theirs."""

from __future__ import annotations

from collections.abc import Sequence

from schemas.events import Event
from streams.host.processor import Forward, Output


class ExecutionsByAccount:
    """executions (key: instrument) -> executions.by-account (key: account), bytes unchanged."""

    name: str = "executions-by-account"
    partitioned: tuple[str, ...] = ("executions",)
    broadcast: tuple[str, ...] = ()

    def handle(self, topic: str, event: Event) -> Sequence[Output]:
        account: str = getattr(event, "account_id")  # noqa: B009 - every executions event carries it
        return [Forward("executions.by-account", account)]

    def reset(self) -> None:
        """Stateless."""

    def spawn(self) -> ExecutionsByAccount:
        return ExecutionsByAccount()

    def snapshot(self) -> bytes:
        """Stateless: a checkpoint holds only where its partition's input stands."""
        return b""

    def restore(self, data: bytes) -> None:
        """Stateless."""
