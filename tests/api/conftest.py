from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from deploy.local.stack import Endpoints
from tests.support.api_server import ApiServer, api_server
from tests.support.independent import IndependentReader
from tests.support.pipeline import start_projector
from tests.support.workers import stop


@pytest.fixture(scope="session")
def api(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One API server for the suite, in a topic namespace of its own; limits high enough not to bind (every test
    signs in from 127.0.0.1, so the per-address limit of failed sign-ins is raised; test_sign_in_limits tests it)."""
    prefix = f"api-{uuid.uuid4().hex[:8]}."
    with api_server(
        endpoints,
        tmp_path_factory.mktemp("api"),
        prefix,
        TRADECORE_RATE_LIMIT="1000/second",
        TRADECORE_LOGIN_ADDRESS_FAILURE_LIMIT="1000/minute",
    ) as server:
        yield server


@pytest.fixture(scope="session")
def projected(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API with a projector behind it, so the read routes answer rows (the probes: auth matrix, schemathesis)."""
    workdir = tmp_path_factory.mktemp("probes")
    prefix = f"probe-{uuid.uuid4().hex[:8]}."
    with api_server(endpoints, workdir, prefix, TRADECORE_RATE_LIMIT="1000/second") as server:
        projector = start_projector(endpoints, prefix, workdir / "project.log")
        try:
            yield server
        finally:
            stop(projector, workdir / "project.log")


@pytest.fixture
def reader(api: ApiServer) -> Iterator[IndependentReader]:
    found = IndependentReader(api.endpoints.kafka_bootstrap, api.endpoints.schema_registry_url)
    yield found
    found.close()


@pytest.fixture
def account() -> str:
    """A fresh account of alice's for each test, so per-account state never leaks between tests."""
    return f"ACC-A{uuid.uuid4().int % 29 + 1}"


def order(account: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "account_id": account,
        "client_order_id": f"t-{uuid.uuid4().hex[:12]}",
        "instrument": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "time_in_force": "GTC",
        "quantity": "0.25",
        "limit_price": "39420.50",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
