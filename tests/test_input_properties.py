"""Property tests: suite files, datasets and assertions under random input.

Whatever a user writes or uploads, the answer is a result or the project's own error type
(:class:`~playground.errors.InvalidRequestError` and its kinds) with a message: never
another exception, which the UI would show as a crash and the CLI as a traceback.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from playground.datasets import Dataset, DatasetError, parse_dataset
from playground.errors import InvalidRequestError
from playground.evaluation.assertions import (
    ASSERTION_KINDS,
    AssertionSpecError,
    Observation,
    check,
    check_dataset_values,
    parse_assertions,
    parse_assertions_yaml,
)
from playground.evaluation.promptfoo.config import ASSERT_TYPES as PF_ASSERT_TYPES
from playground.evaluation.promptfoo.config import parse_promptfoo
from playground.evaluation.suite import SUITE_KEYS, SuiteError, load_suite, parse_suite

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["country", "capital", "{{ country }}", "{{ x", "(", "gpt-5-nano"]),
)
KEYS = st.one_of(st.text(max_size=8), st.integers(), st.booleans(), st.none())  # YAML allows them
JSONISH = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner),
    max_leaves=12,
)
# Mostly the keys the parsers know, so random values reach the checks behind the first one.
ASSERTION = st.dictionaries(
    st.sampled_from(["type", "value", "column", "case_sensitive", "vlaue"]),
    st.one_of(st.sampled_from(ASSERTION_KINDS), JSONISH),
)
ASSERTIONS = st.one_of(JSONISH, st.lists(st.one_of(ASSERTION, JSONISH), max_size=4))


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        path = Path(name)
        (path / "countries.csv").write_text("country,capital\nFrance,Paris\n", encoding="utf-8")
        yield path


def _fails_clearly(error: Exception) -> None:
    assert isinstance(error, InvalidRequestError), repr(error)
    assert str(error).strip(), "an error without a message"


@given(raw=ASSERTIONS)
def test_any_decoded_assertions_parse_or_say_what_is_wrong(raw: Any) -> None:
    try:
        specs = parse_assertions(raw)
    except AssertionSpecError as exc:
        _fails_clearly(exc)
        return
    for spec in specs:  # what parsed can also be checked and shown
        spec.label()
        if spec.column is None and spec.kind != "llm_judge":
            check(spec, Observation('{"a": 1}', latency_ms=1.0, tokens_used=1), {})


@given(text=st.one_of(st.text(max_size=60), ASSERTIONS.map(yaml.safe_dump)))
def test_any_assertions_box_text_parses_or_says_what_is_wrong(text: str) -> None:
    try:
        parse_assertions_yaml(text)
    except AssertionSpecError as exc:
        _fails_clearly(exc)


@given(
    raw=st.lists(ASSERTION, max_size=3),
    rows=st.lists(st.dictionaries(st.sampled_from(["value", "x"]), JSONISH), max_size=4),
)
def test_assertions_over_any_dataset_values_check_or_say_what_is_wrong(
    raw: list[dict[str, Any]], rows: list[dict[str, Any]]
) -> None:
    try:
        specs = parse_assertions([{**a, "column": "value"} for a in raw])
        check_dataset_values(specs, Dataset(("value", "x"), tuple(rows)))
    except AssertionSpecError as exc:
        _fails_clearly(exc)


@given(
    data=st.one_of(
        st.binary(max_size=200),
        st.text(max_size=200),
        st.lists(st.lists(st.text(max_size=6), max_size=4), max_size=5).map(
            lambda rows: "\n".join(",".join(r) for r in rows)
        ),
        st.lists(JSONISH, max_size=4).map(lambda v: "\n".join(yaml.safe_dump(x) for x in v)),
    ),
    fmt=st.sampled_from(["csv", "jsonl", "auto"]),
)
def test_any_dataset_parses_or_says_what_is_wrong(data: str | bytes, fmt: Any) -> None:
    try:
        dataset = parse_dataset(data, fmt)
    except DatasetError as exc:
        _fails_clearly(exc)
        return
    assert dataset.rows and all(set(row) <= set(dataset.columns) for row in dataset.rows)


SUITE = st.fixed_dictionaries(
    {
        "template": st.one_of(
            JSONISH,
            st.fixed_dictionaries(
                {"user": st.text(max_size=20)}, optional={"system": JSONISH, "name": JSONISH}
            ),
        ),
        "models": st.one_of(JSONISH, st.lists(st.sampled_from(["gpt-5", "x"]), max_size=2)),
        "dataset": st.one_of(
            JSONISH,
            st.just("countries.csv"),
            st.just("missing.csv"),
            st.just("../countries.csv"),
            st.fixed_dictionaries({"rows": st.lists(JSONISH, max_size=3)}),
        ),
    },
    optional={
        key: st.one_of(JSONISH, ASSERTIONS)
        for key in [*sorted(SUITE_KEYS - {"template", "models", "dataset"}), "extra", 0]
    },
)


@given(raw=SUITE)
def test_any_suite_mapping_loads_or_says_what_is_wrong(folder: Path, raw: dict[str, Any]) -> None:
    try:
        parse_suite(raw, base_dir=folder)
    except InvalidRequestError as exc:
        _fails_clearly(exc)


@given(content=st.one_of(st.binary(max_size=120), SUITE.map(yaml.safe_dump).map(str.encode)))
def test_any_suite_file_loads_or_says_what_is_wrong(folder: Path, content: bytes) -> None:
    path = folder / "suite.yaml"
    path.write_bytes(content)
    try:
        load_suite(path)
    except SuiteError as exc:
        _fails_clearly(exc)


PF_ASSERT = st.one_of(
    JSONISH,
    st.fixed_dictionaries(
        {"type": st.one_of(st.sampled_from(sorted(PF_ASSERT_TYPES)), JSONISH)},
        optional={"value": JSONISH, "threshold": JSONISH, "weight": JSONISH, "metric": JSONISH},
    ),
)
PF_TEST = st.one_of(
    JSONISH,
    st.fixed_dictionaries(
        {},
        optional={
            "vars": st.one_of(JSONISH, st.dictionaries(st.text(max_size=3), JSONISH, max_size=3)),
            "assert": st.one_of(JSONISH, st.lists(PF_ASSERT, max_size=3)),
            "threshold": JSONISH,
            "options": JSONISH,
            "description": JSONISH,
        },
    ),
)
PROMPTFOO = st.fixed_dictionaries(
    {
        "prompts": st.one_of(
            JSONISH, st.lists(st.one_of(st.text(max_size=20), JSONISH), max_size=2)
        ),
        "providers": st.one_of(
            JSONISH,
            st.lists(st.sampled_from(["elumenta:gpt-5", "openai:x", "foo:bar"]), max_size=2),
        ),
    },
    optional={"tests": st.one_of(JSONISH, st.lists(PF_TEST, max_size=3)), "defaultTest": PF_TEST},
)


@given(raw=PROMPTFOO)
def test_any_promptfoo_config_loads_or_says_what_is_wrong(
    folder: Path, raw: dict[str, Any]
) -> None:
    try:
        parse_promptfoo(raw, base_dir=folder)
    except InvalidRequestError as exc:
        _fails_clearly(exc)
