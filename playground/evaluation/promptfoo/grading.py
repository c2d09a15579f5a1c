"""Grading one answer against a promptfoo test's assertions, scored as promptfoo scores it.

Each assertion scores 1 (passed) or 0; a ``not-`` form inverts the verdict. A test's score
is the weighted mean of its assertions' scores (0 when every weight is 0). It passes when
no assertion failed, or, with a ``threshold`` (0 included), when the score reaches it; an
``assert-set`` is scored the same way on its own assertions and counts as one assertion
with its own weight. A ``metric`` is the weighted mean of the scores of its assertions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Levenshtein

from playground.errors import InvalidRequestError
from playground.evaluation.promptfoo.config import PfAssert
from playground.evaluation.schemas import schema_errors
from playground.templates import PromptTemplate, render

DEFAULT_LEVENSHTEIN_THRESHOLD = 5

Judge = Callable[[str], Awaitable[tuple[bool, str, int | None]]]
"""Asks the grading model about a rubric: ``(passed, reason, billing tokens)``."""


@dataclass(frozen=True)
class Answer:
    """What the assertions look at: the output, its latency (ms) and billing tokens."""

    output: str
    latency_ms: float | None
    tokens: int | None
    vars: Mapping[str, Any]


async def grade(
    asserts: tuple[PfAssert, ...], threshold: float | None, answer: Answer, judge: Judge | None
) -> dict[str, Any]:
    """promptfoo's ``gradingResult`` for one answer: pass, score, reason, namedScores,
    tokensUsed (the grading model's billing tokens) and componentResults."""
    if not asserts:
        return {
            "pass": True,
            "score": 1,
            "reason": "No assertions",
            "namedScores": {},
            "tokensUsed": {"total": 0},
            "componentResults": [],
            "assertion": None,
        }
    total = weights = tokens = 0.0
    failed: str | None = None
    named: dict[str, float] = {}
    named_weights: dict[str, float] = {}
    components: list[dict[str, Any]] = []
    for item in asserts:
        if item.kind == "assert-set":
            result = await grade(item.children, item.threshold, answer, judge)
            result["assertion"] = dict(item.raw)
            components += [result, *result.pop("componentResults")]
        else:
            result = await _one(item, answer, judge)
            components.append(result)
        total += result["score"] * item.weight
        weights += item.weight
        tokens += result["tokensUsed"]["total"]
        incoming = {item.metric: (result["score"], 1.0)} if item.metric else {}
        for metric, score in result.get("namedScores", {}).items():
            if metric != item.metric:
                incoming[metric] = (score, result["namedScoreWeights"].get(metric, 1.0))
        for metric, (score, weight) in incoming.items():
            named[metric] = named.get(metric, 0) + score * weight * item.weight
            named_weights[metric] = named_weights.get(metric, 0) + weight * item.weight
        if not result["pass"]:
            failed = result["reason"]
    score = total / weights if weights > 0 else 0
    passed, reason = failed is None, failed or "All assertions passed"
    if threshold is not None:  # a threshold (even 0) overrides the individual verdicts
        passed = score >= threshold
        sign = "≥" if passed else "<"
        reason = f"Aggregate score {score:.2f} {sign} {threshold:g} threshold"
    return {
        "pass": passed,
        "score": score,
        "reason": reason,
        "namedScores": {
            m: v / named_weights[m] if named_weights[m] else 0 for m, v in named.items()
        },
        "namedScoreWeights": named_weights,
        "tokensUsed": {"total": int(tokens)},
        "componentResults": components,
        "assertion": None,
    }


async def _one(item: PfAssert, answer: Answer, judge: Judge | None) -> dict[str, Any]:
    tokens = 0
    if item.kind == "llm-rubric":
        if judge is None:
            raise InvalidRequestError("llm-rubric needs a grading model.")
        passed, reason, cost = await judge(_rendered(item.value, answer.vars))
        tokens = cost or 0
    else:
        passed, reason = _CHECKS[item.kind](item, answer)
    if item.negate:
        passed = not passed
        reason = reason.replace(" to ", " to not ", 1) if " to " in reason else f"not-{reason}"
    return {
        "pass": passed,
        "score": 1.0 if passed else 0.0,
        "reason": "Assertion passed" if passed else reason,
        "tokensUsed": {"total": tokens},
        "assertion": dict(item.raw),
    }


def _rendered(value: Any, values: Mapping[str, Any]) -> Any:
    """An assertion value with ``{{ var }}`` filled from the test's variables."""
    if isinstance(value, str) and "{{" in value:
        return render(PromptTemplate("", value), values).user
    if isinstance(value, list):
        return [_rendered(v, values) for v in value]
    return value


def _text(item: PfAssert, answer: Answer) -> str:
    return str(_rendered(item.value, answer.vars))


def _equals(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    if isinstance(item.value, dict | list):
        try:
            passed = json.loads(answer.output) == item.value
        except json.JSONDecodeError:
            passed = False
        return passed, f"Expected output to equal {json.dumps(item.value)}"
    expected = _text(item, answer)
    return answer.output == expected, f'Expected output "{answer.output}" to equal "{expected}"'


def _contains(fold: bool) -> Callable[[PfAssert, Answer], tuple[bool, str]]:
    def check(item: PfAssert, answer: Answer) -> tuple[bool, str]:
        expected = _text(item, answer)
        output = answer.output
        if fold:
            expected, output = expected.lower(), output.lower()
        return expected in output, f'Expected output to contain "{expected}"'

    return check


def _contains_set(fold: bool, need_all: bool) -> Callable[[PfAssert, Answer], tuple[bool, str]]:
    def check(item: PfAssert, answer: Answer) -> tuple[bool, str]:
        expected = [str(v) for v in _rendered(item.value, answer.vars)]
        output = answer.output.lower() if fold else answer.output
        found = [(v.lower() if fold else v) in output for v in expected]
        passed = all(found) if need_all else any(found)
        which = "all of" if need_all else "one of"
        return passed, f'Expected output to contain {which} "{", ".join(expected)}"'

    return check


def _starts_with(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    expected = _text(item, answer)
    return answer.output.startswith(expected), f'Expected output to start with "{expected}"'


def _regex(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    pattern = _text(item, answer)
    try:
        found = re.search(pattern, answer.output) is not None
    except re.error as exc:
        return False, f"Invalid regex {pattern!r}: {exc}"
    return found, f'Expected output to match regex "{pattern}"'


def _json_candidates(text: str) -> list[Any]:
    """Every JSON object or array embedded in ``text`` (promptfoo's contains-json)."""
    decoder, found, index = json.JSONDecoder(), [], 0
    while index < len(text):
        starts = [i for i in (text.find("{", index), text.find("[", index)) if i >= 0]
        if not starts:
            break
        start = min(starts)
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        found.append(value)
        index = end
    return found


def _is_json(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    try:
        value = json.loads(answer.output)
    except json.JSONDecodeError:
        return False, "Expected output to be valid JSON"
    return _schema_ok([value], item)


def _contains_json(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    values = _json_candidates(answer.output)
    if not values:
        return False, "Expected output to contain valid JSON"
    return _schema_ok(values, item)


def _schema_ok(values: list[Any], item: PfAssert) -> tuple[bool, str]:
    if item.value is None:
        return True, "Output is valid JSON"
    problems: list[str] = []
    for value in values:
        problems = schema_errors(value, item.value)
        if not problems:
            return True, "JSON matches the schema"
    return False, "JSON does not conform to the provided schema: " + "; ".join(problems)


def _levenshtein(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    limit = DEFAULT_LEVENSHTEIN_THRESHOLD if item.threshold is None else item.threshold
    distance = Levenshtein.distance(answer.output, _text(item, answer))
    return distance <= limit, f"Levenshtein distance {distance} is greater than {limit:g}"


def _latency(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    limit = item.threshold or 0
    if answer.latency_ms is None:
        return False, "No latency measured (a cached answer?)"
    return (
        answer.latency_ms <= limit,
        f"Latency {answer.latency_ms:.0f} ms is greater than {limit:g}",
    )


def _cost(item: PfAssert, answer: Answer) -> tuple[bool, str]:
    limit = item.threshold or 0
    if answer.tokens is None:
        return False, "No cost reported"
    return answer.tokens <= limit, f"Cost {answer.tokens} billing tokens is greater than {limit:g}"


_CHECKS: dict[str, Callable[[PfAssert, Answer], tuple[bool, str]]] = {
    "equals": _equals,
    "contains": _contains(fold=False),
    "icontains": _contains(fold=True),
    "contains-any": _contains_set(fold=False, need_all=False),
    "contains-all": _contains_set(fold=False, need_all=True),
    "icontains-any": _contains_set(fold=True, need_all=False),
    "icontains-all": _contains_set(fold=True, need_all=True),
    "starts-with": _starts_with,
    "regex": _regex,
    "is-json": _is_json,
    "contains-json": _contains_json,
    "levenshtein": _levenshtein,
    "latency": _latency,
    "cost": _cost,
}
