"""The roles an API user can hold (kept apart from `api.auth` so the `tradecore` command can offer them as choices
without loading the JWT and argon2 machinery)."""

from enum import StrEnum


class Role(StrEnum):
    TRADER = "trader"  # trades the accounts listed for them, and only those
    VIEWER = "viewer"  # reads; sends no command
    RISK = "risk"  # sets risk limits and kill switches; separate from trading by design (separation of duties)
    ADMIN = "admin"  # market data and operations on any account's orders
