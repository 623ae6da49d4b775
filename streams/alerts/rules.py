"""The rules file of `tradecore alerts`: which events alert whom, and how deliveries are retried.

TOML, one table per rule under ``rules`` (the table's name is the rule's name), and an optional ``delivery`` table::

    [delivery]
    attempts = 5            # tries per alert; after the last failure it is dead-lettered
    timeout_s = 10.0        # per try
    backoff_s = 0.5         # wait before the first retry; doubles on each retry
    backoff_max_s = 30.0    # the longest wait between tries
    lag_check_s = 15.0      # how often projection lag is measured (projection_lag rules only)

    [rules.desk-fills]
    events = ["fill", "risk_rejection"]   # fill, risk_rejection, kill_switch, dead_letter, projection_lag
    accounts = ["ACC-1"]                   # optional: only these accounts (fills, rejections, kill switch)
    url = "https://hooks.example.com/tradecore"
    min_interval_s = 60                    # optional: at most one alert of this rule per minute of event time

A mistake is reported with the file, the line and the field: ``rules.toml:7: rules.desk-fills.url: ...``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, ValidationError, model_validator

from streams.alerts.errors import RulesError

Kind = Literal["fill", "risk_rejection", "kill_switch", "dead_letter", "projection_lag"]
STATE_BYTES = 3800  # of the 4096 bytes of offset-commit metadata, what the rules' min-interval state may take
# Kinds whose events name an account; the others (a dead record, a read model's lag) belong to none.
ACCOUNT_KINDS: frozenset[str] = frozenset({"fill", "risk_rejection", "kill_switch"})


class Delivery(BaseModel):
    """How hard an alert is pushed before it is dead-lettered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    attempts: int = Field(5, ge=1, le=20, description="Tries per alert before it is dead-lettered.")
    timeout_s: float = Field(10.0, gt=0, le=60, description="How long one try waits for the receiver's answer.")
    backoff_s: float = Field(0.5, gt=0, description="Wait before the first retry; it doubles on every retry.")
    backoff_max_s: float = Field(30.0, gt=0, le=120, description="The longest wait between two tries.")
    lag_check_s: float = Field(15.0, gt=0, description="How often projection lag is measured.")

    def budget_s(self) -> float:
        """The longest one alert can take: every try timing out, every wait at its cap."""
        waits = sum(min(self.backoff_s * 2.0**i, self.backoff_max_s) for i in range(self.attempts - 1))
        return self.attempts * self.timeout_s + waits


class Rule(BaseModel):
    """One rule: these kinds of event (of these accounts) are posted to ``url``, at most once per interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    events: tuple[Kind, ...] = Field(min_length=1, description="Kinds of event this rule alerts on.")
    url: AnyHttpUrl = Field(description="The receiver's URL; each alert is POSTed there.")
    accounts: tuple[str, ...] | None = Field(None, min_length=1, description="Only these accounts (default: all).")
    min_interval_s: float = Field(0.0, ge=0, description="Minimum time between two alerts of this rule.")
    lag_threshold: int | None = Field(None, ge=1, description="projection_lag: alert past this many records behind.")

    @model_validator(mode="after")
    def _fits_its_kinds(self) -> Rule:
        if self.accounts is not None and not ACCOUNT_KINDS.issuperset(self.events):
            accountless = sorted(set(self.events) - ACCOUNT_KINDS)
            raise ValueError(f"accounts cannot filter {', '.join(accountless)}: those events belong to no account")
        if ("projection_lag" in self.events) != (self.lag_threshold is not None):
            raise ValueError("lag_threshold is given exactly when events holds projection_lag")
        return self

    def matches(self, kind: str, account: str | None) -> bool:
        return kind in self.events and (self.accounts is None or account in self.accounts)


class Rules(BaseModel):
    """A parsed rules file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delivery: Delivery = Delivery()
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _state_fits_a_commit(self) -> Rules:
        # The rules' last-alert times travel as offset-commit metadata, which brokers cap at 4096 bytes by default.
        size = sum(len(json.dumps(r.name)) + len(": 1700000000000, ") for r in self.rules if r.min_interval_s > 0)
        if size > STATE_BYTES:
            raise ValueError(
                f"the rules with a min_interval_s need {size} bytes of state, more than the {STATE_BYTES} a Kafka "
                "offset commit carries: use fewer of them, or shorter names"
            )
        return self

    def matching(self, kind: str, account: str | None = None) -> list[Rule]:
        """The rules an event of ``kind`` (of ``account``) triggers, in the file's order."""
        return [rule for rule in self.rules if rule.matches(kind, account)]

    def kinds(self) -> set[str]:
        return {kind for rule in self.rules for kind in rule.events}


def load(path: Path) -> Rules:
    """The rules in ``path``.

    Raises:
        RulesError: the file is missing, not TOML, or a rule is wrong; the message names the line and field.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise RulesError(f"cannot read the rules file {path}: {err.strerror}") from err
    return parse(text, str(path))


def parse(text: str, source: str = "rules") -> Rules:
    """The rules in ``text`` (``source`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise RulesError(f"{source}: not valid TOML: {err}") from err
    tables = data.get("rules")
    if isinstance(tables, dict):
        # The table's name is the rule's name: one spelling, and unique by TOML's own rules.
        data["rules"] = [{"name": name, **body} if isinstance(body, dict) else body for name, body in tables.items()]
    elif tables is not None:
        line = _line_of(text, ("rules",))
        at = f"{source}:{line}" if line else source
        raise RulesError(f"{at}: rules: give each rule as a table, [rules.NAME]")
    try:
        return Rules.model_validate(data)
    except ValidationError as err:
        problems = []
        found = err.errors()
        in_a_rule = any(len(p["loc"]) > 1 and p["loc"][0] == "rules" for p in found)
        for problem in found:
            if in_a_rule and problem["loc"] == ("rules",) and problem["type"] == "too_short":
                continue  # pydantic counts the rules left after dropping the wrong one: the wrong one is the news
            where = _located(problem["loc"], data)
            line = _line_of(text, where)
            at = f"{source}:{line}" if line else source
            problems.append(f"{at}: {'.'.join(where)}: {problem['msg']}" if where else f"{at}: {problem['msg']}")
        raise RulesError("\n".join(problems), hint="see the rules file format in docs/OBSERVABILITY.md") from err


def _located(loc: Sequence[int | str], data: dict[str, object]) -> tuple[str, ...]:
    """A pydantic location as the file spells it: ``("rules", 0, "url")`` → ``("rules", "<name>", "url")``."""
    where: list[str] = []
    rules = data.get("rules")
    for i, part in enumerate(loc):
        if isinstance(part, int) and i == 1 and where == ["rules"] and isinstance(rules, list):
            named = rules[part] if part < len(rules) else None
            where.append(str(named.get("name")) if isinstance(named, dict) else str(part))
        elif isinstance(part, int):
            continue  # an item of a list: the list's own line is named
        else:
            where.append(part)
    return tuple(where)


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_KEY = re.compile(r'^\s*("[^"]*"|[A-Za-z0-9_-]+)\s*=')


def _line_of(text: str, where: Sequence[str]) -> int | None:
    """The line that spells the longest leading part of ``where`` (a table header or a key), 1-based."""
    best, best_depth = None, 0
    section: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header, key = _HEADER.match(line), _KEY.match(line)
        if header:
            section = tuple(part.strip().strip('"') for part in header.group(1).split("."))
            path = section
        elif key:
            path = (*section, key.group(1).strip('"'))
        else:
            continue
        depth = len(path) if tuple(where[: len(path)]) == path else 0
        if depth > best_depth:
            best, best_depth = number, depth
    return best
