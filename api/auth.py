"""Who is calling, and what they may do: users from a configuration file with argon2 password hashes,
OAuth2 bearer tokens (JWT, HS256 only), four roles, and per-account authorization of every order command."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from api.errors import AuthenticationFailed, ConfigurationError, Forbidden
from api.settings import ApiSettings
from api.users import Role as Role
from api.users import User, hasher
from api.users import add_user as add_user

ALGORITHM = "HS256"


class Users(Protocol):
    def get(self, name: str) -> User | None: ...


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as its token says."""

    name: str
    roles: frozenset[Role]
    accounts: frozenset[str]
    generation: str = ""

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


_VERIFIED_CACHE_SIZE = 10_000


class Authenticator:
    """Checks passwords, issues tokens and verifies them."""

    def __init__(self, settings: ApiSettings, users: Users) -> None:
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
        # Verifying against this when the user is unknown keeps the response time the same: no user enumeration.
        # Made here, not at import: an argon2 hash costs every process that imports this module 0.15 s otherwise.
        self._dummy_hash = hasher.hash("tradecore-no-such-user")

    @property
    def ttl_s(self) -> int:
        return self._settings.token_ttl_s

    def login(self, name: str, password: str) -> User:
        user = self._users.get(name)
        ok = hasher.verify(password, user.password_hash if user else self._dummy_hash)
        if user is None or user.disabled or not ok:
            raise AuthenticationFailed("wrong user name or password")
        return user

    def issue(self, user: User, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        claims: dict[str, Any] = {
            "sub": user.name,
            "roles": sorted(user.roles),
            "accounts": sorted(user.accounts),
            "gen": user.generation,
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            "iat": issued,
            "exp": issued + self._settings.token_ttl_s,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The caller a token names; AuthenticationFailed if it is expired, forged, unsigned, for someone else, or
        revoked (its user removed, disabled or changed since it was issued)."""
        known = self._verified.get(token)
        if known is not None and time.time() >= known[1]:
            del self._verified[token]
            known = None
        if known is None:
            known = self._decode(token)
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = known
        principal = known[0]
        # Checked on every request, cached or not: revocation is a change of the user, not of the token.
        user = self._users.get(principal.name)
        if user is None or user.disabled or user.generation != principal.generation:
            raise AuthenticationFailed("the access token has been revoked; sign in again")
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
                generation=str(claims.get("gen", "")),
            )
            return principal, float(claims["exp"])
        except (ValueError, TypeError) as err:
            raise AuthenticationFailed("the access token's claims are not valid") from err
