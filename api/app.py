"""The FastAPI application: the composition root of the command API."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from api import order_entry, problems, telemetry
from api.auth import Authenticator
from api.bodies import BodyLimit
from api.dashboard import mount as mount_dashboard
from api.deps import Services
from api.live import LiveFeed
from api.outcomes import RiskOutcomes
from api.ratelimit import RateLimiter, SignInLimits
from api.readiness import ProjectionLag, Readiness
from api.readtokens import LogBounds, WaitSlots
from api.routers import accounts, auth, health, history, market, orders, reads, stream
from api.settings import ApiSettings
from api.store import IdempotencyKeys
from api.users import UsersFile
from api.wiring import write_side
from domain.instruments import InstrumentRegistry
from projections import namespace
from projections.db import engine as projections_engine
from projections.queries import ReadModels
from projections.readpool import read_pool
from projections.settings import DatabaseSettings
from schemas.settings import RegistrySettings
from streams import tracing
from streams.kafka import KafkaSettings
from streams.replay.pointintime import AccountHistory
from streams.runtime import tune_collector

DESCRIPTION = """
Commands enter here and become Avro events on Kafka. Every command answers **202 Accepted** with where its
event landed (`topic`, `partition`, `offset`); what happens next (risk, fills) arrives as further events.

* Authenticate with `POST /v1/auth/token`, then send `Authorization: Bearer <token>`.
* Traders act on their own accounts only; viewers read; risk officers set limits and kill switches.
* Errors are `application/problem+json` bodies whose `errors` name each field and rule broken.
* Queries (`GET`) read the Postgres read models; each answer carries its projection's `checkpoint`. Pass the
  `event` a command answered with as `?min_offset=topic:partition:offset` to wait for your own write.
* `GET /v1/stream` pushes every committed read-model change as server-sent events; the dashboard at `/` uses it.
* Repeat a command safely with an `Idempotency-Key` header, or (orders) the same `client_order_id`.
* Decimals (prices, quantities, limits) are strings matching `^-?[0-9]+(\\.[0-9]+)?$`: an optional `-`, ASCII
  digits, at most one `.` between digits; no exponent, `_`, `+`, whitespace or other digits. A JSON number is taken
  only when its text matches the same grammar. A key given twice in one object is refused.
* Bodies are limited in size (TRADECORE_COMMAND_BODY_MAX_BYTES, TRADECORE_TICKS_BODY_MAX_BYTES): larger ones get 413.
"""


def create_app(
    api: ApiSettings | None = None,
    kafka: KafkaSettings | None = None,
    registry: RegistrySettings | None = None,
    database: DatabaseSettings | None = None,
) -> FastAPI:
    tune_collector()  # each uvicorn worker process makes its app here
    api = api or ApiSettings()  # jwt_secret comes from the environment
    kafka = kafka or KafkaSettings()
    registry = registry or RegistrySettings()
    database = database or DatabaseSettings()
    authenticator = Authenticator(api, UsersFile(api.users_file, api.users_recheck_s))
    instruments = InstrumentRegistry.from_file(api.instruments_file)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        schema = namespace.live_schema(kafka.topic_prefix)
        migrations = projections_engine(database)
        try:
            namespace.upgrade(migrations, schema)  # idempotent; the runner does the same
        finally:
            migrations.dispose()
        tick_max_ahead = timedelta(seconds=api.tick_max_ahead_s)
        async with (
            write_side(
                kafka,
                registry,
                database,
                instruments,
                tick_max_ahead=tick_max_ahead,
                placements_in_flight=api.placements_in_flight,
            ) as parts,
            read_pool(database) as reads,
        ):
            outcomes = RiskOutcomes(kafka, parts.registry)
            outcomes.start()
            log_bounds = LogBounds(kafka)
            projection_lag = ProjectionLag(kafka, parts.engine, schema, api.ready_max_projection_lag)
            live = LiveFeed(parts.engine, database.url, schema)
            await live.start()
            app.state.services = Services(
                authenticator=authenticator,
                gateway=parts.gateway,
                instruments=instruments,
                idempotency=IdempotencyKeys(parts.engine, kafka.topic_prefix),
                account_limiter=RateLimiter(api.rate_limit, "account"),
                ticks_limiter=RateLimiter(api.ticks_rate_limit, "user"),
                sign_in_limits=SignInLimits(api.login_failure_limit, api.login_address_failure_limit),
                history_limiter=RateLimiter(api.history_rate_limit, "user", exact=True),
                outcomes=outcomes,
                order_wait_timeout_s=api.order_wait_timeout_s,
                read_models=ReadModels(reads, schema),
                topic_prefix=kafka.topic_prefix,
                read_wait_timeout_s=api.read_wait_timeout_s,
                log_bounds=log_bounds,
                read_waits=WaitSlots(api.read_waits_per_user),
                readiness=Readiness(
                    kafka,
                    parts.registry,
                    parts.engine,
                    api.ready_timeout_s,
                    projection_lag=projection_lag,
                ),
                history=AccountHistory(kafka, parts.registry),
                live=live,
            )
            # Everything built so far lives as long as the process: out of the collector's sight, a full collection
            # walks only what requests left behind, not the hundreds of thousands of start-up objects (measured on
            # POST /v1/orders: one sample in seven was a full collection; docs/PERFORMANCE.md).
            gc.collect()
            gc.freeze()
            try:
                yield
            finally:
                await live.close()
                outcomes.close()
                log_bounds.close()
                projection_lag.close()

    tracing.configure("api")
    app = FastAPI(
        title="tradecore", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, telemetry=telemetry.TRACING
    )
    problems.install(app)
    app.add_middleware(BodyLimit, default=api.command_body_max_bytes, limits={"/v1/ticks": api.ticks_body_max_bytes})
    app.add_middleware(telemetry.RequestMetrics)
    order_entry.install(app, orders.place_route, api.command_body_max_bytes)  # in front of the two above
    routers = (
        auth.router,
        orders.router,
        reads.router,
        accounts.router,
        history.router,
        market.router,
        stream.router,
        health.router,
        telemetry.router,
    )
    for router in routers:
        app.include_router(router)
    market.publish_schemas(app)
    mount_dashboard(app)  # last: it serves `/` and whatever no route above matched
    return app
