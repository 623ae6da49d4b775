"""The rules file: which events alert which rule, and mistakes reported with their line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.alerts.errors import RulesError
from streams.alerts.rules import Delivery, load, parse

RULES = """\
[delivery]
attempts = 3

[rules.desk-fills]
events = ["fill", "risk_rejection"]
accounts = ["ACC-1", "ACC-2"]
url = "https://hooks.example.com/desk"

[rules.ops]
events = ["kill_switch", "dead_letter", "projection_lag"]
url = "http://127.0.0.1:9000/ops"
min_interval_s = 60
lag_threshold = 1000
"""


def test_rules_match_by_event_kind_and_account() -> None:
    rules = parse(RULES)
    assert rules.delivery.attempts == 3
    assert [r.name for r in rules.matching("fill", "ACC-1")] == ["desk-fills"]
    assert rules.matching("fill", "ACC-9") == []  # an account the rule does not name
    assert [r.name for r in rules.matching("kill_switch", "ACC-9")] == ["ops"]  # no accounts: every account
    assert [r.name for r in rules.matching("dead_letter")] == ["ops"]
    assert rules.matching("risk_rejection", None) == []
    assert rules.kinds() == {"fill", "risk_rejection", "kill_switch", "dead_letter", "projection_lag"}


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ('url = "https://hooks.example.com/desk"', 'url = "ftp://x"', "rules.toml:7: rules.desk-fills.url: URL scheme"),
        ('events = ["fill", "risk_rejection"]', 'events = ["fills"]', "rules.toml:5: rules.desk-fills.events: Input"),
        ("min_interval_s = 60", "min_interval_s = -1", "rules.toml:12: rules.ops.min_interval_s: Input should be"),
        (
            "[rules.desk-fills]\nevents",
            "[rules.desk-fills]\nevent",
            "rules.toml:4: rules.desk-fills.events: Field required\nrules.toml:5: rules.desk-fills.event: Extra inputs",
        ),
        ("min_interval_s = 60", "min_intervall_s = 60", "rules.toml:12: rules.ops.min_intervall_s: Extra inputs"),
        ("lag_threshold = 1000\n", "", "rules.toml:9: rules.ops: Value error, lag_threshold is given exactly when"),
        ("attempts = 3", "attempts = 0", "rules.toml:2: delivery.attempts: Input should be greater than or equal to 1"),
        ("[rules.ops]", "[rules.ops", "rules.toml: not valid TOML: "),
    ],
)
def test_a_wrong_rules_file_names_the_line_and_the_field(replace: str, by: str, expected: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse(RULES.replace(replace, by), "rules.toml")
    assert str(raised.value).startswith(expected), str(raised.value)


def test_accounts_cannot_filter_events_of_no_account() -> None:
    text = '[rules.dl]\nevents = ["dead_letter"]\naccounts = ["ACC-1"]\nurl = "http://127.0.0.1:1/x"\n'
    with pytest.raises(RulesError, match=r"rules:1: rules.dl: Value error, accounts cannot filter dead_letter"):
        parse(text)


def test_a_file_without_rules_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rules: Field required"):
        parse("[delivery]\nattempts = 2\n")
    with pytest.raises(RulesError, match=r"cannot read the rules file .*nowhere\.toml"):
        load(tmp_path / "nowhere.toml")


def test_the_documented_example_is_a_valid_rules_file() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "OBSERVABILITY.md").read_text()
    example = doc.split("## Alerts", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    rules = parse(example, "docs/OBSERVABILITY.md")
    assert [r.name for r in rules.matching("fill", "ACC-2")] == ["desk-fills"]
    assert rules.delivery == Delivery()  # the defaults it spells out are the code's


def test_a_single_wrong_rule_is_reported_alone() -> None:
    text = '[rules.x]\nevents = ["fill"]\nurl = "http://127.0.0.1:1/x"\nmin_interval_s = "soon"\n'
    with pytest.raises(RulesError) as raised:
        parse(text, "r.toml")
    assert str(raised.value).splitlines()[0] == (
        "r.toml:4: rules.x.min_interval_s: Input should be a valid number, unable to parse string as a number"
    )
    assert len(str(raised.value).splitlines()) == 2  # the problem, and the hint


def test_more_throttled_rules_than_a_commit_can_carry_are_refused() -> None:
    many = "".join(
        f'[rules.rule-with-a-rather-long-name-{i:03d}]\nevents = ["fill"]\nurl = "http://h/x"\nmin_interval_s = 1\n'
        for i in range(100)
    )
    with pytest.raises(RulesError, match=r"^rules: Value error, the rules with a min_interval_s need"):
        parse(many)
    parse(many.replace("min_interval_s = 1", "min_interval_s = 0"))  # no interval, no state: any number of rules


def test_rules_given_as_an_array_are_refused_with_the_form_to_use() -> None:
    with pytest.raises(RulesError, match=r"rules:1: rules: give each rule as a table, \[rules.NAME\]"):
        parse('rules = ["fill"]\n')
    with pytest.raises(RulesError, match=r"^rules: rules: give each rule as a table"):
        parse('[[rules]]\nevents = ["fill"]\n')  # an array of tables: no name to call the rule by
