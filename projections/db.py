"""SQLAlchemy engines for the read side, always on psycopg 3."""

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from projections.settings import DatabaseSettings


def engine(settings: DatabaseSettings) -> Engine:
    url = make_url(settings.url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=settings.pool_size, pool_pre_ping=True)


def conninfo(settings: DatabaseSettings) -> str:
    """The libpq connection string of ``settings.url``, for psycopg's own connections (COPY, the runner)."""
    return make_url(settings.url).set(drivername="postgresql").render_as_string(hide_password=False)
