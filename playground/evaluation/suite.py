"""Eval suites for CI: one YAML file naming a template, a dataset, models and assertions.

```yaml
title: capitals
template: {name: capitals, system: "Be terse.", user: "Capital of {{ country }}?"}
dataset: countries.csv          # a path (relative to the suite), or {rows: [{...}, ...]}
models: [gpt-5-nano, claude-haiku-4.5]
assertions:
  - {type: contains, column: capital}
  - {type: llm_judge, value: "Names one city only."}
judge: claude-haiku-4.5         # the model grading llm_judge assertions
params: {temperature: 0}
concurrency: 8
budget_tokens: 200
```
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    PositiveInt,
    Tag,
    ValidationError,
    model_validator,
)

from playground.config import ProviderName
from playground.datasets import Dataset, DatasetFormat, parse_dataset
from playground.errors import InvalidRequestError
from playground.evaluation.assertions import (
    AssertionSpec,
    AssertionSpecError,
    check_dataset_values,
    parse_assertion,
)
from playground.evaluation.yaml_text import safe_load
from playground.providers.base import MAX_TEMPERATURE, GenerationParams
from playground.templates import PromptTemplate, variables

PROVIDERS: tuple[str, ...] = get_args(ProviderName)


class SuiteError(InvalidRequestError):
    """The suite file is unreadable or describes an impossible run (exit code 2)."""


@dataclass(frozen=True)
class Suite:
    """A parsed, checked eval suite."""

    title: str
    template_name: str
    template: PromptTemplate
    dataset_name: str
    dataset: Dataset
    models: tuple[str, ...]
    provider: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    assertions: tuple[AssertionSpec, ...] = ()
    judge: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    concurrency: int = 8
    budget_tokens: int | None = None


def load_suite(path: Path) -> Suite:
    """Read and check the suite at ``path``; raises :class:`SuiteError` saying what is wrong."""
    try:
        raw = safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"Cannot read the suite {path}: {exc.strerror or exc}.") from exc
    except UnicodeDecodeError as exc:
        raise SuiteError(f"{path} is not UTF-8 text (byte at offset {exc.start}).") from exc
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: the suite must be a YAML mapping.")
    try:
        return parse_suite(raw, base_dir=path.parent, default_title=path.stem)
    except SuiteError:
        raise
    except InvalidRequestError as exc:
        raise SuiteError(f"{path}: {exc}") from exc


class _Strict(BaseModel):
    """A part of the suite file: unknown keys are refused, and no value is coerced ('8' is
    no number)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TemplateFields(_Strict):
    user: str
    system: str = ""
    name: str | None = None

    @model_validator(mode="after")
    def _parses(self) -> TemplateFields:
        try:
            variables(self.prompt())  # a syntax error is a suite error, before anything runs
        except InvalidRequestError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def prompt(self) -> PromptTemplate:
        """The template these fields describe."""
        return PromptTemplate(self.system, self.user)


class InlineRows(_Strict):
    rows: list[Any]
    name: str | None = None


class ParamsFields(_Strict):
    temperature: float | None = Field(default=None, ge=0, le=MAX_TEMPERATURE)
    max_tokens: PositiveInt | None = None


def _assertion(value: Any) -> AssertionSpec:
    try:
        return parse_assertion(value)
    except AssertionSpecError as exc:
        raise ValueError(str(exc)) from exc


def _dataset_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "path"
    return "rows" if isinstance(value, dict) else None


class SuiteFile(_Strict):
    """The schema of a suite file, stated once; see the module docstring for an example."""

    title: str | None = None
    template: TemplateFields
    dataset: Annotated[
        Annotated[str, Tag("path")] | Annotated[InlineRows, Tag("rows")],
        Discriminator(
            _dataset_kind,
            custom_error_type="dataset",
            custom_error_message="a file path or {rows: [{column: value, ...}, ...]}",
        ),
    ]
    mapping: dict[str, str] | None = None
    models: list[str] = Field(min_length=1)
    provider: ProviderName | None = None
    assertions: list[Annotated[AssertionSpec, PlainValidator(_assertion)]] | None = None
    judge: str | None = None
    params: ParamsFields | None = None
    concurrency: PositiveInt = 8
    budget_tokens: PositiveInt | None = None

    @model_validator(mode="after")
    def _judge_named(self) -> SuiteFile:
        if self.judge is None and any(a.kind == "llm_judge" for a in self.assertions or ()):
            raise ValueError("an llm_judge assertion needs 'judge: <model slug>' in the suite")
        return self


SUITE_KEYS = frozenset(SuiteFile.model_fields)
_HINTS = {
    "template": "'template' needs at least a 'user' prompt (and optionally 'system')",
    "models": "'models' is a non-empty list of model slugs",
    "mapping": "'mapping' maps template variables to dataset columns",
    "params": "'params' may only set temperature (0 to 2) and max_tokens",
    "assertions": "'assertions' is a list, one per line, like '- {type: contains, value: Paris}'",
}


def _words(match: re.Match[str]) -> str:
    return "should" if match.group(0) == "Input should" else ""


_NO_INPUT = frozenset({"dataset", "too_short", "too_long"})


def schema_errors(error: ValidationError, hints: Mapping[str, str] = _HINTS) -> str:
    """One line per problem, each naming its path in the file, e.g.
    ``assertions[2].value: ...``; a field's hint follows its first problem."""
    lines, hinted = [], set()
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        if loc[:1] == ["dataset"] and len(loc) > 1:
            del loc[1]  # the variant's tag ("path" or "rows") is no key of the file
        path = "".join(f"[{p}]" if isinstance(p, int) and i else f".{p}" for i, p in enumerate(loc))
        kind = item["type"]
        if kind in ("extra_forbidden", "invalid_key"):
            message = "unknown key"
        elif kind == "missing":
            message = "required"
        elif kind == "value_error":
            message = str((item.get("ctx") or {}).get("error", item["msg"]))
        else:
            message = re.sub(
                r"^Input should|(?<=dictionary) or instance of \w+", _words, item["msg"]
            )
            if kind not in _NO_INPUT:
                message += f", not {item['input']!r:.80}"
        top = str(loc[0]) if loc else ""
        if top in hints and top not in hinted and kind != "value_error":
            hinted.add(top)
            message += f" ({hints[top]})"
        message = message.rstrip(".")
        lines.append(f"{path[1:]}: {message}" if path else message[:1].upper() + message[1:])
    return "; ".join(lines) + "."


def parse_suite(raw: dict[str, Any], *, base_dir: Path, default_title: str = "suite") -> Suite:
    """Build a :class:`Suite` from decoded YAML (paths relative to ``base_dir``); raises
    :class:`SuiteError` naming the path of every problem in the file."""
    try:
        spec = SuiteFile.model_validate(raw)
    except ValidationError as exc:
        raise SuiteError(schema_errors(exc)) from None
    template = spec.template.prompt()
    dataset_name, dataset = _dataset(spec.dataset, base_dir)
    assertions = tuple(spec.assertions or ())
    check_dataset_values(assertions, dataset)
    title = spec.title or default_title
    return Suite(
        title=title,
        template_name=spec.template.name or title,
        template=template,
        dataset_name=dataset_name,
        dataset=dataset,
        models=tuple(spec.models),
        provider=spec.provider,
        mapping=dict(spec.mapping or {}),
        assertions=assertions,
        judge=spec.judge,
        params=GenerationParams(**(spec.params or ParamsFields()).model_dump(exclude_none=True)),
        concurrency=spec.concurrency,
        budget_tokens=spec.budget_tokens,
    )


def _dataset(value: str | InlineRows, base_dir: Path) -> tuple[str, Dataset]:
    if isinstance(value, str):
        path = base_dir / value
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SuiteError(f"Cannot read the dataset {path}: {exc.strerror or exc}.") from exc
        fmt: DatasetFormat = "jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv"
        return path.name, parse_dataset(data, fmt)
    # YAML reads 2024-01-01 as a date: such values become their text.
    lines = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in value.rows)
    return value.name or "inline", parse_dataset(lines, "jsonl")
