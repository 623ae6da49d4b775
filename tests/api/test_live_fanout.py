"""The live feed's fan-out in one API process: who is sent which change, and a client too slow to keep up."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import create_async_engine

from api import live
from api.live import Audience, Change, LiveFeed

KINDS = frozenset({"order", "fill", "candle"})


def _change(n: int, kind: str, account: str | None) -> Change:
    return Change(n, kind, account, "2026-12-04T00:00:00+00:00", {"n": n})


CHANGES = [
    _change(1, "order", "ACC-1"),
    _change(2, "fill", "ACC-2"),
    _change(3, "candle", None),
    _change(4, "order", "ACC-2"),
    _change(5, "fill", "ACC-1"),
]


def _ids(audience: Audience) -> list[int]:
    return [c.id for c in CHANGES if audience.wants(c)]


def test_a_trader_is_sent_their_own_accounts_and_market_data_a_viewer_everything() -> None:
    assert _ids(Audience(KINDS, False, frozenset({"ACC-1"}))) == [1, 3, 5]
    assert _ids(Audience(KINDS, True, frozenset())) == [1, 2, 3, 4, 5]
    assert _ids(Audience(KINDS, True, frozenset(), account_id="ACC-2")) == [2, 3, 4]
    assert _ids(Audience(frozenset({"fill"}), True, frozenset())) == [2, 5]
    # Asking for an account one may not read narrows to nothing of it (the route refuses it before, with a 403).
    assert _ids(Audience(KINDS, False, frozenset({"ACC-1"}), account_id="ACC-2")) == [3]


def _shared(sub: live.Subscription) -> live.Share:
    share = sub.queue.get_nowait()
    assert share is not None, "the stream ended"
    return share


def _feed() -> LiveFeed:
    engine = create_async_engine("postgresql+psycopg://nobody@localhost/none")  # never connected: no fetch here
    return LiveFeed(engine, "postgresql+psycopg://nobody@localhost/none", "public")


def test_clients_of_one_audience_get_the_same_share_and_a_client_too_far_behind_is_ended() -> None:
    async def run() -> None:
        feed = _feed()
        trader = Audience(KINDS, False, frozenset({"ACC-1"}))
        async with (
            feed.subscribe(trader, None) as (_, _, first),
            feed.subscribe(trader, None) as (_, _, second),
            feed.subscribe(Audience(KINDS, True, frozenset()), None) as (_, _, viewer),
        ):
            feed._hand_out(CHANGES)
            shares = [_shared(first), _shared(second), _shared(viewer)]
            assert [[c.id for c in share.changes] for share in shares] == [[1, 3, 5], [1, 3, 5], [1, 2, 3, 4, 5]]
            assert shares[0] is shares[1]  # filtered once for the audience
            assert shares[0].since(0) is shares[1].since(0)  # and encoded once: the same bytes to each of its clients
            first.take(shares[0])
            viewer.take(shares[2])

            # `second` never takes what it was given (3 changes): it may fall behind by up to CLIENT_BACKLOG changes,
            # and its stream ends when the next share would take it past that.
            flood = [_change(10 + i, "candle", None) for i in range(live.CLIENT_BACKLOG - 3)]
            feed._hand_out(flood)
            assert _shared(second).changes == flood and second.queue.empty()
            feed._hand_out([_change(99_998, "candle", None)])
            assert second.queue.get_nowait() is None  # the end of its stream: it reconnects with its last id
            feed._hand_out([_change(99_999, "candle", None)])
            assert second.queue.empty()  # no longer fanned out to
            assert [len(_shared(first).changes) for _ in range(3)] == [len(flood), 1, 1]

    asyncio.run(run())


def test_a_client_is_sent_each_change_of_its_share_once_as_server_sent_events() -> None:
    share = live.Share([c for c in CHANGES if c.kind != "candle"])
    events = share.since(0).decode().split("\n\n")[:-1]
    assert [e.splitlines()[:2] for e in events] == [[f"event: {c.kind}", f"id: {c.id}"] for c in share.changes]
    assert all(e.splitlines()[2].startswith('data: {"checkpoint":') for e in events)
    # A client ahead of this process (another worker sent it changes up to 2) is sent only what comes after.
    assert share.since(2) == b"".join(c.event.encode() for c in share.changes if c.id > 2)
    assert share.since(5) == b""
