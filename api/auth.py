"""Who is calling, and what they may do: users from a configuration file with argon2 password hashes,
OAuth2 bearer tokens (JWT, HS256 only), four roles, and per-account authorization of every order command."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from pwdlib import PasswordHash

from api.errors import AuthenticationFailed, ConfigurationError, Forbidden
from api.roles import Role as Role  # re-exported: callers import it from here
from api.settings import ApiSettings

ALGORITHM = "HS256"
_hasher = PasswordHash.recommended()
# Verifying against this when the user is unknown keeps the response time the same: no user enumeration.
_DUMMY_HASH = _hasher.hash("tradecore-no-such-user")


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str
    roles: frozenset[Role]
    accounts: frozenset[str]


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as its token says."""

    name: str
    roles: frozenset[Role]
    accounts: frozenset[str]

    def has(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    def may_trade(self, account_id: str) -> bool:
        """Object-level authorization: admins act on any account, traders on their own."""
        return Role.ADMIN in self.roles or (Role.TRADER in self.roles and account_id in self.accounts)

    @property
    def reads_every_account(self) -> bool:
        """Viewers, risk officers and admins read every account; a trader reads only their own."""
        return self.has(Role.VIEWER, Role.RISK, Role.ADMIN)

    def may_read(self, account_id: str) -> bool:
        """Object-level authorization of reads."""
        return self.reads_every_account or account_id in self.accounts

    def require_account(self, account_id: str) -> None:
        if not self.may_trade(account_id):
            raise Forbidden(f"{self.name} may not act on account {account_id}")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def load_users(path: Path) -> dict[str, User]:
    """``[[user]]`` tables: name, password_hash (argon2), roles, accounts."""
    try:
        tables = tomllib.loads(path.read_text()).get("user", [])
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigurationError(
            f"cannot read users from {path}: {err}",
            hint="set TRADECORE_USERS_FILE; add users with `tradecore users add`",
        ) from err
    users = {}
    for table in tables:
        try:
            users[table["name"]] = User(
                name=table["name"],
                password_hash=table["password_hash"],
                roles=frozenset(Role(r) for r in table.get("roles", [])),
                accounts=frozenset(table.get("accounts", [])),
            )
        except (KeyError, ValueError) as err:
            raise ConfigurationError(f"user {table.get('name', '?')} in {path} is not valid: {err}") from err
    return users


def add_user(path: Path, name: str, password: str, roles: list[Role], accounts: list[str]) -> None:
    """Add or replace a user in a users file, keeping the others."""
    users = load_users(path) if path.exists() else {}
    users[name] = User(name, hash_password(password), frozenset(roles), frozenset(accounts))
    lines = []
    for user in users.values():
        lines += [
            "[[user]]",
            f"name = {json.dumps(user.name)}",
            f"password_hash = {json.dumps(user.password_hash)}",
            f"roles = {json.dumps(sorted(user.roles))}",
            f"accounts = {json.dumps(sorted(user.accounts))}",
            "",
        ]
    path.write_text("\n".join(lines))


_VERIFIED_CACHE_SIZE = 10_000


class Authenticator:
    """Checks passwords, issues tokens and verifies them."""

    def __init__(self, settings: ApiSettings, users: Mapping[str, User]) -> None:
        secret = settings.jwt_secret.get_secret_value()
        if len(secret.encode()) < 32:
            raise ConfigurationError(
                "TRADECORE_JWT_SECRET is shorter than 32 bytes", hint="generate one with `openssl rand -hex 32`"
            )
        self._secret = secret
        self._settings = settings
        self._users = users
        # Tokens already verified, with their expiry: a client sends the same token with every request, and checking
        # its signature again each time costs more than the rest of authorization. Only valid tokens get in.
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def ttl_s(self) -> int:
        return self._settings.token_ttl_s

    def login(self, name: str, password: str) -> User:
        user = self._users.get(name)
        ok = _hasher.verify(password, user.password_hash if user else _DUMMY_HASH)
        if user is None or not ok:
            raise AuthenticationFailed("wrong user name or password")
        return user

    def issue(self, user: User, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sub": user.name,
            "roles": sorted(user.roles),
            "accounts": sorted(user.accounts),
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            "iat": issued,
            "exp": issued + self._settings.token_ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The caller a token names; AuthenticationFailed if it is expired, forged, unsigned or for someone else."""
        known = self._verified.get(token)
        if known is not None:
            principal, expires = known
            if time.time() < expires:
                return principal
            del self._verified[token]
        principal, expires = self._decode(token)
        if len(self._verified) >= _VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, expires)
        return principal

    def _decode(self, token: str) -> tuple[Principal, float]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # never 'none', never an algorithm the token picks
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as err:
            raise AuthenticationFailed("the access token has expired") from err
        except jwt.InvalidTokenError as err:
            raise AuthenticationFailed(f"the access token is not valid: {err}") from err
        try:
            principal = Principal(
                name=claims["sub"],
                roles=frozenset(Role(r) for r in claims.get("roles", [])),
                accounts=frozenset(claims.get("accounts", [])),
            )
            return principal, float(claims["exp"])
        except (ValueError, TypeError) as err:
            raise AuthenticationFailed("the access token's claims are not valid") from err
