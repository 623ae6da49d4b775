"""The reference `POST /v1/orders` is measured against (issue 16 item 3): a bare FastAPI endpoint that parses the
same body with the same pydantic model (``commands.models.PlaceOrder``) and answers 202 — no token, no store, no
Kafka, no middleware. Served by uvicorn with the settings ``tradecore api`` gives it (``api/cli/server.py``): the
same workers, log level and access log, so the difference in server CPU per request is what tradecore adds.

``BareServer`` starts it as its own process group for ``bench/order_entry.py``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
from fastapi import FastAPI

from bench.common import ROOT, ApiServer, BenchError, log
from commands.models import PlaceOrder
from deploy import launch


def create_app() -> FastAPI:
    app = FastAPI(title="bare PlaceOrder endpoint")

    @app.post("/v1/orders", status_code=202)
    async def place_order(command: PlaceOrder) -> dict[str, str]:
        return {"client_order_id": command.client_order_id, "status": "PENDING"}

    return app


class BareServer(ApiServer):
    """uvicorn serving ``create_app`` on a free port (the same options as ``tradecore api``)."""

    def __init__(self, workers: int, run_dir: Path) -> None:
        super().__init__(workers, {}, run_dir)
        self.log_path = run_dir / f"bare-workers{workers}.log"

    def start(self) -> None:
        log(f"starting the bare FastAPI+pydantic endpoint, uvicorn --workers {self.workers}")
        port = launch.free_port()
        with self.log_path.open("ab") as out:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", "bench.bare_orders:create_app", "--factory"),
                    *("--http", "api.http_protocol:HttpProtocol"),
                    *("--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers)),
                    *("--log-level", "warning", "--no-access-log"),
                ],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.service = launch.Service("bare endpoint", process, self.log_path, port)
        try:
            launch.wait_listening(self.service, port, 60)
        except launch.LaunchError as err:
            self.service.stop(10)
            raise BenchError(f"the bare endpoint did not start:\n{err}") from err
        deadline = time.monotonic() + 60  # every worker imports the app before any is idle
        while len(psutil.Process(process.pid).children()) < self.workers and time.monotonic() < deadline:
            time.sleep(0.25)
        self.settle()
