"""`tradecore db`: the write side's Postgres tables."""

from __future__ import annotations

from api.cli.reporting import Commands, console

app = Commands(help="The write side's Postgres tables.")


@app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the write side's tables (schema command_side) to the newest revision."""
    from api import db
    from projections.settings import DatabaseSettings

    db.upgrade(DatabaseSettings().url)
    console.print("command_side tables are at the newest revision")
