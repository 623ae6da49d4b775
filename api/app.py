"""The FastAPI application: the composition root of the command API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import db, problems
from api.auth import Authenticator, load_users
from api.deps import Services
from api.outcomes import RiskOutcomes
from api.ratelimit import RateLimiter
from api.routers import accounts, auth, history, market, orders
from api.settings import ApiSettings
from api.store import IdempotencyKeys, PostgresCommandStore
from commands.gateway import CommandGateway
from commands.instruments import InstrumentRegistry
from projections.settings import DatabaseSettings
from schemas.registry import registry_client
from schemas.serde import register_all
from schemas.settings import RegistrySettings
from streams.eventlog import KafkaEventLog
from streams.replay.pointintime import AccountHistory
from streams.settings import KafkaSettings

DESCRIPTION = """
Commands enter here and become Avro events on Kafka. Every command answers **202 Accepted** with where its
event landed (`topic`, `partition`, `offset`); what happens next (risk, fills) arrives as further events.

* Authenticate with `POST /v1/auth/token`, then send `Authorization: Bearer <token>`.
* Traders act on their own accounts only; viewers read; risk officers set limits and kill switches.
* Errors are `application/problem+json` bodies whose `errors` name each field and rule broken.
* Repeat a command safely with an `Idempotency-Key` header, or (orders) the same `client_order_id`.
"""


def create_app(
    api: ApiSettings | None = None,
    kafka: KafkaSettings | None = None,
    registry: RegistrySettings | None = None,
    database: DatabaseSettings | None = None,
) -> FastAPI:
    api = api or ApiSettings()  # jwt_secret comes from the environment
    kafka = kafka or KafkaSettings()
    registry = registry or RegistrySettings()
    database = database or DatabaseSettings()
    authenticator = Authenticator(api, load_users(api.users_file))
    instruments = InstrumentRegistry.from_file(api.instruments_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db.check_current(database.url)
        client = registry_client(registry)
        register_all(client, kafka.topic_prefix)
        engine = db.async_engine(database.url)
        log = KafkaEventLog(kafka, client)
        outcomes = RiskOutcomes(kafka, client)
        outcomes.start()
        app.state.services = Services(
            authenticator=authenticator,
            gateway=CommandGateway(log, PostgresCommandStore(engine, kafka.topic_prefix), instruments),
            instruments=instruments,
            idempotency=IdempotencyKeys(engine, kafka.topic_prefix),
            account_limiter=RateLimiter(api.rate_limit, "account"),
            ticks_limiter=RateLimiter(api.ticks_rate_limit, "user"),
            login_limiter=RateLimiter(api.login_rate_limit, "user name"),
            history_limiter=RateLimiter(api.history_rate_limit, "user"),
            outcomes=outcomes,
            order_wait_timeout_s=api.order_wait_timeout_s,
            history=AccountHistory(kafka, client),
        )
        try:
            yield
        finally:
            outcomes.close()
            log.close()
            await engine.dispose()

    app = FastAPI(title="tradecore", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    problems.install(app)
    for router in (auth.router, orders.router, accounts.router, history.router, market.router):
        app.include_router(router)
    return app
