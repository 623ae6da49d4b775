"""`python -m schemas.check`: passes on the repository, and names the event, the version and the reason otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.avsc import AVRO_DIR, RELEASED_DIR, path_of


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "schemas.check", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def schemas_copy(tmp_path: Path) -> Path:
    """A copy of the current .avsc files to change; the released versions stay those of the repository."""
    copy = tmp_path / "avro"
    shutil.copytree(AVRO_DIR, copy)
    return copy


def edit(schemas_dir: Path, name: str, change: Any) -> None:
    path = path_of(name, schemas_dir)
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema, indent=2))


def field(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in schema["fields"] if f["name"] == name)
    return found


def test_the_repository_passes() -> None:
    out = run_check()
    assert out.returncode == 0, out.stderr
    assert "ok — 14 released versions readable" in out.stdout


def test_a_required_field_without_default_fails_naming_event_version_and_reason(schemas_copy: Path) -> None:
    edit(schemas_copy, "OrderPlaced", lambda s: s["fields"].append({"name": "venue", "type": "string", "doc": "d"}))
    out = run_check("--schemas", str(schemas_copy), "--released", str(RELEASED_DIR))
    assert out.returncode == 1
    assert "OrderPlaced v1: the current schema cannot read events written with v1" in out.stderr
    assert "reader_field_missing_default_value" in out.stderr
    assert "/fields/10 (venue)" in out.stderr
    assert "1 problem(s)" in out.stderr  # only the event that changed


def test_a_changed_field_type_fails_naming_the_field(schemas_copy: Path) -> None:
    edit(schemas_copy, "OrderFilled", lambda s: field(s, "fill_quantity").update(type="double"))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert "OrderFilled v1" in out.stderr
    assert "type_mismatch: reader type: double not compatible with writer type: bytes" in out.stderr
    assert "(fill_quantity)" in out.stderr


def test_a_change_to_the_shared_envelope_fails_every_event(schemas_copy: Path) -> None:
    edit(schemas_copy, "Envelope", lambda s: field(s, "sequence").update(type="int"))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert out.stderr.count("(envelope.sequence)") == 14


def test_every_released_version_is_checked_not_only_the_last(schemas_copy: Path, tmp_path: Path) -> None:
    # v1 wrote reason as a string; v2 dropped it; today it comes back as an optional int. Today's schema reads v2
    # (reason takes its default) but not v1 (a string is not an int): only a transitive check catches it.
    released = tmp_path / "released"
    shutil.copytree(RELEASED_DIR, released)
    current = json.loads((released / "CancelRequested" / "v1.avsc").read_text())
    v1 = json.loads(json.dumps(current))
    field(v1, "reason").update(type="string")
    del field(v1, "reason")["default"]
    v2 = {**current, "fields": [f for f in current["fields"] if f["name"] != "reason"]}
    (released / "CancelRequested" / "v1.avsc").write_text(json.dumps(v1))
    (released / "CancelRequested" / "v2.avsc").write_text(json.dumps(v2))
    edit(schemas_copy, "CancelRequested", lambda s: field(s, "reason").update(type=["null", "int"]))

    out = run_check("--schemas", str(schemas_copy), "--released", str(released))
    assert out.returncode == 1
    assert "CancelRequested v1: the current schema cannot read events written with v1" in out.stderr
    assert "(reason)" in out.stderr
    assert "CancelRequested v2" not in out.stderr
    assert "1 problem(s); 14 versions ok" in out.stderr


def test_adding_an_optional_field_with_a_default_passes(schemas_copy: Path) -> None:
    new = {"name": "venue", "type": ["null", "string"], "default": None, "doc": "Where to route the order."}
    edit(schemas_copy, "OrderPlaced", lambda s: s["fields"].append(new))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 0, out.stderr


def test_a_released_event_without_a_current_schema_fails(schemas_copy: Path) -> None:
    path_of("CancelRejected", schemas_copy).unlink()
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert "CancelRejected: released (v1) but there is no current schema" in out.stderr


def test_a_new_event_not_yet_released_is_noted_not_failed(schemas_copy: Path) -> None:
    source = json.loads(path_of("CancelRejected", schemas_copy).read_text())
    path_of("AmendRejected", schemas_copy).write_text(json.dumps({**source, "name": "AmendRejected"}))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 0, out.stderr
    assert "note: AmendRejected: not released yet" in out.stdout
