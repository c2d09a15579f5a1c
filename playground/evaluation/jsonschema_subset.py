"""A small JSON Schema subset for the ``json_schema`` assertion, with no dependency.

Supported keywords: ``type``, ``enum``, ``const``, ``required``, ``properties``,
``additionalProperties`` (boolean), ``items``, ``minItems``/``maxItems``,
``minLength``/``maxLength``, ``minimum``/``maximum``. Other keywords are ignored.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("number", "integer") and isinstance(value, bool):
        return False
    if name == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(name, (object,)))


def schema_errors(value: Any, schema: Any, path: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema``, as readable messages with a JSON path."""
    if not isinstance(schema, dict):
        return []
    errors: list[str] = []
    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, n) for n in names):
            return [f"{path}: expected {' or '.join(names)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']!r}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: expected {schema['const']!r}")
    if isinstance(value, dict):
        errors += _object_errors(value, schema, path)
    if isinstance(value, list):
        errors += _bounds(len(value), schema, "minItems", "maxItems", path, "items")
        for index, item in enumerate(value):
            errors += schema_errors(item, schema.get("items"), f"{path}[{index}]")
    if isinstance(value, str):
        errors += _bounds(len(value), schema, "minLength", "maxLength", path, "characters")
    if isinstance(value, int | float) and not isinstance(value, bool):
        errors += _bounds(value, schema, "minimum", "maximum", path, "")
    return errors


def _object_errors(value: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    errors = [
        f"{path}: missing required key {k!r}" for k in schema.get("required", []) if k not in value
    ]
    properties = schema.get("properties", {})
    for key, item in value.items():
        if key in properties:
            errors += schema_errors(item, properties[key], f"{path}.{key}")
        elif schema.get("additionalProperties") is False:
            errors.append(f"{path}: unexpected key {key!r}")
    return errors


def _bounds(
    size: float, schema: dict[str, Any], low_key: str, high_key: str, path: str, unit: str
) -> list[str]:
    errors = []
    suffix = f" {unit}" if unit else ""
    if low_key in schema and size < schema[low_key]:
        errors.append(f"{path}: {size:g}{suffix} is below the minimum {schema[low_key]}")
    if high_key in schema and size > schema[high_key]:
        errors.append(f"{path}: {size:g}{suffix} is above the maximum {schema[high_key]}")
    return errors
