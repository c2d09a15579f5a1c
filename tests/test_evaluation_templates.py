"""Prompt templates: rendering, missing variables, and the sandbox refusing unsafe code."""

from __future__ import annotations

import pytest

from playground.errors import InvalidRequestError
from playground.evaluation.templates import PromptTemplate, TemplateError, render, variables


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


def test_syntax_errors_say_which_part_and_line() -> None:
    with pytest.raises(TemplateError, match="user prompt template has a syntax error on line 2"):
        variables(PromptTemplate("", "ok\n{{ broken "))


def test_huge_ranges_are_refused() -> None:
    with pytest.raises(TemplateError):
        render(PromptTemplate("", "{% for i in range(10**6) %}{% endfor %}"), {})
