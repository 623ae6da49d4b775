"""The read routes' answers byte for byte over rows seeded straight into a namespace's read models: exact decimals
as text (trailing zeros, negatives, 20 integer digits), ISO 8601 times (with and without microseconds), nulls,
non-ASCII text, JSON columns and floats, the checkpoint, the paging cursor, and who sees which account. The expected
bytes are what the routes answered when they ran on SQLAlchemy and validated through their response models
(checked against that implementation); the psycopg path must give the same."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from deploy.local.stack import Endpoints
from projections import db, namespace, tables
from projections.settings import DatabaseSettings
from tests.support.api_server import ApiServer, api_server

pytestmark = pytest.mark.integration

AT = "2026-03-01T12:00:00.123456+00:00"
AT_WHOLE = "2026-03-01T12:00:05+00:00"  # no microseconds: ISO 8601 without a fraction


def _position(account: str, instrument: str, quantity: str) -> dict[str, object]:
    return {
        "account_id": account,
        "instrument": instrument,
        "quantity": quantity,
        "average_price": "39420.50000000",
        "realized_pnl": "-0.00000001",
        "fees_paid": "12345678901234567890.12345678",
        "cost_method": "average",
        "last_fill_id": "fill-ü✓",
        "updated_at": AT,
    }


POSITIONS = [
    _position("ACC-A1", "BTCUSDT", "0.25000000"),
    _position("ACC-B1", "BTCUSDT", "-1.00000000"),
    _position("ACC-B1", "XBTUSD", "0E-8"),
    _position("ACC-Z9", "BTCUSDT", "3.00000000"),
]
ORDER = {
    "order_id": "ord-1",
    "account_id": "ACC-B1",
    "client_order_id": None,
    "instrument": "BTCUSDT",
    "side": "BUY",
    "order_type": "LIMIT",
    "time_in_force": "GTC",
    "quantity": "0.25000000",
    "limit_price": "39420.50000000",
    "status": "PARTIALLY_FILLED",
    "filled_quantity": "0.10000000",
    "leaves_quantity": "0.15000000",
    "reason_code": None,
    "reason": "Zürich “quoted”",
    "placed_at": AT,
    "updated_at": AT_WHOLE,
    "amended_at": None,
    "events": 3,
}
SIGNAL = {
    "instrument": "BTCUSDT",
    "indicator": "sma",
    "direction": "LONG",
    "strength": 0.1 + 0.2,
    "indicator_values": {"fast": 1e16, "slow": -0.5, "n": 3, "name": "ü"},  # jsonb: 1e16 is a number, 10000000000000000
    "occurred_at": AT,
}
CHECKPOINT = [
    {"projection": p, "topic": t, "partition": n, "offset": o, "updated_at": at}
    for p in ("positions", "orders", "signals_latest")
    for t, n, o, at in (("orders", 1, 7, AT), ("orders", 0, 42, AT_WHOLE))
]


@pytest.fixture(scope="module")
def seeded(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """An API over a namespace whose read models hold exactly the rows above (no projector)."""
    prefix = f"bodies-{uuid.uuid4().hex[:8]}."
    with api_server(endpoints, tmp_path_factory.mktemp("bodies"), prefix) as api:
        schema = namespace.live_schema(prefix)  # the API's start-up created its tables
        engine = db.engine(DatabaseSettings(url=endpoints.database_url))
        try:
            with engine.begin() as conn:
                run = conn.execution_options(schema_translate_map={None: schema})
                run.execute(insert(tables.positions), POSITIONS)
                run.execute(insert(tables.orders), [ORDER])
                run.execute(insert(tables.signals_latest), [SIGNAL])
                run.execute(insert(tables.projection_checkpoints), CHECKPOINT)
            yield api
        finally:
            engine.dispose()


def _get(api: ApiServer, user: str, path: str, **params: object) -> bytes:
    with api.client(user) as client:
        answer = client.get(path, params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    return answer.content


def _checkpoint(projection: str) -> str:
    return (
        f'{{"projection":"{projection}","offsets":[{{"topic":"orders","partition":0,"offset":42}},'
        f'{{"topic":"orders","partition":1,"offset":7}}],"updated_at":"{AT_WHOLE}"}}'
    )


POSITION_ROWS = {
    ("ACC-A1", "BTCUSDT"): '{"account_id":"ACC-A1","instrument":"BTCUSDT","quantity":"0.25000000",',
    ("ACC-B1", "BTCUSDT"): '{"account_id":"ACC-B1","instrument":"BTCUSDT","quantity":"-1.00000000",',
    ("ACC-B1", "XBTUSD"): '{"account_id":"ACC-B1","instrument":"XBTUSD","quantity":"0.00000000",',
    ("ACC-Z9", "BTCUSDT"): '{"account_id":"ACC-Z9","instrument":"BTCUSDT","quantity":"3.00000000",',
}
POSITION_REST = (
    '"average_price":"39420.50000000","realized_pnl":"-0.00000001","fees_paid":"12345678901234567890.12345678",'
    f'"cost_method":"average","last_fill_id":"fill-ü✓","updated_at":"{AT}"}}'
)


def _positions(*keys: tuple[str, str], following: str | None) -> bytes:
    items = ",".join(POSITION_ROWS[key] + POSITION_REST for key in keys)
    cursor = "null" if following is None else f'"{following}"'
    return f'{{"items":[{items}],"next":{cursor},"checkpoint":{_checkpoint("positions")}}}'.encode()


def test_a_trader_reads_their_own_positions_byte_for_byte(seeded: ApiServer) -> None:
    assert _get(seeded, "bob", "/v1/positions") == _positions(
        ("ACC-B1", "BTCUSDT"), ("ACC-B1", "XBTUSD"), following=None
    )


def test_a_viewer_pages_through_every_account_with_the_cursor(seeded: ApiServer) -> None:
    first = _get(seeded, "vera", "/v1/positions", limit=2)
    cursor = "WyJBQ0MtQjEiLCAiQlRDVVNEVCJd"  # ["ACC-B1", "BTCUSDT"], base64url of the page's last key
    assert first == _positions(("ACC-A1", "BTCUSDT"), ("ACC-B1", "BTCUSDT"), following=cursor)
    second = _get(seeded, "vera", "/v1/positions", limit=2, cursor=cursor)
    assert second == _positions(("ACC-B1", "XBTUSD"), ("ACC-Z9", "BTCUSDT"), following=None)
    filtered = _get(seeded, "vera", "/v1/positions", instrument="XBTUSD", account_id="ACC-B1")
    assert filtered == _positions(("ACC-B1", "XBTUSD"), following=None)


def test_an_empty_page_still_carries_the_checkpoint(seeded: ApiServer) -> None:
    assert _get(seeded, "alice", "/v1/positions", instrument="XBTUSD") == _positions(following=None)
    assert (
        _get(seeded, "alice", "/v1/pnl")
        == b'{"items":[],"next":null,"checkpoint":{"projection":"pnl","offsets":[],"updated_at":null}}'
    )


def test_one_order_with_nulls_and_text_byte_for_byte(seeded: ApiServer) -> None:
    assert (
        _get(seeded, "bob", "/v1/orders/ord-1")
        == (
            '{"order_id":"ord-1","account_id":"ACC-B1","client_order_id":null,"instrument":"BTCUSDT","side":"BUY",'
            '"order_type":"LIMIT","time_in_force":"GTC","quantity":"0.25000000","limit_price":"39420.50000000",'
            '"status":"PARTIALLY_FILLED","filled_quantity":"0.10000000","leaves_quantity":"0.15000000",'
            f'"reason_code":null,"reason":"Zürich “quoted”","placed_at":"{AT}","updated_at":"{AT_WHOLE}",'
            f'"amended_at":null,"events":3,"checkpoint":{_checkpoint("orders")}}}'
        ).encode()
    )


def test_floats_and_json_columns_as_the_model_wrote_them(seeded: ApiServer) -> None:
    assert (
        _get(seeded, "vera", "/v1/signals")
        == (
            '{"items":[{"instrument":"BTCUSDT","indicator":"sma","direction":"LONG","strength":0.30000000000000004,'
            f'"indicator_values":{{"n":3,"fast":10000000000000000,"name":"ü","slow":-0.5}},"occurred_at":"{AT}"}}],"next":null,'
            f'"checkpoint":{_checkpoint("signals_latest")}}}'
        ).encode()
    )


def test_scope_and_bad_parameters_answer_problems(seeded: ApiServer) -> None:
    with seeded.client("bob") as bob:
        other = bob.get("/v1/orders/ord-unknown")
        foreign = bob.get("/v1/positions", params={"account_id": "ACC-Z9"})
        cursor = bob.get("/v1/positions", params={"cursor": "bm90LWEta2V5"})
        nul = bob.get("/v1/positions", params={"cursor": base64.urlsafe_b64encode(b'["ACC-B1", "\\u0000"]').decode()})
    with seeded.client("alice") as alice:
        not_hers = alice.get("/v1/orders/ord-1")
    statuses = [answer.status_code for answer in (other, not_hers, foreign, cursor, nul)]
    assert statuses == [404, 404, 403, 422, 422]
    for answer in (other, not_hers, foreign, cursor, nul):
        assert answer.headers["content-type"] == "application/problem+json"
    assert "cursor" in cursor.json()["detail"]


def test_the_order_list_filters_by_status(seeded: ApiServer) -> None:
    def found(status: str) -> list[str]:
        with seeded.client("bob") as bob:
            answer = bob.get("/v1/orders", params={"status": status})
        assert answer.status_code == 200, answer.text
        return [item["order_id"] for item in answer.json()["items"]]

    assert (found("PARTIALLY_FILLED"), found("FILLED")) == (["ord-1"], [])


def test_list_parameters_the_floor_leaves_to_fastapi_answer_as_fastapi_does(seeded: ApiServer) -> None:
    """A parameter given twice, or one its validator refuses, is judged by FastAPI (``api.list_route``): the last
    of two values wins, a bad value is a 422 naming it — as before the floor."""
    with seeded.client("vera") as vera:
        twice = vera.get("/v1/positions", params=[("instrument", "BTCUSDT"), ("instrument", "XBTUSD")])
        assert twice.content == _positions(("ACC-B1", "XBTUSD"), following=None)
        bad = [vera.get("/v1/positions", params=params) for params in ({"limit": 0}, {"instrument": ""})]
        statuses = [vera.get("/v1/orders", params={"status": "SOMETIMES"}).status_code]
    assert [answer.status_code for answer in bad] + statuses == [422, 422, 422]
    assert [answer.json()["errors"][0]["field"] for answer in bad] == ["limit", "instrument"]
