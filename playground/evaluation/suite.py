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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml

from playground.config import ProviderName
from playground.errors import InvalidRequestError
from playground.evaluation.assertions import (
    AssertionSpec,
    check_dataset_values,
    parse_assertions,
)
from playground.evaluation.datasets import Dataset, DatasetFormat, parse_dataset
from playground.evaluation.templates import PromptTemplate, variables
from playground.providers.base import MAX_TEMPERATURE, GenerationParams

SUITE_KEYS = frozenset(
    {
        "title",
        "template",
        "dataset",
        "mapping",
        "models",
        "provider",
        "assertions",
        "judge",
        "params",
        "concurrency",
        "budget_tokens",
    }
)


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
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
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


def parse_suite(raw: dict[str, Any], *, base_dir: Path, default_title: str = "suite") -> Suite:
    """Build a :class:`Suite` from decoded YAML (paths relative to ``base_dir``)."""
    unknown = sorted(str(key) for key in set(raw) - SUITE_KEYS)
    if unknown:
        raise SuiteError(f"Unknown suite keys: {', '.join(unknown)}.")
    template_raw = raw.get("template")
    if not isinstance(template_raw, dict) or not isinstance(template_raw.get("user"), str):
        raise SuiteError("'template' needs at least a 'user' prompt (and optionally 'system').")
    template = PromptTemplate(str(template_raw.get("system", "")), template_raw["user"])
    variables(template)  # a syntax error is a suite error, before anything runs
    models = raw.get("models")
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise SuiteError("'models' must be a non-empty list of model slugs.")
    assertions = parse_assertions(raw.get("assertions"))
    judge = raw.get("judge")
    if any(a.kind == "llm_judge" for a in assertions) and not isinstance(judge, str):
        raise SuiteError("An llm_judge assertion needs 'judge: <model slug>' in the suite.")
    dataset_name, dataset = _dataset(raw.get("dataset"), base_dir)
    check_dataset_values(assertions, dataset)
    params = raw.get("params", {}) or {}
    if not isinstance(params, dict) or set(params) - {"temperature", "max_tokens"}:
        raise SuiteError("'params' may only set temperature and max_tokens.")
    _check_params(params)
    mapping = raw.get("mapping") or {}
    if not isinstance(mapping, dict):
        raise SuiteError("'mapping' must map template variables to dataset columns.")
    provider = raw.get("provider")
    if provider is not None and provider not in PROVIDERS:
        raise SuiteError(f"'provider' must be one of {', '.join(PROVIDERS)}, not {provider!r}.")
    return Suite(
        title=str(raw.get("title") or default_title),
        template_name=str(template_raw.get("name") or raw.get("title") or default_title),
        template=template,
        dataset_name=dataset_name,
        dataset=dataset,
        models=tuple(models),
        provider=provider,
        mapping={str(k): str(v) for k, v in mapping.items()},
        assertions=assertions,
        judge=judge if isinstance(judge, str) else None,
        params=GenerationParams(**params),
        concurrency=_positive_int(raw.get("concurrency", 8), "concurrency"),
        budget_tokens=None
        if raw.get("budget_tokens") is None
        else _positive_int(raw["budget_tokens"], "budget_tokens"),
    )


def _check_params(params: dict[str, Any]) -> None:
    temperature = params.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= MAX_TEMPERATURE
    ):
        raise SuiteError(f"'params.temperature' must be a number from 0 to 2, not {temperature!r}.")
    if params.get("max_tokens") is not None:
        _positive_int(params["max_tokens"], "params.max_tokens")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SuiteError(f"'{name}' must be a positive whole number, not {value!r}.")
    return value


def _dataset(value: Any, base_dir: Path) -> tuple[str, Dataset]:
    if isinstance(value, str):
        path = base_dir / value
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise SuiteError(f"Cannot read the dataset {path}: {exc.strerror or exc}.") from exc
        fmt: DatasetFormat = "jsonl" if path.suffix in (".jsonl", ".ndjson") else "csv"
        return path.name, parse_dataset(data, fmt)
    if isinstance(value, dict) and isinstance(value.get("rows"), list):
        # YAML reads 2024-01-01 as a date: such values become their text.
        lines = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in value["rows"])
        return str(value.get("name", "inline")), parse_dataset(lines, "jsonl")
    raise SuiteError("'dataset' must be a file path or {rows: [{column: value, ...}, ...]}.")
