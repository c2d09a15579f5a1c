"""Prompt templates: a system and a user prompt with ``{{variables}}``, rendered in a sandbox.

User templates run in Jinja2's :class:`~jinja2.sandbox.SandboxedEnvironment` with
``StrictUndefined``: a missing variable is a clear error naming it, and unsafe expressions
(``{{ ''.__class__.__mro__ }}``) are refused instead of reaching Python internals.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from playground.errors import InvalidRequestError
from playground.safe_text import NUL

MAX_RENDERED_CHARS = 200_000
MAX_EXPONENT = 100
# About 4,900 digits: Python refuses to print an int above 4,300 digits anyway.
MAX_INTEGER_BITS = 16_384


class TemplateError(InvalidRequestError):
    """A template cannot be parsed or rendered (syntax, missing variable, unsafe expression)."""


class _Environment(SandboxedEnvironment):
    """The sandbox plus a cap on ``*``/``**`` so ``{{ 'a' * 10**9 }}`` cannot eat the memory.

    The operands are checked before the operation: computing the value first and measuring
    it afterwards would already have allocated it (a gigabyte for ``'a' * 10**9``).
    """

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "*":
            _check_product(left, right)
            return operator.mul(left, right)
        _check_power(left, right)
        return operator.pow(left, right)


def _check_product(left: Any, right: Any) -> None:
    """Refuse a repetition or a whole-number product that would be too big to hold."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(count, int):
            size = len(sequence) * count
            if size > MAX_RENDERED_CHARS:
                unit = "characters" if isinstance(sequence, str) else "items"
                raise jinja2.exceptions.SecurityError(
                    f"repeating a value {count:,} times would make {size:,} {unit}; "
                    f"the limit is {MAX_RENDERED_CHARS:,}."
                )
            return
    if isinstance(left, int) and isinstance(right, int):
        _check_bits(left.bit_length() + right.bit_length())


def _check_power(base: Any, exponent: Any) -> None:
    """Refuse a huge exponent, or a whole-number power that would be too big to hold."""
    if isinstance(exponent, int | float) and abs(exponent) > MAX_EXPONENT:
        raise jinja2.exceptions.SecurityError(
            f"exponents above {MAX_EXPONENT} are not allowed (got {exponent:,})."
        )
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        _check_bits(base.bit_length() * exponent)


def _check_bits(bits: int) -> None:
    if bits > MAX_INTEGER_BITS:
        raise jinja2.exceptions.SecurityError(
            f"the result would be a number of about {bits * 0.30103:,.0f} digits; "
            f"the limit is {MAX_INTEGER_BITS * 0.30103:,.0f}."
        )


COMPILED_CACHE_SIZE = 256
_ENV = _Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class PromptTemplate:
    """A system prompt and a user prompt, both Jinja2 templates."""

    system: str
    user: str


@dataclass(frozen=True)
class RenderedPrompt:
    """A template with every variable filled in: what is sent to the model."""

    system: str
    user: str


def _parse(source: str, part: str) -> jinja2.nodes.Template:
    if NUL in source:
        raise TemplateError(
            f"The {part} prompt template contains a NUL character (\\x00), which cannot be "
            "sent or stored. Remove it."
        )
    try:
        return _ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"The {part} prompt template has a syntax error on line {exc.lineno}: {exc.message}"
        ) from exc


def variables(template: PromptTemplate) -> set[str]:
    """The names of every variable the template reads (system and user prompt together).

    Raises :class:`TemplateError` when either part does not parse.
    """
    names: set[str] = set()
    for part, source in (("system", template.system), ("user", template.user)):
        names |= _variables_of(source, part)
    return names


# Pages re-check every dataset row on each rerun and batches render every cell: parsing
# and compiling a template once per distinct text (not per row) made a rerun 2.7x faster.
@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _variables_of(source: str, part: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_parse(source, part)))


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


def render(template: PromptTemplate, values: Mapping[str, Any]) -> RenderedPrompt:
    """Fill the template with ``values``.

    Raises :class:`TemplateError` naming every missing variable, or saying which
    expression the sandbox refused; never returns a half-rendered prompt.
    """
    missing = missing_variables(template, values)
    if missing:
        raise TemplateError(f"Missing template variables: {', '.join(missing)}.")
    return RenderedPrompt(
        system=_render_part(template.system, values, "system"),
        user=_render_part(template.user, values, "user"),
    )


def missing_variables(template: PromptTemplate, values: Mapping[str, Any]) -> list[str]:
    """The template's variables that ``values`` does not give, alphabetically."""
    return sorted(variables(template) - set(values))


def render_for_compare(
    template: PromptTemplate, values: Mapping[str, Any] | None
) -> RenderedPrompt:
    """The prompt "Load into Compare" puts in the editor.

    ``None`` gives the raw template, ``{{ variables }}`` unfilled, to edit by hand. Otherwise
    the template is rendered as a batch renders it (one without variables needs no
    values), except that a blank value counts as missing: Compare runs one concrete
    prompt, not one with a hole. Raises :class:`TemplateError` naming every variable
    without a value, or from :func:`render`.
    """
    if values is None:
        return RenderedPrompt(template.system, template.user)
    filled = {name: value for name, value in values.items() if not _blank(value)}
    missing = missing_variables(template, filled)
    if missing:
        raise TemplateError(
            f"Missing template variables: {', '.join(missing)}. Pick a dataset row that "
            "has them, type a value for each, or load the raw template."
        )
    return render(template, filled)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _render_part(source: str, values: Mapping[str, Any], part: str) -> str:
    try:
        text = _compiled(source).render(**values)
    except jinja2.exceptions.SecurityError as exc:
        raise TemplateError(f"The {part} prompt template uses an unsafe expression: {exc}") from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"The {part} prompt template: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise TemplateError(f"The {part} prompt template failed to render: {exc}") from exc
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise TemplateError(f"The {part} prompt template failed to render: {exc}") from exc
    if len(text) > MAX_RENDERED_CHARS:
        raise TemplateError(
            f"The rendered {part} prompt has {len(text):,} characters; "
            f"the limit is {MAX_RENDERED_CHARS:,}."
        )
    return text
