"""The dashboard at `/` in Debian's headless chromium, driven by Playwright, over the whole pipeline (API, processors
and projector as `tradecore` processes on the real stack): sign-in, the live blotter, the order ticket's lifecycle,
risk rejections, roles, account scope, and a live feed that survives an API restart. Each test saves a screenshot in
its pytest tmp dir."""

from __future__ import annotations

import json
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect, sync_playwright

from deploy.local.stack import Endpoints
from tests.support.api_server import PASSWORD, ApiServer, api_server
from tests.support.browser import launch
from tests.support.pipeline import start_projector
from tests.support.workers import start_worker

pytestmark = pytest.mark.integration

BID, ASK = Decimal("39400.00"), Decimal("39401.00")
LIVE_S = 30_000  # ms the page gets to show a change the pipeline makes


@pytest.fixture(scope="module")
def desk(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """The API, every processor and the projector, in a namespace of this module's own."""
    prefix = f"dash-{uuid.uuid4().hex[:8]}."
    workdir = tmp_path_factory.mktemp("dashboard")
    with api_server(
        endpoints,
        workdir,
        prefix,
        TRADECORE_RATE_LIMIT="1000/second",
        TRADECORE_LOGIN_RATE_LIMIT="1000/minute",  # every test signs in afresh
        TRADECORE_ORDER_WAIT_TIMEOUT_S="20",
    ) as api:
        names = ["risk", "execution", "executions-by-account", "positions"]
        worker = start_worker(endpoints, prefix, names, workdir / "worker.log")
        projector = start_projector(endpoints, prefix, workdir / "projector.log")
        try:
            tick(api)
            yield api
        finally:
            for proc in (worker, projector):
                proc.terminate()
                proc.wait(60)


@pytest.fixture(scope="module")
def browser() -> Iterator[BrowserContext]:
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        context = launch(playwright, Path(profile))
        yield context
        context.close()


@pytest.fixture
def page(browser: BrowserContext, tmp_path: Path) -> Iterator[Page]:
    opened = browser.new_page()
    yield opened
    opened.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    opened.close()


def tick(api: ApiServer) -> None:
    """A quote at BID/ASK now: the reference price risk checks against and the touch the venue fills at."""
    quote = {"instrument": "BTCUSDT", "bid": str(BID), "ask": str(ASK), "bid_size": "5", "ask_size": "5"}
    with api.client("adam") as admin:
        sent = admin.post("/v1/ticks", json={"source": "dash", "ticks": [{**quote, "exchange_ts": _now()}]})
    assert sent.status_code == 202, sent.text
    time.sleep(0.5)  # the quote is in the venue's book before the orders that follow


def place(api: ApiServer, user: str, account: str, **fields: Any) -> dict[str, Any]:
    order = {
        "account_id": account,
        "client_order_id": f"dash-{uuid.uuid4().hex[:10]}",
        "instrument": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "time_in_force": "GTC",
        "quantity": "0.1",
        "limit_price": str(BID - 100),  # rests
        **fields,
    }
    with api.client(user) as client:
        answer = client.post("/v1/orders", params={"wait": "ACCEPTED"}, json=order)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def sign_in(page: Page, api: ApiServer, user: str, hash_: str = "") -> None:
    page.goto(f"{api.url}/{hash_}")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live")).to_contain_text("live: on", timeout=LIVE_S)
    page.evaluate("window.notReloaded = true")


def order_row(page: Page, order_id: str) -> Any:
    return page.locator(f'#orders tr[data-order="{order_id}"]')


def test_sign_in_keeps_the_token_in_memory_only(desk: ApiServer, page: Page) -> None:
    page.goto(f"{desk.url}/")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("not her password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).not_to_be_empty()
    sign_in(page, desk, "alice")
    expect(page.locator("#user")).to_contain_text("alice (trader")
    expect(page.locator("#ticket")).to_be_visible()
    stored = page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    assert stored == [0, 0, ""]
    page.reload()  # the token went with the page: signed out
    expect(page.locator("#signin")).to_be_visible()
    # From the keyboard alone: the user name field, Tab to the password, Enter.
    page.get_by_label("User name").focus()
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("#live")).to_contain_text("live: on", timeout=LIVE_S)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#signin")).to_be_visible()
    expect(page.locator("#desk")).to_be_hidden()


def test_orders_placed_through_the_api_arrive_in_the_blotter_without_reloading(desk: ApiServer, page: Page) -> None:
    sign_in(page, desk, "alice")
    placed = [place(desk, "alice", "ACC-A2") for _ in range(3)]
    for ack in placed:
        expect(order_row(page, ack["order_id"]).locator(".status")).to_have_text("ACCEPTED", timeout=LIVE_S)
    assert page.evaluate("window.notReloaded") is True
    # Its audit trail on click: the request and risk's decision, with correlation and causation.
    order_row(page, placed[0]["order_id"]).get_by_role("button").click()
    trail = page.locator("#trail tbody tr")
    expect(trail).to_have_count(2, timeout=LIVE_S)
    expect(trail.nth(0)).to_contain_text("OrderPlaced")
    expect(trail.nth(1)).to_contain_text("OrderAccepted")


def test_an_order_from_the_ticket_fills_live_and_risk_rejects_with_its_reason(desk: ApiServer, page: Page) -> None:
    sign_in(page, desk, "alice")
    tick(desk)
    ticket = page.locator("#order-form")
    ticket.get_by_label("Account").select_option("ACC-A3")
    ticket.get_by_label("▲ Buy").check()
    ticket.get_by_label("Quantity").fill("0.2")
    ticket.get_by_label("Limit price").fill(str(ASK + 10))  # crosses the ask: fills
    ticket.get_by_role("button", name="Place order").click()
    lifecycle = page.locator("#lifecycle")
    expect(lifecycle).to_have_text(re.compile(r": PENDING → ACCEPTED( → PARTIALLY_FILLED)? → FILLED$"), timeout=LIVE_S)
    expect(page.locator("#fills tbody tr", has_text="ACC-A3")).to_contain_text("▲ BUY", timeout=LIVE_S)
    expect(page.locator("#pnl tbody tr", has_text="ACC-A3")).to_contain_text("0.2", timeout=LIVE_S)

    ticket.get_by_label("Limit price").fill(str(ASK * 2))  # far outside the price collar
    ticket.get_by_role("button", name="Place order").click()
    expect(lifecycle).to_have_text(re.compile(r": PENDING → REJECTED — .*price_collar_bps"), timeout=LIVE_S)
    expect(page.locator("#rejections tbody tr", has_text="ACC-A3")).to_contain_text("collar", timeout=LIVE_S)

    # The API's own rule, shown on the field it names: a quantity finer than the instrument's lot.
    ticket.get_by_label("Quantity").fill("0.000000001")
    ticket.get_by_role("button", name="Place order").click()
    expect(page.locator("#e-quantity")).not_to_be_empty()


def test_a_trader_amends_and_cancels_an_order_from_its_audit_trail(desk: ApiServer, page: Page) -> None:
    sign_in(page, desk, "alice")
    ack = place(desk, "alice", "ACC-A6")
    row = order_row(page, ack["order_id"])
    expect(row.locator(".status")).to_have_text("ACCEPTED", timeout=LIVE_S)
    row.get_by_role("button").click()
    detail = page.locator("#detail")
    detail.get_by_label("New limit").fill(str(BID - 200))
    detail.get_by_role("button", name="Amend").click()
    expect(page.locator("#amend-status")).to_have_text("amend requested")
    expect(page.locator("#trail tbody")).to_contain_text("AmendRequested", timeout=LIVE_S)
    detail.get_by_role("button", name="Cancel order").click()
    expect(row.locator(".status")).to_have_text("CANCELLED", timeout=LIVE_S)
    expect(page.locator("#trail tbody")).to_contain_text("OrderCancelled", timeout=LIVE_S)
    expect(page.locator("#amend-form")).to_be_hidden()  # nothing left to amend or cancel


def test_a_busy_blotter_shows_the_newest_orders_and_says_how_many_more_there_are(desk: ApiServer, page: Page) -> None:
    sign_in(page, desk, "alice")
    with desk.client("alice") as client:
        for i in range(205):  # more than the 200 rows a table shows
            order = {
                "account_id": "ACC-A5",
                "client_order_id": f"busy-{uuid.uuid4().hex[:10]}",
                "instrument": "BTCUSDT",
                "side": "SELL" if i % 2 else "BUY",
                "order_type": "LIMIT",
                "time_in_force": "GTC",
                "quantity": "0.1",
                "limit_price": str(BID - 100 if i % 2 == 0 else ASK + 100),  # rests
            }
            answer = client.post("/v1/orders", json=order)
            assert answer.status_code == 202, answer.text
    last = answer.json()["order_id"]
    # Decided live, either way: posted faster than 100 a second, the newest trip risk's max_orders_per_second.
    decided = re.compile(r"^(ACCEPTED|REJECTED)$")
    expect(order_row(page, last).locator(".status")).to_have_text(decided, timeout=LIVE_S)
    expect(page.locator("#orders tbody tr")).to_have_count(200)
    expect(page.locator("#orders-count")).to_have_text(re.compile(r"^The newest 200 of \d+ orders; filter to find"))
    # The filter narrows what the cap is taken from: this account's orders alone.
    page.locator("#q-account").fill("ACC-A5")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#orders tbody tr", has_not_text="ACC-A5")).to_have_count(0, timeout=LIVE_S)
    expect(page.locator("#orders tbody tr")).to_have_count(200)
    assert page.evaluate("window.notReloaded") is True


def test_a_viewer_reads_every_account_but_has_no_order_form(desk: ApiServer, page: Page) -> None:
    ack = place(desk, "bob", "ACC-B1")
    sign_in(page, desk, "vera")
    expect(order_row(page, ack["order_id"])).to_be_visible(timeout=LIVE_S)
    expect(page.locator("#ticket")).to_be_hidden()
    expect(page.locator("#risk-controls")).to_be_hidden()
    assert page.get_by_role("button", name="Place order").count() == 0 or not page.locator("#ticket").is_visible()


def test_a_risk_officer_engages_a_kill_switch_after_a_confirm(desk: ApiServer, page: Page) -> None:
    sign_in(page, desk, "rita")
    expect(page.locator("#ticket")).to_be_hidden()
    controls = page.locator("#risk-controls")
    controls.get_by_label("Account").fill("ACC-A9")
    controls.get_by_label("Reason").fill("desk review")
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    engage = controls.get_by_role("button", name="Engage kill switch")
    engage.click()  # declined: nothing sent
    expect(page.locator("#kill-status")).to_be_empty()
    engage.click()
    expect(page.locator("#limits tbody tr", has_text="ACC-A9")).to_contain_text("ENGAGED: desk review", timeout=LIVE_S)
    assert asked == ["Engage the kill switch of ACC-A9? Its open orders will be cancelled."] * 2
    # The trader's next order on that account is rejected, and the risk officer sees why.
    place(desk, "alice", "ACC-A9")
    expect(page.locator("#rejections tbody tr", has_text="ACC-A9")).to_contain_text("KILL", timeout=LIVE_S)


def test_a_trader_cannot_see_another_accounts_orders_by_url_or_stream(desk: ApiServer, page: Page) -> None:
    sign_in(page, desk, "alice")
    bobs = place(desk, "bob", "ACC-B1")
    hers = place(desk, "alice", "ACC-A4")  # placed after bob's: once hers shows, bob's had its chance to leak
    expect(order_row(page, hers["order_id"])).to_be_visible(timeout=LIVE_S)
    expect(order_row(page, bobs["order_id"])).to_have_count(0)
    assert "ACC-B1" not in page.locator("#desk").inner_text()

    # Editing the URL to ask for bob's account: refused, nothing shown.
    page.goto("about:blank")
    sign_in(page, desk, "alice", "#account=ACC-B1")
    expect(page.locator("#blotter-error")).to_contain_text("may not read account ACC-B1")
    expect(page.locator("#orders tbody tr")).to_have_count(0)

    # Editing the live stream's request to ask for bob's account: refused too.
    def to_bobs(route: Route) -> None:
        route.continue_(url=route.request.url.split("?")[0] + "?account_id=ACC-B1")

    page.goto("about:blank")
    page.route("**/v1/stream*", to_bobs)
    page.goto(f"{desk.url}/")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#live")).to_contain_text("refused", timeout=LIVE_S)
    expect(page.locator("#live")).to_contain_text("may not read account ACC-B1")
    place(desk, "bob", "ACC-B1")
    page.wait_for_timeout(2000)
    assert "ACC-B1" not in page.locator("#desk").inner_text()


def test_the_live_feed_resumes_after_an_api_restart_without_losing_a_fill(desk: ApiServer, page: Page) -> None:
    sign_in(page, desk, "alice")
    tick(desk)
    before = place(desk, "alice", "ACC-A5", limit_price=str(ASK + 10))
    expect(page.locator(f'#fills tr:has-text("{before["order_id"][:8]}")')).to_have_count(1, timeout=LIVE_S)
    resumed_from: list[str | None] = []
    page.on(
        "request",
        lambda r: resumed_from.append(r.headers.get("last-event-id")) if "/v1/stream" in r.url else None,
    )
    # The API restarts, and the page cannot reconnect until an order has filled: that fill is committed while the
    # page has no stream open, so only the resume (Last-Event-ID) can bring it.
    page.route("**/v1/stream*", lambda route: route.abort())
    desk.restart()
    expect(page.locator("#live")).to_contain_text("reconnecting", timeout=LIVE_S)
    during = place(desk, "alice", "ACC-A5", limit_price=str(ASK + 10))
    with desk.client("alice") as alice:
        deadline = time.monotonic() + 60
        while not alice.get("/v1/fills", params={"order_id": during["order_id"]}).json()["items"]:
            assert time.monotonic() < deadline, "the fill was not projected"
            time.sleep(0.2)
    page.unroute("**/v1/stream*")
    expect(page.locator(f'#fills tr:has-text("{during["order_id"][:8]}")')).to_have_count(1, timeout=LIVE_S)
    expect(order_row(page, during["order_id"]).locator(".status")).to_have_text("FILLED", timeout=LIVE_S)
    assert page.evaluate("window.notReloaded") is True
    assert resumed_from and all(header is not None for header in resumed_from), resumed_from
    # And it carries on live after the restart.
    after = place(desk, "alice", "ACC-A5", limit_price=str(ASK + 10))
    expect(page.locator(f'#fills tr:has-text("{after["order_id"][:8]}")')).to_have_count(1, timeout=LIVE_S)


def events(api: ApiServer, user: str, done: Any, last: int | None = None, **params: Any) -> list[dict[str, Any]]:
    """Server-sent events of GET /v1/stream (each: event, id, data) until ``done(events)``."""
    headers = {"Authorization": f"Bearer {api.token(user)}"}
    if last is not None:
        headers["Last-Event-ID"] = str(last)
    found: list[dict[str, Any]] = []
    block: dict[str, Any] = {}
    with httpx.stream("GET", f"{api.url}/v1/stream", headers=headers, params=params, timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        for line in answer.iter_lines():
            if line.startswith(("event: ", "id: ", "data: ")):
                name, value = line.split(": ", 1)
                block[name] = json.loads(value) if name == "data" else int(value) if name == "id" else value
            elif not line and block:
                found.append(block)
                block = {}
                if done(found):
                    return found
    raise AssertionError(f"the stream ended: {found}")


def test_the_stream_resumes_after_last_event_id_with_no_gap_and_no_repeat(desk: ApiServer) -> None:
    start = events(desk, "vera", lambda found: True)[0]
    assert start["event"] == "ready"
    placed = {place(desk, "alice", "ACC-A7")["order_id"] for _ in range(3)}

    def accepted(found: list[dict[str, Any]]) -> bool:
        done = {e["data"]["row"]["order_id"] for e in found[1:] if e["data"]["row"]["status"] == "ACCEPTED"}
        return placed <= done

    first = events(desk, "vera", accepted, last=start["id"], kind="order")
    assert first[0] == {"event": "ready", "id": start["id"], "data": {"checkpoint": start["id"]}}
    ids = [e["id"] for e in first[1:]]
    assert ids == sorted(set(ids)) and ids[0] > start["id"]
    assert {e["event"] for e in first[1:]} == {"order"}
    # Resuming after the second change brings the third onwards: nothing missed, nothing twice.
    again = events(desk, "vera", lambda found: len(found) > len(ids) - 2, last=ids[1], kind="order")
    assert [e["id"] for e in again[1:]] == ids[2:]
    # A trader resuming from the same place gets his own order's changes, and none of the other account's before it.
    his = place(desk, "bob", "ACC-B1")["order_id"]

    def his_accepted(found: list[dict[str, Any]]) -> bool:
        return any(e["data"]["row"]["order_id"] == his and e["data"]["row"]["status"] == "ACCEPTED" for e in found[1:])

    bobs = events(desk, "bob", his_accepted, last=start["id"], kind="order")
    assert {e["data"]["account_id"] for e in bobs[1:]} == {"ACC-B1"}
    # An id the feed never had: reload, then follow.
    assert events(desk, "vera", lambda found: True, last=10**12)[0]["event"] == "reset"


def test_the_live_feed_is_documented_with_its_message_schema(desk: ApiServer) -> None:
    with desk.client() as anonymous:
        spec = anonymous.get("/openapi.json").json()
        assert anonymous.get("/v1/stream").status_code == 401
    stream = spec["paths"]["/v1/stream"]["get"]
    message = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert {"checkpoint", "kind", "account_id", "committed_at", "row"} <= set(message["properties"])
    assert "Last-Event-ID" in {p["name"] for p in stream["parameters"]}
    assert {"401", "403", "422"} <= set(stream["responses"])


def _now() -> str:
    return datetime.now(UTC).isoformat()
