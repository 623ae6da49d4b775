"""The live feed's fan-out in one API process: one Postgres connection LISTENs for the projector's commits, one short
pooled read per notification fetches what is new, and every connected client gets its share from memory.

So an idle client holds no database connection, and the database sees one listener and one read per commit batch
per API worker, whatever the number of clients. A client that reconnects with the id of the last change it saw reads
what it missed with a pooled connection, once, then follows the fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Select, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from projections import live, tables
from streams.runtime.logs import FailuresThinned

log = logging.getLogger("tradecore.api.live")
# While Postgres is down both loops below try again each second: the log says it once each 30 s.
log.addFilter(FailuresThinned("live feed: listening failed"))
log.addFilter(FailuresThinned("live feed: reading changes failed"))

CLIENT_BACKLOG = 10_000  # changes queued for one slow client before it is dropped (it reconnects and catches up)
FETCH_MAX = 5_000  # changes read per query


@dataclass(frozen=True)
class Change:
    """One read-model row as a committed batch left it; ``id`` is its place in the feed."""

    id: int
    kind: str
    account_id: str | None
    committed_at: str
    row: dict[str, Any]

    def document(self) -> dict[str, Any]:
        return {
            "checkpoint": self.id,
            "kind": self.kind,
            "account_id": self.account_id,
            "committed_at": self.committed_at,
            "row": self.row,
        }

    @functools.cached_property
    def event(self) -> str:
        """The change as one server-sent event, encoded once for every client that gets it."""
        return sse(self.kind, self.id, self.document())


def sse(name: str, checkpoint: int, data: dict[str, Any]) -> str:
    """A server-sent event: its name, its id (the checkpoint a client resumes after) and its JSON data."""
    return f"event: {name}\nid: {checkpoint}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Behind(Exception):
    """The client asked for changes the feed no longer keeps (or never had): it must reload, then follow."""


@dataclass(frozen=True)
class Audience:
    """Which changes a client is sent: the kinds it asked for, of the accounts it may read (all of them, or its own),
    narrowed to one account when it asked for one. Clients with equal audiences get the very same changes, so the
    fan-out filters once per audience, not once per client."""

    kinds: frozenset[str]
    every_account: bool
    accounts: frozenset[str]
    account_id: str | None = None

    def wants(self, change: Change) -> bool:
        if change.kind not in self.kinds:
            return False
        account = change.account_id
        if account is None:  # market data: everyone's
            return True
        return (self.every_account or account in self.accounts) and self.account_id in (None, account)


@dataclass(frozen=True)
class Share:
    """An audience's changes of one read, in feed order, and their server-sent events as the bytes every client of
    that audience is sent: joined and encoded once, not once per client."""

    changes: list[Change]

    @functools.cached_property
    def payload(self) -> bytes:
        return "".join(change.event for change in self.changes).encode()

    def since(self, after: int) -> bytes:
        """The events of the changes past ``after``: all of them, unless the client is ahead of this process (another
        worker sent it some already)."""
        if not self.changes or self.changes[0].id > after:
            return self.payload
        return "".join(change.event for change in self.changes if change.id > after).encode()


@dataclass(eq=False)
class Subscription:
    """One client's place in the feed: its queue brings its share of each read, or None at the end."""

    audience: Audience
    queue: asyncio.Queue[Share | None] = field(default_factory=asyncio.Queue)
    pending: int = 0  # changes queued and not yet taken: a client this far behind is dropped

    def take(self, share: Share) -> None:
        self.pending -= len(share.changes)

    def end(self) -> None:
        """Close the client's stream (it reconnects with its last id)."""
        self.queue.put_nowait(None)


class LiveFeed:
    """The feed of one read-model schema, fanned out to this process's clients."""

    def __init__(self, engine: AsyncEngine, database_url: str, schema: str) -> None:
        self._engine = engine.execution_options(schema_translate_map={None: schema}, isolation_level="AUTOCOMMIT")
        self._conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self._schema = schema
        self._subscriptions: set[Subscription] = set()
        self._wake = asyncio.Event()
        self._newest = 0  # the newest id a notification named
        self._tasks: list[asyncio.Task[None]] = []
        self.position = 0  # the newest change fanned out

    async def start(self) -> None:
        self.position = self._newest = await self._last_id()
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._fan_out())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sub in self._subscriptions:  # end every stream: its client reconnects to another worker or to us
            sub.end()

    @contextlib.asynccontextmanager
    async def subscribe(
        self, audience: Audience, after: int | None
    ) -> AsyncIterator[tuple[int, list[Change], Subscription]]:
        """Follow the feed: (where the client is once it has what it missed, what it missed after ``after``, the
        subscription whose queue brings every change after that).

        The queue may bring changes up to ``after`` again (a client ahead of this process): skip those.
        Raises Behind when ``after`` is older than the feed keeps, or newer than it has (another feed's id)."""
        sub = Subscription(audience)
        self._subscriptions.add(sub)  # from here on every change past `position` reaches the queue
        upto = self.position
        try:
            missed = [] if after is None else await self._missed(sub, after, upto)
            yield (upto if after is None else after), missed, sub
        finally:
            self._subscriptions.discard(sub)

    async def _missed(self, sub: Subscription, after: int, upto: int) -> list[Change]:
        if after > upto:
            # Another worker of this API may have sent it already (each fans out on its own); a feed made anew has
            # no such change at all.
            if after > await self._last_id():
                raise Behind(f"the feed has no change {after} (it is at {upto})")
            return []
        async with self._engine.connect() as conn:
            oldest = (await conn.execute(select(func.min(_t.c.id)))).scalar()
            if after < upto and (oldest is None or oldest > after + 1):
                raise Behind(f"changes after {after} are no longer kept (the oldest kept is {oldest})")
            rows = (await conn.execute(_after(after).where(_t.c.id <= upto).limit(None))).all()
        return [c for c in map(_change, rows) if sub.audience.wants(c)]

    async def _listen(self) -> None:
        """Hold the LISTEN connection, reconnecting when it drops; each notification wakes the fan-out."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
                    await conn.execute(f'LISTEN "{live.channel(self._schema)}"')
                    self._wake.set()  # catch up on whatever committed while not listening
                    async for note in conn.notifies():
                        self._newest = int(note.payload)
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the database went away: listen again once it is back
                log.warning("live feed: listening failed (%s); again in 1 s", err)
                await asyncio.sleep(1)

    async def _fan_out(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while await self._fetch():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("live feed: reading changes failed (%s); retrying", err)
                await asyncio.sleep(1)
                self._wake.set()

    async def _fetch(self) -> bool:
        """Hand the changes after ``position`` to their subscribers; whether there may be more."""
        # A notification behind what was read is usually one whose rows an earlier read already got; only a feed
        # whose newest id is behind, too, was swapped.
        if self._newest < self.position and await self._last_id() < self.position:
            self._renumbered()
        async with self._engine.connect() as conn:
            rows = (await conn.execute(_after(self.position))).all()
        changes = [_change(row) for row in rows]
        if changes:
            self._hand_out(changes)
            self.position = changes[-1].id
        return len(rows) == FETCH_MAX

    def _hand_out(self, changes: list[Change]) -> None:
        """Each subscriber's share of ``changes``, filtered once per audience and queued as one ``Share``."""
        shares: dict[Audience, Share] = {}
        for sub in list(self._subscriptions):
            share = shares.get(sub.audience)
            if share is None:
                share = shares[sub.audience] = Share([c for c in changes if sub.audience.wants(c)])
            if not share.changes:
                continue
            if sub.pending + len(share.changes) > CLIENT_BACKLOG:  # too slow: end its stream; it resumes from its id
                self._subscriptions.discard(sub)
                sub.end()
            else:
                sub.pending += len(share.changes)
                sub.queue.put_nowait(share)

    async def _last_id(self) -> int:
        async with self._engine.connect() as conn:
            return int((await conn.execute(select(func.coalesce(func.max(_t.c.id), 0)))).scalar_one())

    def _renumbered(self) -> None:
        """The feed was made anew (its schema dropped and migrated again), numbered from 1 again: follow that one, and
        end every stream, whose clients come back with an id this feed does not have and are told to reload.
        (A rebuild swaps the read models' tables but keeps the feed's, so its numbers go on.)"""
        log.warning("live feed: renumbered (%d after %d); clients reload", self._newest, self.position)
        self.position = 0
        for sub in list(self._subscriptions):
            self._subscriptions.discard(sub)
            sub.end()


_t = tables.live_changes


def _after(position: int) -> Select[Any]:
    return (
        select(_t.c.id, _t.c.kind, _t.c.account_id, _t.c.committed_at, _t.c.row)
        .where(_t.c.id > position)
        .order_by(_t.c.id)
        .limit(FETCH_MAX)
    )


def _change(row: Any) -> Change:
    return Change(row.id, row.kind, row.account_id, row.committed_at.isoformat(), row.row)
