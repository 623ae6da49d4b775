"""SQLAlchemy engines for the read side, always on psycopg 3."""

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from projections.settings import DatabaseSettings


def engine(settings: DatabaseSettings) -> Engine:
    url = make_url(settings.url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=settings.pool_size, pool_pre_ping=True)
