"""`/metrics` of an API running several worker processes (`TRADECORE_WORKERS`): one scrape, every process's counts."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from deploy.local.stack import Endpoints
from tests.api.test_health import sample
from tests.support.api_server import ApiServer, api_server

pytestmark = pytest.mark.integration

REQUESTS = 60
SCRAPES = 12


@pytest.fixture(scope="module")
def two_workers(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with api_server(
        endpoints, tmp_path_factory.mktemp("api-workers"), f"workers-{uuid.uuid4().hex[:8]}.", TRADECORE_WORKERS="2"
    ) as server:
        yield server


def _healthz_served(url: str) -> float:
    """``GET /healthz`` answered so far, as one scrape on a connection of its own reports it."""
    scrape = httpx.get(f"{url}/metrics", timeout=10)
    assert scrape.status_code == 200
    return sample(scrape.text, "tradecore_http_requests_total", method="GET", route="/healthz", status="200")


def test_every_scrape_counts_the_requests_of_every_worker(two_workers: ApiServer) -> None:
    # Each request and each scrape on a new connection, as separate clients come: the workers share the listening
    # socket, so both take some of them.
    before = _healthz_served(two_workers.url)
    for _ in range(REQUESTS):
        assert httpx.get(f"{two_workers.url}/healthz", timeout=10).status_code == 200
    seen = [_healthz_served(two_workers.url) - before for _ in range(SCRAPES)]
    assert seen == [REQUESTS] * SCRAPES


def test_the_shared_samples_go_when_the_api_stops(endpoints: Endpoints, tmp_path: Path) -> None:
    earlier = _shared_dirs()  # the module's API's, still running
    with api_server(endpoints, tmp_path, f"workers-{uuid.uuid4().hex[:8]}.", TRADECORE_WORKERS="2") as server:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert _healthz_served(server.url) >= 1
        shared = _shared_dirs() - earlier
        assert len(shared) == 1, f"not one directory of shared samples for the new API: {shared}"
        assert any(next(iter(shared)).iterdir()), "the workers keep no samples there"
    assert not (_shared_dirs() & shared), "the API left its samples' directory behind"


def _shared_dirs() -> set[Path]:
    return {found for base in ("/dev/shm", tempfile.gettempdir()) for found in Path(base).glob("tradecore-metrics-*")}
