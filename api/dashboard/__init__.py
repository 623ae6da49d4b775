"""The trading dashboard: static files (plain ES modules, no build step) served at `/` beside the JSON API.

Its one third-party asset, TradingView's lightweight-charts, is pinned in package.json/package-lock.json and copied
from node_modules into web/vendor/ by `make dashboard`; nothing is fetched from a CDN.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).with_name("web")
CHARTS = WEB / "vendor" / "lightweight-charts.standalone.production.js"

log = logging.getLogger("tradecore.api")


def mount(app: FastAPI) -> None:
    """Serve the dashboard at `/`; without its built chart library, say how to build it instead."""
    if CHARTS.exists():
        app.mount("/", StaticFiles(directory=WEB, html=True), name="dashboard")
        return
    log.warning("the dashboard's assets are not built (%s is missing): run `make dashboard`", CHARTS)

    @app.get("/", include_in_schema=False, response_class=PlainTextResponse, status_code=503)
    async def unbuilt() -> str:
        return "The dashboard's assets are not built: run `make dashboard` (needs Node.js 20 and npm).\n"
