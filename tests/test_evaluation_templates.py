"""Prompt templates: rendering, missing variables, and the sandbox refusing unsafe code."""

from __future__ import annotations

import tracemalloc

import pytest

from playground.errors import InvalidRequestError
from playground.templates import (
    PromptTemplate,
    RenderedPrompt,
    TemplateError,
    render,
    render_for_compare,
    variables,
)


def test_renders_system_and_user_with_variables() -> None:
    template = PromptTemplate("You speak {{ lang }}.", "Translate: {{ text | upper }}")
    rendered = render(template, {"lang": "French", "text": "hi"})
    assert (rendered.system, rendered.user) == ("You speak French.", "Translate: HI")


def test_variables_are_found_in_both_parts_but_not_loop_names() -> None:
    template = PromptTemplate("{{ a }}", "{% for x in items %}{{ x }}{{ b }}{% endfor %}")
    assert variables(template) == {"a", "items", "b"}


def test_missing_variables_are_named_in_one_error() -> None:
    template = PromptTemplate("{{ persona }}", "{{ question }} {{ context }}")
    with pytest.raises(TemplateError, match="Missing template variables: context, persona"):
        render(template, {"question": "q"})
    assert issubclass(TemplateError, InvalidRequestError)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ x.__class__.__subclasses__() }}",
        "{{ x.__init__.__globals__ }}",
        "{{ 'a' * 10000000 }}",
        "{{ 9 ** 999999 }}",
    ],
)
def test_sandbox_refuses_unsafe_expressions(source: str) -> None:
    with pytest.raises(TemplateError, match="unsafe expression"):
        render(PromptTemplate("", source), {"x": 1})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'a' * 10**9 }}", "would make 1,000,000,000 characters; the limit is 200,000"),
        ("{{ 10**9 * 'ab' }}", "would make 2,000,000,000 characters"),
        ("{{ [0, 1] * 10**8 }}", "would make 200,000,000 items"),
        ("{{ ((2**100)**100)**100 }}", "a number of about 301,060 digits"),
        (
            "{% set n = 10**99 %}{{ " + "*".join(["n"] * 60) + " }}",  # 60 × 329 bits
            "digits; the limit is",
        ),
    ],
)
def test_huge_products_are_refused_before_they_are_computed(source: str, message: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError, match="unsafe expression") as refused:
            render(PromptTemplate("", source), {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in str(refused.value)
    assert peak < 10_000_000  # bytes: the value was never built


def test_small_products_and_powers_still_render() -> None:
    source = (
        "{{ 'ab' * 3 }} {{ 3 * [0] }} {{ 2**10 }} {{ 10**100 > 1 }} {{ 1.5 * 2 }} {{ 'x' * -1 }}"
    )
    assert render(PromptTemplate("", source), {}).user == "ababab [0, 0, 0] 1024 True 3.0 "


def test_syntax_errors_say_which_part_and_line() -> None:
    with pytest.raises(TemplateError, match="user prompt template has a syntax error on line 2"):
        variables(PromptTemplate("", "ok\n{{ broken "))


def test_huge_ranges_are_refused() -> None:
    with pytest.raises(TemplateError):
        render(PromptTemplate("", "{% for i in range(10**6) %}{% endfor %}"), {})


COUNTRY = PromptTemplate("Answer in {{ lang }}.", "Capital of {{ country }}?")


def test_render_for_compare_fills_the_variables_and_ignores_other_columns() -> None:
    values = {"country": "Italy", "lang": "Italian", "expected": "Rome"}
    rendered = render_for_compare(COUNTRY, values)
    assert (rendered.system, rendered.user) == ("Answer in Italian.", "Capital of Italy?")


@pytest.mark.parametrize("values", [{"lang": "French"}, {"lang": "French", "country": " "}])
def test_render_for_compare_names_missing_or_blank_variables_and_what_to_do(
    values: dict[str, str],
) -> None:
    with pytest.raises(
        TemplateError,
        match=r"^Missing template variables: country\. Pick a dataset row that has them, "
        r"type a value for each, or load the raw template\.$",
    ):
        render_for_compare(COUNTRY, values)


def test_render_for_compare_without_variables_needs_no_values_and_raw_keeps_braces() -> None:
    plain = PromptTemplate("Be terse.", "{{ 6 * 7 }} is the answer?")
    assert render_for_compare(plain, {}) == RenderedPrompt("Be terse.", "42 is the answer?")
    assert render_for_compare(COUNTRY, None) == RenderedPrompt(COUNTRY.system, COUNTRY.user)
