"""Reading a promptfoo config (``promptfooconfig.yaml``) into our prompts, models and tests.

Everything is checked before anything is sent: a key, provider, prompt construct or
assertion type we do not run is an error naming it and its line in the file, never
skipped. What is supported is listed in README.md ("promptfoo configs").
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from playground.errors import InvalidRequestError
from playground.evaluation.yaml_text import safe_load
from playground.providers.base import MAX_TEMPERATURE, GenerationParams
from playground.templates import PromptTemplate, variables

CONFIG_KEYS = frozenset(
    {"description", "prompts", "providers", "tests", "defaultTest", "outputPath", "env"}
)
TEST_KEYS = frozenset({"description", "vars", "assert", "threshold", "options", "metadata"})
ASSERT_KEYS = frozenset({"type", "value", "threshold", "weight", "metric", "provider", "assert"})
PROVIDER_CONFIG_KEYS = frozenset({"apiBaseUrl", "apiKey", "temperature", "max_tokens"})
OPTIONS_KEYS = frozenset({"provider"})
ASSERT_TYPES = frozenset(
    {
        "equals",
        "contains",
        "icontains",
        "contains-any",
        "contains-all",
        "icontains-any",
        "icontains-all",
        "starts-with",
        "regex",
        "is-json",
        "contains-json",
        "levenshtein",
        "latency",
        "cost",
        "llm-rubric",
    }
)
ELUMENTA_PREFIX = "elumenta:"
OPENAI_PREFIXES = ("openai:chat:", "openai:")
# Nunjucks filters with no Jinja2 twin of the same meaning: refused rather than mistranslated.
_NUNJUCKS_ONLY = ("| dump", "|dump", "| safe", "|safe", "| nl2br", "|nl2br")


class PromptfooError(InvalidRequestError):
    """The config cannot be run as written; the message names the item and its line."""


class _Marked(dict[Any, Any]):
    """A mapping read from YAML that remembers the line it started on (1-based)."""

    line: int = 0


class _MarkedList(list[Any]):
    line: int = 0


class _Loader(yaml.SafeLoader):
    """A safe loader whose mappings and lists remember their line."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> _Marked:
    value = _Marked(loader.construct_mapping(node, deep=True))
    value.line = node.start_mark.line + 1
    return value


def _sequence(loader: _Loader, node: yaml.SequenceNode) -> _MarkedList:
    value = _MarkedList(loader.construct_sequence(node, deep=True))
    value.line = node.start_mark.line + 1
    return value


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _sequence)


def _at(item: Any, where: str) -> str:
    line = getattr(item, "line", 0)
    return f"{where} (line {line})" if line else where


@dataclass(frozen=True)
class PfProvider:
    """One model column: promptfoo's provider id and label, and where we send it."""

    id: str
    label: str
    provider: str
    model: str
    params: GenerationParams = field(default_factory=GenerationParams)
    base_url: str | None = None
    api_key: str | None = None


@dataclass(frozen=True)
class PfAssert:
    """One assertion (``kind`` without its ``not-``); an ``assert-set`` has ``children``."""

    kind: str
    negate: bool = False
    value: Any = None
    threshold: float | None = None
    weight: float = 1.0
    metric: str | None = None
    children: tuple[PfAssert, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PfTest:
    """One row of the matrix: its variables, assertions, and pass threshold."""

    vars: Mapping[str, Any]
    asserts: tuple[PfAssert, ...]
    description: str | None = None
    threshold: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PfPrompt:
    """One prompt version: promptfoo's raw text and label, and our template."""

    raw: str
    label: str
    template: PromptTemplate


@dataclass(frozen=True)
class PromptfooConfig:
    """A checked promptfoo config, ready to plan as one batch."""

    description: str
    prompts: tuple[PfPrompt, ...]
    providers: tuple[PfProvider, ...]
    tests: tuple[PfTest, ...]
    judge: PfProvider | None
    raw: Mapping[str, Any]

    def uses_judge(self) -> bool:
        """Whether any test has an ``llm-rubric`` assertion."""
        return any(a.kind == "llm-rubric" for t in self.tests for a in _flat(t.asserts))


def _flat(asserts: Sequence[PfAssert]) -> Iterator[PfAssert]:
    for item in asserts:
        yield item
        yield from _flat(item.children)


def is_promptfoo(path: Path) -> bool:
    """Whether the YAML file at ``path`` is a promptfoo config rather than one of our suites
    (named ``promptfooconfig*``, or a mapping with ``prompts`` or ``providers``)."""
    if path.name.startswith("promptfooconfig"):
        return True
    try:
        raw = safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False  # the suite loader says what is wrong with it
    return isinstance(raw, dict) and ("prompts" in raw or "providers" in raw)


def read_yaml(path: Path) -> Any:
    """The YAML at ``path`` with line marks; raises :class:`PromptfooError` when unreadable."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader)
    except OSError as exc:
        raise PromptfooError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except UnicodeDecodeError as exc:
        raise PromptfooError(f"{path} is not UTF-8 text (byte at offset {exc.start}).") from exc
    except yaml.YAMLError as exc:
        raise PromptfooError(f"{path} is not valid YAML: {exc}") from exc


def load_promptfoo(path: Path) -> PromptfooConfig:
    """Read and check the promptfoo config at ``path`` (files relative to its folder)."""
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise PromptfooError(f"{path}: a promptfoo config is a YAML mapping.")
    return parse_promptfoo(raw, base_dir=path.parent, default_title=path.stem)


def loads_promptfoo(text: str | bytes, *, name: str, base_dir: Path) -> PromptfooConfig:
    """Check an uploaded config (``file://`` references resolve under ``base_dir``)."""
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 (a safe loader)
    except yaml.YAMLError as exc:
        raise PromptfooError(f"{name} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise PromptfooError(f"{name}: a promptfoo config is a YAML mapping.")
    return parse_promptfoo(raw, base_dir=base_dir, default_title=Path(name).stem)


def parse_promptfoo(
    raw: Mapping[str, Any], *, base_dir: Path, default_title: str = "promptfoo"
) -> PromptfooConfig:
    """Check a decoded config; raises :class:`PromptfooError` naming what cannot run."""
    _known_keys(raw, CONFIG_KEYS, "the config")
    prompts = _prompts(raw.get("prompts"), base_dir)
    providers = _providers(raw.get("providers"))
    default = raw.get("defaultTest") or _Marked()
    if not isinstance(default, dict):
        raise PromptfooError(_at(raw, "'defaultTest' must be a mapping") + ".")
    _known_keys(default, TEST_KEYS, "defaultTest")
    tests = tuple(
        expanded
        for number, test in enumerate(_test_items(raw.get("tests"), base_dir), start=1)
        for expanded in _tests(test, default, base_dir, number)
    )
    if not tests:
        tests = tuple(_tests(_Marked(), default, base_dir, 1))
    judge = _judge(default, tests)
    config = PromptfooConfig(
        description=str(raw.get("description") or default_title),
        prompts=prompts,
        providers=providers,
        tests=tests,
        judge=judge,
        raw=raw,
    )
    if config.uses_judge() and judge is None:
        raise PromptfooError(
            "llm-rubric needs a grading model: set defaultTest.options.provider "
            "(e.g. elumenta:gpt-5-nano or openai:chat:<model>)."
        )
    return config


def _known_keys(item: Mapping[str, Any], known: frozenset[str], where: str) -> None:
    unknown = sorted(str(k) for k in item if k not in known)
    if unknown:
        raise PromptfooError(
            _at(item, where)
            + f": unsupported key(s) {', '.join(unknown)}; supported: {', '.join(sorted(known))}."
        )


def _file(reference: str, base_dir: Path, where: str) -> Path:
    path = base_dir / reference.removeprefix("file://")
    if any(ch in path.name for ch in "*?["):
        raise PromptfooError(f"{where}: file globs ({reference}) are not supported.")
    if not path.is_file():
        raise PromptfooError(f"{where}: cannot read {reference}: no such file.")
    return path


def _prompts(value: Any, base_dir: Path) -> tuple[PfPrompt, ...]:
    items = value if isinstance(value, list) else [value]
    if value is None or not items:
        raise PromptfooError("'prompts' is required: a prompt text, or a list of them.")
    prompts: list[PfPrompt] = []
    for number, item in enumerate(items, start=1):
        where = _at(item if isinstance(item, dict) else value, f"prompts[{number - 1}]")
        label = None
        if isinstance(item, dict):
            _known_keys(item, frozenset({"raw", "id", "label"}), f"prompts[{number - 1}]")
            label = item.get("label")
            item = item.get("raw") or item.get("id")
        if not isinstance(item, str):
            raise PromptfooError(f"{where}: a prompt is text or file://path, not {item!r:.60}.")
        if item.startswith("file://"):
            prompts += _file_prompts(item, base_dir, where, label)
        else:
            prompts.append(_prompt(item, label or item, PromptTemplate("", item), where))
    return tuple(prompts)


def _file_prompts(reference: str, base_dir: Path, where: str, label: str | None) -> list[PfPrompt]:
    path = _file(reference, base_dir, where)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            messages = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PromptfooError(f"{where}: {reference} is not valid JSON: {exc}.") from exc
        return [_prompt(text, label or reference, _chat(messages, reference, where), where)]
    parts = [p.strip() for p in text.split("\n---\n")] if "\n---\n" in text else [text]
    return [
        _prompt(part, label or f"{reference}: {part[:40]}", PromptTemplate("", part), where)
        for part in parts
    ]


def _chat(messages: Any, reference: str, where: str) -> PromptTemplate:
    roles = [m.get("role") for m in messages] if isinstance(messages, list) else []
    valid = all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages or [])
    if not valid or roles not in (["user"], ["system", "user"]):
        raise PromptfooError(
            f"{where}: {reference}: a chat prompt here is [system?, user] messages with "
            "text content; multi-turn chats are not supported yet."
        )
    system = messages[0]["content"] if roles[0] == "system" else ""
    return PromptTemplate(system, messages[-1]["content"])


def _prompt(raw: str, label: str, template: PromptTemplate, where: str) -> PfPrompt:
    for construct in _NUNJUCKS_ONLY:
        if construct in template.system or construct in template.user:
            raise PromptfooError(
                f"{where}: the Nunjucks filter '{construct.strip('| ')}' has no equivalent "
                "in our Jinja2 templates; rewrite it (e.g. '| tojson' for dump)."
            )
    try:
        variables(template)
    except InvalidRequestError as exc:
        raise PromptfooError(f"{where}: {exc}") from exc
    return PfPrompt(raw, label, template)


def _providers(value: Any) -> tuple[PfProvider, ...]:
    items = value if isinstance(value, list) else [value]
    if value is None or not items:
        raise PromptfooError("'providers' is required: e.g. [elumenta:gpt-5-nano].")
    providers = [_provider(item, f"providers[{n}]", value) for n, item in enumerate(items)]
    seen: set[tuple[str, str]] = set()
    for p in providers:
        if (p.provider, p.model) in seen:
            raise PromptfooError(f"providers: {p.id} is listed twice.")
        seen.add((p.provider, p.model))
    if len({p.params for p in providers}) > 1:
        raise PromptfooError(
            "providers: every provider must set the same temperature and max_tokens here "
            "(one batch has one set of generation parameters)."
        )
    if len({(p.base_url, p.api_key) for p in providers if p.provider == "openai_compatible"}) > 1:
        raise PromptfooError(
            "providers: every openai provider must use the same apiBaseUrl and apiKey."
        )
    return tuple(providers)


def _provider(item: Any, path: str, parent: Any = None) -> PfProvider:
    where = _at(item if isinstance(item, dict) else parent, path)
    config: Mapping[str, Any] = {}
    label = None
    if isinstance(item, dict):
        _known_keys(item, frozenset({"id", "label", "config"}), path)
        config = item.get("config") or {}
        if not isinstance(config, dict):
            raise PromptfooError(f"{where}: 'config' must be a mapping.")
        _known_keys(config, PROVIDER_CONFIG_KEYS, f"{path}.config")
        label = item.get("label")
        item = item.get("id")
    if not isinstance(item, str):
        raise PromptfooError(f"{where}: a provider is an id like elumenta:gpt-5-nano.")
    if item.startswith(ELUMENTA_PREFIX):
        name, model = "elumenta", item.removeprefix(ELUMENTA_PREFIX)
        if "apiBaseUrl" in config or "apiKey" in config:
            raise PromptfooError(
                f"{where}: elumenta providers use ELUMENTA_API_KEY / ELUMENTA_BASE_URL, "
                "not apiBaseUrl/apiKey."
            )
    elif item.startswith("openai:") and not item.startswith(
        ("openai:completion:", "openai:embedding", "openai:assistant", "openai:responses")
    ):
        name = "openai_compatible"
        model = (
            item.removeprefix("openai:chat:")
            if item.startswith("openai:chat:")
            else (item.removeprefix("openai:"))
        )
    else:
        raise PromptfooError(
            f"{where}: provider {item!r} is not supported; use elumenta:<model slug>, "
            "openai:chat:<model> or openai:<model>."
        )
    if not model:
        raise PromptfooError(f"{where}: provider {item!r} names no model.")
    params = GenerationParams(
        temperature=_number(
            config.get("temperature"), f"{where}.config.temperature", 0, MAX_TEMPERATURE
        ),
        max_tokens=_whole(config.get("max_tokens"), f"{where}.config.max_tokens"),
    )
    key = config.get("apiKey")
    return PfProvider(
        id=item,
        label=str(label or item),
        provider=name,
        model=model,
        params=params,
        base_url=config.get("apiBaseUrl"),
        api_key=key,
    )


def _number(value: Any, where: str, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise PromptfooError(f"{where} must be a number from {low:g} to {high:g}, not {value!r}.")
    return float(value)


def _whole(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PromptfooError(f"{where} must be a positive whole number, not {value!r}.")
    return value


def _test_items(value: Any, base_dir: Path) -> list[Any]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    tests: list[Any] = []
    for item in items:
        if isinstance(item, str) and item.startswith("file://"):
            tests += _test_file(item, base_dir)
        elif isinstance(item, dict):
            tests.append(item)
        else:
            raise PromptfooError(
                _at(value, "tests") + f": a test is a mapping or file://path, not {item!r:.60}."
            )
    return tests


def _test_file(reference: str, base_dir: Path) -> list[Any]:
    path = _file(reference, base_dir, "tests")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".csv":
        return [_csv_test(row, n) for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2)]
    if path.suffix in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise PromptfooError(f"{reference} line {number}: not JSON: {exc}.") from exc
        return rows
    if path.suffix in (".yaml", ".yml"):
        loaded = yaml.load(text, Loader=_Loader)  # noqa: S506 (safe loader)
        return loaded if isinstance(loaded, list) else [loaded]
    raise PromptfooError(f"tests: {reference}: test files are .csv, .jsonl or .yaml.")


def _csv_test(row: Mapping[str, str], line: int) -> _Marked:
    test = _Marked()
    test.line = line
    asserts = _MarkedList()
    asserts.line = line
    variables_: dict[str, str] = {}
    for column, cell in row.items():
        if column.startswith("__expected"):
            if cell:
                asserts.append(_expected(cell, line))
        elif column == "__description":
            test["description"] = cell
        elif column == "__threshold":
            test["threshold"] = float(cell) if cell else None
        elif column.startswith("__"):
            raise PromptfooError(f"tests CSV line {line}: column {column} is not supported.")
        else:
            variables_[column] = cell
    test["vars"] = variables_
    test["assert"] = asserts
    return test


def _expected(cell: str, line: int) -> _Marked:
    """promptfoo's ``__expected`` cell: ``type: value``, ``is-json``, or a plain value to equal."""
    kind, sep, value = cell.partition(":")
    kind = kind.strip()
    base = kind.removeprefix("not-")
    if sep and (
        base in ASSERT_TYPES
        or base in _UNSUPPORTED_HINTS
        or base in ("grade", "fn", "python", "javascript")
    ):
        item = _Marked(type="llm-rubric" if kind == "grade" else kind, value=value.strip())
    elif cell.strip() in ("is-json", "contains-json", "not-is-json", "not-contains-json"):
        item = _Marked(type=cell.strip())
    else:
        item = _Marked(type="equals", value=cell)
    item.line = line
    return item


def _tests(test: Any, default: Mapping[str, Any], base_dir: Path, number: int) -> Iterator[PfTest]:
    path = f"tests[{number - 1}]"
    where = _at(test, path)
    _known_keys(test, TEST_KEYS, path)
    for part, name in ((default, "defaultTest"), (test, where)):
        for key, kind in (("vars", dict), ("assert", list), ("options", dict)):
            if part.get(key) is not None and not isinstance(part[key], kind):
                what = "a mapping" if kind is dict else "a list"
                raise PromptfooError(f"{name}: '{key}' must be {what}.")
    merged_vars = {**(default.get("vars") or {}), **(test.get("vars") or {})}
    asserts = [*(default.get("assert") or []), *(test.get("assert") or [])]
    parsed = tuple(_assert(a, f"{path}.assert[{i}]") for i, a in enumerate(asserts))
    threshold = test.get("threshold", default.get("threshold"))
    if threshold is not None:
        threshold = _number(threshold, f"{where}.threshold", 0, 1)
    for options in (default.get("options"), test.get("options")):
        if options is not None:
            _known_keys(options, OPTIONS_KEYS, f"{path}.options")
    values = {k: _var(v, base_dir, f"{where}: vars.{k}") for k, v in merged_vars.items()}
    lists = [k for k, v in values.items() if isinstance(v, list)]
    for combo in itertools.product(*(values[k] for k in lists)):
        yield PfTest(
            vars={**values, **dict(zip(lists, combo, strict=True))},
            asserts=parsed,
            description=test.get("description"),
            threshold=threshold,
            raw=test,
        )


def _var(value: Any, base_dir: Path, where: str) -> Any:
    if isinstance(value, list):
        return [_var(v, base_dir, where) for v in value]
    if isinstance(value, str) and value.startswith("file://"):
        path = _file(value, base_dir, where)
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            return json.loads(text)
        if path.suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
        if path.suffix in (".js", ".py", ".mjs", ".ts"):
            raise PromptfooError(f"{where}: {value}: code files as variables are not supported.")
        return text
    return value


_UNSUPPORTED_HINTS = {
    "javascript": "code assertions are not run here",
    "python": "code assertions are not run here",
    "similar": "embedding similarity is not supported",
    "webhook": "webhooks are not called",
}


def _assert(item: Any, path: str) -> PfAssert:
    where = _at(item, path)
    if not isinstance(item, dict):
        raise PromptfooError(
            f"{where}: an assertion is a mapping like {{type: contains, value: x}}."
        )
    _known_keys(item, ASSERT_KEYS, path)
    kind = item.get("type")
    if kind == "assert-set":
        if item.get("metric") is not None and not isinstance(item["metric"], str):
            raise PromptfooError(f"{where}: 'metric' is a name, not {item['metric']!r:.60}.")
        children = item.get("assert")
        if not isinstance(children, list) or not children:
            raise PromptfooError(f"{where}: an assert-set needs a list under 'assert'.")
        return PfAssert(
            kind="assert-set",
            threshold=_number(item.get("threshold"), f"{where}.threshold", 0, 1),
            weight=_weight(item.get("weight", 1), where),
            metric=item.get("metric"),
            children=tuple(_assert(c, f"{path}.assert[{i}]") for i, c in enumerate(children)),
            raw=item,
        )
    if not isinstance(kind, str):
        raise PromptfooError(f"{where}: an assertion needs a 'type'.")
    if item.get("metric") is not None and not isinstance(item["metric"], str):
        raise PromptfooError(f"{where}: 'metric' is a name, not {item['metric']!r:.60}.")
    negate = kind.startswith("not-")
    base = kind.removeprefix("not-")
    if base not in ASSERT_TYPES:
        hint = _UNSUPPORTED_HINTS.get(base, "it is not one we run")
        raise PromptfooError(
            f"{where}: assertion type {kind!r} is not supported ({hint}); supported: "
            f"{', '.join(sorted(ASSERT_TYPES))}, their not- forms, and assert-set."
        )
    if "provider" in item:
        raise PromptfooError(
            f"{where}: a per-assertion 'provider' is not supported; set "
            "defaultTest.options.provider."
        )
    value = item.get("value")
    if base in ("contains-any", "contains-all", "icontains-any", "icontains-all"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",")]
        if not isinstance(value, list) or not value:
            raise PromptfooError(f"{where}: {kind} needs a list of values.")
    elif base not in ("is-json", "contains-json", "latency", "cost") and value is None:
        raise PromptfooError(f"{where}: {kind} needs a 'value'.")
    if base in ("is-json", "contains-json") and value is not None:
        value = _schema_value(value, where)
    if base in ("latency", "cost") and item.get("threshold") is None:
        raise PromptfooError(f"{where}: {kind} needs a 'threshold'.")
    threshold = item.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float)
    ):
        raise PromptfooError(f"{where}: 'threshold' must be a number, not {threshold!r}.")
    return PfAssert(
        kind=base,
        negate=negate,
        value=value,
        threshold=None if threshold is None else float(threshold),
        weight=_weight(item.get("weight", 1), where),
        metric=item.get("metric"),
        raw=item,
    )


def _schema_value(value: Any, where: str) -> Any:
    from playground.evaluation.schemas import schema_problem

    schema = value
    if isinstance(value, str):
        try:
            schema = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise PromptfooError(f"{where}: the schema is not JSON or YAML: {exc}") from exc
    problem = schema_problem(schema)
    if problem:
        raise PromptfooError(f"{where}: {problem}.")
    return schema


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PromptfooError(f"{where}: 'weight' must be a number of 0 or more, not {value!r}.")
    return float(value)


def _judge(default: Mapping[str, Any], tests: Sequence[PfTest]) -> PfProvider | None:
    ids = {
        options.get("provider")
        for options in [default.get("options") or {}, *(t.raw.get("options") or {} for t in tests)]
        if options.get("provider") is not None
    }
    if len(ids) > 1:
        raise PromptfooError(
            "options.provider: one grading model per run; found " + ", ".join(map(str, ids))
        )
    if not ids:
        return None
    return _provider(ids.pop(), "defaultTest.options.provider")
