"""`tradecore api`: the command and query API."""

from __future__ import annotations

from typing import Annotated

import typer

from api.cli.reporting import Commands, fail

app = Commands()


@app.command("api")
def serve_api(
    host: Annotated[str | None, typer.Option(help="Listen address (TRADECORE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (TRADECORE_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (TRADECORE_WORKERS).")] = None,
) -> None:
    """Serve the command API (uvicorn)."""
    import uvicorn
    from pydantic import ValidationError

    from api.settings import ApiSettings
    from api.telemetry import shared_across

    try:
        settings = ApiSettings()
    except ValidationError as err:
        raise fail(
            f"API settings are not valid:\n{err}",
            "set TRADECORE_JWT_SECRET (e.g. `openssl rand -hex 32`) and TRADECORE_USERS_FILE",
        ) from err
    processes = workers or settings.workers
    with shared_across(processes):
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            http="api.http_protocol:HttpProtocol",
            host=host or settings.host,
            port=port or settings.port,
            workers=processes,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace_s,
        )
