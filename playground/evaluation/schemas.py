"""JSON Schema (Draft 2020-12) for the ``json_schema`` assertion, checked by ``jsonschema``.

A schema is checked once, before a batch sends anything (:func:`schema_problem`), and
then applied to each answer (:func:`schema_errors`). Only references inside the schema
(``#/$defs/...``) are followed: nothing is fetched from the network or the disk. The
``format`` keyword is an annotation, as Draft 2020-12 defines it by default.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# jsonschema and referencing are imported where a schema is checked: they take a tenth of
# a second to import, which every batch's start-up would pay for a rarely used assertion.

MAX_ERRORS = 3
MAX_MESSAGE_CHARS = 160
# Keywords whose values are data, not subschemas: a "$ref" key inside them is no reference.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is no valid Draft 2020-12 schema (a sentence), or ``None`` when it is.

    Also refused: a ``$ref`` pointing outside the schema or to a part it does not have.
    """
    if not isinstance(schema, dict | bool):
        return f"a schema is a JSON object, not {type(schema).__name__}"
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError
    from referencing import Registry
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON Schema (at {exc.json_path}): {_short(exc.message)}"
    if isinstance(schema, bool):
        return None
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
    for ref in _refs(schema):
        if not ref.startswith("#"):
            return (
                f"$ref {ref!r} points outside the schema; only references inside it "
                "(like '#/$defs/item') are followed"
            )
        try:
            resolver.lookup(ref)
        except Unresolvable:
            return f"$ref {ref!r} points to nothing in the schema"
    return None


def schema_errors(value: Any, schema: dict[str, Any] | bool) -> list[str]:
    """How ``value`` breaks ``schema`` (a checked schema): at most :data:`MAX_ERRORS`
    readable messages, each with the JSON path of the part at fault."""
    from jsonschema import Draft202012Validator
    from referencing.exceptions import Unresolvable

    validator = Draft202012Validator(schema)
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.path)))
    except Unresolvable as exc:
        return [f"the schema's reference {exc} cannot be followed"]
    return [f"{e.json_path}: {_short(e.message)}" for e in errors[:MAX_ERRORS]]


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in _DATA_KEYWORDS:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"
