"""Build minimal valid instances of GitHub's OpenAPI schemas (the fake then fills in real values).

Every required property gets a placeholder of the right type (``nullable`` ones get ``null``), so
the fake's objects carry the full shape GitHub documents; the contract validator still checks the
values the fake overlays on top.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from .contract import load_spec

PLACEHOLDER_TIME = "2026-01-01T00:00:00Z"


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    spec = load_spec()
    while "$ref" in schema:
        _, _, section, name = schema["$ref"].split("/", 3)
        schema = spec["components"][section][name]
    return schema


def _value(schema: dict[str, Any], depth: int) -> Any:
    schema = _resolve(schema)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            value = _value(part, depth)
            if isinstance(value, dict):
                merged.update(value)
        return merged
    if schema.get("nullable"):
        return None
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return _value(schema[key][0], depth)
    if "enum" in schema:
        return next((v for v in schema["enum"] if v is not None), None)
    kind = schema.get("type")
    if kind == "object" or (kind is None and "properties" in schema):
        if depth > 8:
            return {}
        props = schema.get("properties", {})
        return {name: _value(props.get(name, {}), depth + 1) for name in schema.get("required", [])}
    if kind == "array":
        return []
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return PLACEHOLDER_TIME
        if fmt in ("uri", "url"):
            return "https://github.invalid/"
        if fmt == "email":
            return "octocat@github.invalid"
        return ""
    if kind == "integer":
        return max(0, int(schema.get("minimum", 0)))
    if kind == "number":
        return 0
    if kind == "boolean":
        return False
    return None


@cache
def _template(name: str) -> Any:
    return _value({"$ref": f"#/components/schemas/{name}"}, 0)


def instance(schema_name: str, /, **values: Any) -> dict[str, Any]:
    """A fresh instance of component schema ``schema_name`` with ``values`` overlaid."""
    base = copy.deepcopy(_template(schema_name))
    if not isinstance(base, dict):
        raise TypeError(f"schema {schema_name} is not an object")
    base.update(values)
    return base
