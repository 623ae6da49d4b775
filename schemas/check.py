"""``python -m schemas.check``: can today's code read every event ever released?

For every event released under ``schemas/released/<Event>/v<N>.avsc``, the current schema (as the reader) must be
BACKWARD compatible with each released version (as the writer) — every version, not only the last, because the log
is kept forever and a consumer replays it from offset 0. Offline: no registry, no Kafka. The rules are Apache Avro's
own (``avro.compatibility.ReaderWriterCompatibilityChecker``), not ours. A released event with no current schema
fails too: its history would become unreadable. Exits 1 naming each incompatible event, version and the reason.

Beside Avro's verdict, one guard of ours: Avro resolution ignores logical types, so it accepts ``decimal(18,8)`` ->
``decimal(18,6)``, ``timestamp-micros`` -> ``timestamp-millis`` or a dropped ``uuid``, which read old bytes with a
different meaning. Every field in both the released and the current schema must keep its logical type annotation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import avro.errors
import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

from schemas.avsc import AVRO_DIR, NAMESPACE, RELEASED_DIR, load_expanded, path_of, released_versions
from schemas.contract_errors import SchemaFileError


@dataclass
class Report:
    """What the check found: ``failures`` make it fail; ``notes`` are for information."""

    checked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def check(schemas_dir: Path = AVRO_DIR, released_dir: Path = RELEASED_DIR) -> Report:
    """Check every current schema in ``schemas_dir`` against every released version in ``released_dir``."""
    report = Report()
    released = sorted(path.name for path in released_dir.iterdir() if path.is_dir()) if released_dir.is_dir() else []
    if not released:
        report.failures.append(f"no released versions under {released_dir}")
    for name in released:
        versions = released_versions(name, released_dir)
        current_path = path_of(name, schemas_dir)
        if not current_path.is_file():
            listed = ", ".join(f"v{n}" for n in versions)
            report.failures.append(
                f"{name}: released ({listed}) but there is no current schema {current_path}; "
                f"events already written could no longer be read"
            )
            continue
        try:
            reader = _parse(load_expanded(current_path))
        except (SchemaFileError, avro.errors.AvroException) as err:
            report.failures.append(f"{name}: the current schema {current_path} does not load: {err}")
            continue
        for number, path in versions.items():
            label = f"{name} v{number}"
            try:
                writer = _parse(json.loads(path.read_text()))
            except (ValueError, avro.errors.AvroException) as err:
                report.failures.append(f"{label}: the released schema {path} does not load: {err}")
                continue
            checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]  # avro ships no annotations there
            result = checker.get_compatibility(reader, writer)
            failures = len(report.failures)
            if result.compatibility is not SchemaCompatibilityType.compatible:
                reasons = ", ".join(sorted({kind.value for kind in result.incompatibilities}))
                details = "; ".join(sorted(result.messages))
                where = ", ".join(_describe(loc, reader.to_json()) for loc in sorted(result.locations - {"/"}))
                report.failures.append(
                    f"{label}: the current schema cannot read events written with v{number} (BACKWARD): "
                    f"{reasons}: {details}" + (f" — at {where}" if where else "")
                )
            for where, was, now in _logical_type_changes(reader, writer):
                report.failures.append(
                    f"{label}: the logical type of field {where} changed: was {was} now {now}; Avro resolution "
                    f"ignores logical types, so the current schema would misinterpret the bytes written with v{number}"
                )
            if len(report.failures) == failures:
                report.checked.append(label)
    for path in sorted(schemas_dir.glob(f"{NAMESPACE}.*.avsc")):
        name = path.name.removeprefix(f"{NAMESPACE}.").removesuffix(".avsc")
        if name not in released and _is_event(path):
            report.notes.append(f"{name}: not released yet (no {released_dir / name}/v1.avsc)")
    return report


def _parse(schema: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(schema))


def _logical_type_changes(
    reader: avro.schema.Schema,
    writer: avro.schema.Schema,
    path: str = "",
    seen: frozenset[tuple[int, int]] = frozenset(),
) -> Iterator[tuple[str, str, str]]:
    """``(field path, was, now)`` wherever a schema in both ``writer`` and ``reader`` changed its logical type.

    Fields are matched by name (or the reader's aliases), union branches by type or full name, a non-union taken as
    a union of one; fields and branches on one side only are left to Avro's own check.
    """
    if isinstance(reader, avro.schema.UnionSchema) or isinstance(writer, avro.schema.UnionSchema):
        branches = {_branch_key(branch): branch for branch in _branches(reader)}
        for branch in _branches(writer):
            if _branch_key(branch) in branches:
                yield from _logical_type_changes(branches[_branch_key(branch)], branch, path, seen)
        return
    if _logical_type(writer) != _logical_type(reader):  # plain types (int -> long) are Avro's business
        yield path, _logical_type(writer) or f"plain {writer.type}", _logical_type(reader) or f"plain {reader.type}"
    if isinstance(reader, avro.schema.RecordSchema) and isinstance(writer, avro.schema.RecordSchema):
        if (id(reader), id(writer)) in seen:  # a recursive type: its fields are being compared further up
            return
        for reader_field in reader.fields:
            names = [reader_field.name, *(reader_field.props.get("aliases") or [])]
            writer_field = next((writer.fields_dict[n] for n in names if n in writer.fields_dict), None)
            if writer_field is not None:
                where = f"{path}.{reader_field.name}" if path else reader_field.name
                yield from _logical_type_changes(
                    reader_field.type, writer_field.type, where, seen | {(id(reader), id(writer))}
                )
    elif isinstance(reader, avro.schema.ArraySchema) and isinstance(writer, avro.schema.ArraySchema):
        yield from _logical_type_changes(reader.items, writer.items, f"{path}[]", seen)
    elif isinstance(reader, avro.schema.MapSchema) and isinstance(writer, avro.schema.MapSchema):
        yield from _logical_type_changes(reader.values, writer.values, f"{path}{{}}", seen)


def _branches(schema: avro.schema.Schema) -> list[avro.schema.Schema]:
    return list(schema.schemas) if isinstance(schema, avro.schema.UnionSchema) else [schema]


def _branch_key(schema: avro.schema.Schema) -> str:
    return str(schema.fullname) if isinstance(schema, avro.schema.NamedSchema) else str(schema.type)


def _logical_type(schema: avro.schema.Schema) -> str | None:
    """``decimal(18,8)``, ``timestamp-micros``, ``uuid``...; None when there is none."""
    logical = schema.get_prop("logicalType")
    if logical == "decimal":
        return f"decimal({schema.get_prop('precision')},{schema.get_prop('scale') or 0})"
    return str(logical) if logical else None


def _is_event(path: Path) -> bool:
    try:
        fields = json.loads(path.read_text()).get("fields", [])
    except (ValueError, AttributeError):
        return False
    return any(isinstance(f, dict) and f.get("name") == "envelope" for f in fields)


def _describe(location: str, schema: Any) -> str:
    """``/fields/9/type`` with the field names along the way, e.g. ``/fields/9/type (limit_price)``."""
    names, node = [], schema
    for step in location.strip("/").split("/"):
        if isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        elif isinstance(node, dict) and step in node:
            node = node[step]
        else:
            break
        if isinstance(node, dict) and step.isdigit() and "name" in node:
            names.append(str(node["name"]))
    return f"{location} ({'.'.join(names)})" if names else location


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m schemas.check",
        description="Check that every current event schema can read every released version of it (BACKWARD, "
        "transitively), offline.",
    )
    parser.add_argument("--schemas", type=Path, default=AVRO_DIR, help=f"current .avsc files (default {AVRO_DIR})")
    parser.add_argument(
        "--released",
        type=Path,
        default=RELEASED_DIR,
        help=f"released versions, <Event>/vN.avsc (default {RELEASED_DIR})",
    )
    args = parser.parse_args(argv)
    report = check(args.schemas, args.released)
    for note in report.notes:
        print(f"note: {note}")
    for failure in report.failures:
        print(f"FAIL {failure}", file=sys.stderr)
    if report.ok:
        print(f"schemas-check: ok — {len(report.checked)} released versions readable by the current schemas")
        return 0
    print(f"schemas-check: {len(report.failures)} problem(s); {len(report.checked)} versions ok", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
