"""A small validator for the subset of JSON Schema that results.schema.json uses.

Usage::

    from unetbench.report.validate import validate, load_schema
    errors = validate(payload, load_schema())   # [] when valid, else ["timing.step_ms: ...", ...]

Why not ``jsonschema``: it is a test dependency only (GPU machines may lack it) and costs import
time. The tests check that this validator agrees with jsonschema on the fixtures. Supported
keywords: type, required, properties, items, enum, const, $ref (local), oneOf, minItems,
maxItems, minimum. Anything else in the schema is ignored.

The schema file does not repeat facts kept elsewhere: load_schema() fills in the schema
version (unetbench.training.results.SCHEMA_VERSION) and the backend and profile names
(unetbench.core.registry). Validate against load_schema(), never against the bare file.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from ..core.registry import BACKENDS, PROFILES
from ..training.results import SCHEMA_PATH, SCHEMA_VERSION

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


@lru_cache(maxsize=1)
def load_schema() -> dict:
    """schema/results.schema.json with its version and its backend and profile names filled
    in from the one place each is defined."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    properties = schema["properties"]
    properties["schema_version"]["const"] = SCHEMA_VERSION
    properties["backend"]["enum"] = list(BACKENDS)
    properties["profile"]["enum"] = list(PROFILES)
    return schema


def _resolve(ref: str, root: dict) -> dict:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _check(value: Any, schema: dict, root: dict, where: str, errors: list[str]) -> None:
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, where, errors)
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where or 'results'}: expected {schema['const']!r}, found {value!r}")
        return
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where or 'results'}: {value!r} is not one of {schema['enum']}")
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            errors.append(f"{where or 'results'}: expected {' or '.join(types)}, found {type(value).__name__}")
            return
    if "oneOf" in schema:
        matches = sum(1 for sub in schema["oneOf"] if not _collect(value, sub, root, where))
        if matches != 1:
            errors.append(f"{where or 'results'}: matches {matches} of the allowed forms, expected exactly 1")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{where or 'results'}: missing required key {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _check(value[key], sub, root, f"{where}.{key}" if where else key, errors)
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{where or 'results'}: needs at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{where or 'results'}: allows at most {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                _check(item, schema["items"], root, f"{where}[{i}]", errors)
    elif _TYPES["number"](value) and "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where or 'results'}: {value} is below the minimum {schema['minimum']}")


def _collect(value: Any, schema: dict, root: dict, where: str) -> list[str]:
    errors: list[str] = []
    _check(value, schema, root, where, errors)
    return errors


def validate(payload: Any, schema: dict | None = None) -> list[str]:
    """Return a list of readable problems ("path: what is wrong"); empty when valid."""
    schema = schema or load_schema()
    return _collect(payload, schema, schema, "")
