"""`tradecore users add` never takes the password on the command line, where `ps` and shell history show it: it
prompts (hidden, twice), reads standard input, or reads TRADECORE_USER_PASSWORD (issue 12, F10)."""

from __future__ import annotations

from pathlib import Path

from argon2 import PasswordHasher
from typer.testing import CliRunner

from api.cli import app
from api.users import load_users

ADD = ["users", "add", "carol", "--role", "trader", "--account", "ACC-C1", "--file"]


def stored(users: Path) -> str:
    return load_users(users)["carol"].password_hash


def test_the_password_is_refused_on_the_command_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*ADD, str(tmp_path / "u.toml"), "--password", "hunter2hunter2"])
    assert result.exit_code == 2 and not (tmp_path / "u.toml").exists()


def test_the_password_is_prompted_for_twice(tmp_path: Path) -> None:
    users = tmp_path / "u.toml"
    result = CliRunner().invoke(app, [*ADD, str(users)], input="s3cret pass\ns3cret pass\n")
    assert result.exit_code == 0, result.output
    assert "s3cret pass" not in result.output  # hidden
    assert PasswordHasher().verify(stored(users), "s3cret pass")


def test_the_password_from_stdin_or_the_environment(tmp_path: Path) -> None:
    piped, env = tmp_path / "piped.toml", tmp_path / "env.toml"
    by_stdin = CliRunner().invoke(app, [*ADD, str(piped), "--password-stdin"], input="from stdin\n")
    by_env = CliRunner().invoke(app, [*ADD, str(env)], env={"TRADECORE_USER_PASSWORD": "from env"})
    assert by_stdin.exit_code == 0 and by_env.exit_code == 0, by_stdin.output + by_env.output
    assert PasswordHasher().verify(stored(piped), "from stdin")
    assert PasswordHasher().verify(stored(env), "from env")


def test_an_empty_password_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [*ADD, str(tmp_path / "u.toml"), "--password-stdin"], input="\n")
    assert result.exit_code == 2 and not (tmp_path / "u.toml").exists()
