"""The ``.avsc`` files: where they are, and each event's schema in the expanded form the registry receives."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import fastavro.schema

from schemas.contract_errors import SchemaFileError

AVRO_DIR = Path(__file__).parent / "avro"
RELEASED_DIR = Path(__file__).parent / "released"
NAMESPACE = "tradecore.events"


def path_of(name: str, directory: Path = AVRO_DIR) -> Path:
    """The file of a named type: fastavro finds a referenced type ``X`` in the sibling file ``<namespace>.X.avsc``."""
    return directory / f"{NAMESPACE}.{name}.avsc"


def load_expanded(path: Path) -> dict[str, Any]:
    """The schema in ``path`` with every named type it references defined inline, at its first use.

    This is what is registered and released: a self-contained schema, no registry references, so any reader
    with the schema id alone can decode the bytes.
    """
    if not path.is_file():
        raise SchemaFileError(f"no schema file {path}")
    try:
        # _write_hint=False leaves out fastavro's private "__fastavro_parsed"/"__named_schemas" markers,
        # which must not reach the registry.
        loaded = fastavro.schema.load_schema(str(path), _write_hint=False)
    except Exception as err:  # fastavro raises several types for bad JSON, bad types and missing references
        raise SchemaFileError(f"{path} is not a valid Avro schema: {type(err).__name__}: {err}") from err
    if not isinstance(loaded, dict) or loaded.get("type") != "record":
        raise SchemaFileError(f"{path} does not define a record")
    return loaded


def expanded(name: str) -> dict[str, Any]:
    """The current expanded schema of event ``name``: a copy, the caller's to change."""
    schema: dict[str, Any] = json.loads(schema_str(name))
    return schema


@functools.cache
def schema_str(name: str) -> str:
    """The current expanded schema of event ``name`` as the exact string registered and looked up (read once)."""
    return dumps(load_expanded(path_of(name)))


def dumps(schema: dict[str, Any]) -> str:
    """One compact, deterministic JSON text per schema: registry lookups compare schemas as text."""
    return json.dumps(schema, separators=(",", ":"), ensure_ascii=False)


def released_versions(name: str, directory: Path = RELEASED_DIR) -> dict[int, Path]:
    """The released versions of event ``name``: ``{N: <directory>/<name>/vN.avsc}``."""
    found: dict[int, Path] = {}
    for path in (directory / name).glob("v*.avsc"):
        number = path.stem[1:]
        if number.isdigit():
            found[int(number)] = path
    return dict(sorted(found.items()))
