"""`python -m schemas.check`: passes on the repository, and names the event, the version and the reason otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from schemas.avsc import AVRO_DIR, RELEASED_DIR, path_of, released_versions


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


def released_events() -> list[str]:
    return sorted(path.name for path in RELEASED_DIR.iterdir() if path.is_dir())


def released_count() -> int:
    return sum(len(released_versions(name)) for name in released_events())


def test_the_repository_passes() -> None:
    out = run_check()
    assert out.returncode == 0, out.stderr
    assert f"ok — {released_count()} released versions readable" in out.stdout


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
    assert out.stderr.count("(envelope.sequence)") == len(released_events())


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
    assert f"1 problem(s); {released_count()} versions ok" in out.stderr


def test_adding_an_optional_field_with_a_default_passes(schemas_copy: Path) -> None:
    new = {"name": "venue", "type": ["null", "string"], "default": None, "doc": "Where to route the order."}
    edit(schemas_copy, "OrderPlaced", lambda s: s["fields"].append(new))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 0, out.stderr


def test_a_promotion_without_logical_types_passes(schemas_copy: Path) -> None:
    edit(schemas_copy, "Envelope", lambda s: field(s, "schema_version").update(type="long"))  # int -> long
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 0, out.stderr


def test_a_released_event_without_a_current_schema_fails(schemas_copy: Path) -> None:
    path_of("CancelRejected", schemas_copy).unlink()
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert "CancelRejected: released (v1) but there is no current schema" in out.stderr


def test_a_new_event_not_yet_released_is_noted_not_failed(schemas_copy: Path) -> None:
    source = json.loads(path_of("CancelRejected", schemas_copy).read_text())
    path_of("NeverReleased", schemas_copy).write_text(json.dumps({**source, "name": "NeverReleased"}))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 0, out.stderr
    assert "note: NeverReleased: not released yet" in out.stdout


# Avro resolution ignores logical types: each change below passes Avro's own check, and only the logical-type
# guard stops it.


def test_a_decimal_scale_change_fails_naming_the_field(schemas_copy: Path) -> None:
    edit(schemas_copy, "OrderPlaced", lambda s: field(s, "quantity")["type"].update(scale=6))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert (
        "OrderPlaced v1: the logical type of field quantity changed: was decimal(18,8) now decimal(18,6); "
        "Avro resolution ignores logical types, so the current schema would misinterpret the bytes written with v1"
    ) in out.stderr
    assert "cannot read" not in out.stderr  # Avro's own check accepts it
    assert "1 problem(s)" in out.stderr


def test_a_decimal_precision_change_inside_a_union_fails(schemas_copy: Path) -> None:
    edit(schemas_copy, "OrderPlaced", lambda s: field(s, "limit_price")["type"][1].update(precision=20))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert "OrderPlaced v1: the logical type of field limit_price changed: was decimal(18,8) now decimal(20,8)" in (
        out.stderr
    )
    assert "1 problem(s)" in out.stderr


def drop_logical_type(name: str) -> Any:
    def change(schema: dict[str, Any]) -> None:
        field(schema, name)["type"].pop("logicalType")

    return change


@pytest.mark.parametrize(
    ("event", "change", "expected"),
    [
        (
            "OrderFilled",
            drop_logical_type("fee"),
            "OrderFilled v1: the logical type of field fee changed: was decimal(28,8) now plain bytes",
        ),
        (
            "Envelope",
            drop_logical_type("event_id"),
            "the logical type of field envelope.event_id changed: was uuid now plain string",
        ),
        (
            "Envelope",
            drop_logical_type("recorded_at"),
            "the logical type of field envelope.recorded_at changed: was timestamp-micros now plain long",
        ),
        (
            "OrderPlaced",
            lambda s: field(s, "order_id").update(type={"type": "string", "logicalType": "uuid"}),
            "OrderPlaced v1: the logical type of field order_id changed: was plain string now uuid",
        ),
    ],
    ids=["decimal-dropped", "uuid-dropped", "timestamp-dropped", "uuid-added"],
)
def test_a_logical_type_dropped_or_added_fails(schemas_copy: Path, event: str, change: Any, expected: str) -> None:
    edit(schemas_copy, event, change)
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert expected in out.stderr
    assert "cannot read" not in out.stderr


def test_timestamp_micros_to_millis_fails_every_event(schemas_copy: Path) -> None:
    edit(schemas_copy, "Envelope", lambda s: field(s, "occurred_at")["type"].update(logicalType="timestamp-millis"))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    changed = "the logical type of field envelope.occurred_at changed: was timestamp-micros now timestamp-millis"
    assert out.stderr.count(changed) == len(released_events())
    assert "OrderFilled v1: " + changed in out.stderr


def test_an_optional_decimal_keeping_its_annotation_passes_and_one_changing_it_fails(schemas_copy: Path) -> None:
    def optional(scale: int) -> Any:
        def change(schema: dict[str, Any]) -> None:
            decimal = {"type": "bytes", "logicalType": "decimal", "precision": 28, "scale": scale}
            field(schema, "fee").update(type=["null", decimal], default=None, doc="Fee, if any.")

        return change

    edit(schemas_copy, "OrderFilled", optional(8))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 0, out.stderr

    edit(schemas_copy, "OrderFilled", optional(2))
    out = run_check("--schemas", str(schemas_copy))
    assert out.returncode == 1
    assert "OrderFilled v1: the logical type of field fee changed: was decimal(28,8) now decimal(28,2)" in out.stderr


def test_logical_types_are_compared_inside_arrays_maps_and_nested_records(tmp_path: Path) -> None:
    def basket(scale: int, marks: str) -> dict[str, Any]:
        leg = {
            "type": "record",
            "name": "Leg",
            "fields": [
                {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": scale}},
                {"name": "hedge", "type": ["null", "Leg"], "default": None},  # recursive: must not loop
            ],
        }
        return {
            "type": "record",
            "name": "Basket",
            "namespace": "tradecore.events",
            "fields": [
                {"name": "legs", "type": {"type": "array", "items": leg}},
                {"name": "marks", "type": {"type": "map", "values": {"type": "long", "logicalType": marks}}},
            ],
        }

    (tmp_path / "released" / "Basket").mkdir(parents=True)
    (tmp_path / "released" / "Basket" / "v1.avsc").write_text(json.dumps(basket(8, "timestamp-micros")))
    (tmp_path / "avro").mkdir()
    path_of("Basket", tmp_path / "avro").write_text(json.dumps(basket(6, "timestamp-millis")))
    out = run_check("--schemas", str(tmp_path / "avro"), "--released", str(tmp_path / "released"))
    assert out.returncode == 1
    assert (
        "Basket v1: the logical type of field legs[].price changed: was decimal(18,8) now decimal(18,6)" in out.stderr
    )
    assert "field marks{} changed: was timestamp-micros now timestamp-millis" in out.stderr
    assert "2 problem(s)" in out.stderr
