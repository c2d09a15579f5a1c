"""``python -m playground eval promptfooconfig.yaml``: a promptfoo config run as one batch.

Prompts become template versions, tests the dataset rows, providers the models: the
answers land in history, costs and blind votes like any batch. Each answer is then graded
against its test's assertions as promptfoo grades it (``llm-rubric`` by our judge, its cost
counted with the cell), and the verdicts are stored with the cells. The output follows
promptfoo's ``results.json`` shape; the exit code is promptfoo's (100 when a test failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import SecretStr

from playground.catalog import Catalog
from playground.config import Settings
from playground.datasets import parse_dataset
from playground.errors import InvalidRequestError
from playground.evaluation.assertions import AssertionSpec, Observation, judge
from playground.evaluation.batch import BatchJob
from playground.evaluation.judging.grader import make_grader
from playground.evaluation.plan import BatchSpec, plan_batch
from playground.evaluation.promptfoo.config import PfTest, PromptfooConfig
from playground.evaluation.promptfoo.grading import Answer, grade
from playground.evaluation.recording import BatchProgress
from playground.providers.base import Provider
from playground.providers.registry import build_providers
from playground.results import ModelTarget
from playground.store import Store, open_store
from playground.store.eval_repository import (
    CellState,
    batch_cells,
    save_dataset,
    save_template_version,
    update_cells,
)
from playground.store.spending import demo_spent_reader
from playground.templates import render

EXIT_OK, EXIT_TESTS_FAILED = 0, 100
"""promptfoo's ``eval`` exits 100 when a test failed (its PROMPTFOO_FAILED_TEST_EXIT_CODE)."""
TEST_COLUMN = "__test"
GRADING_CONCURRENCY = 8
RESULTS_VERSION = 3


def run_promptfoo(
    config: PromptfooConfig,
    args: argparse.Namespace,
    settings: Settings,
    catalog: Catalog,
    out: TextIO,
    err: TextIO,
    follow: Callable[[BatchJob, TextIO], BatchProgress],
) -> int:
    """The CLI's run: execute the config, print/write the results, return the exit code."""
    document = execute(
        config,
        settings,
        catalog,
        concurrency=args.concurrency,
        use_cache=not args.no_cache,
        follow=lambda job: follow(job, err),
        announce=err.write,
    )
    if args.output is not None:
        Path(args.output).write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    if args.json:
        out.write(json.dumps(document, ensure_ascii=False) + "\n")
    else:
        out.write(summary(document))
    return exit_code(document)


def exit_code(document: Mapping[str, Any]) -> int:
    """promptfoo's exit code for a results document: 0 all passed, 100 otherwise."""
    stats = document["results"]["stats"]
    return EXIT_OK if stats["failures"] == 0 and stats["errors"] == 0 else EXIT_TESTS_FAILED


def execute(
    config: PromptfooConfig,
    settings: Settings,
    catalog: Catalog,
    *,
    follow: Callable[[BatchJob], object],
    concurrency: int | None = None,
    use_cache: bool = True,
    announce: Callable[[str], object] = lambda _line: None,
    elumenta_api_key: SecretStr | None = None,
    elumenta_base_url: str | None = None,
    environment_keys: bool = True,
) -> dict[str, Any]:
    """Plan the config as one batch, run it (``follow`` waits for the started job), grade
    every answer and store the verdicts with the cells; returns promptfoo's results
    document. Raises :class:`InvalidRequestError` for a provider or model we cannot use,
    before anything is sent. ``elumenta_api_key``/``elumenta_base_url``: a session's own
    (the Settings page), as for :func:`~playground.providers.registry.build_providers`.
    ``environment_keys`` false (an uploaded config): ``OPENAI_*`` variables are not used."""
    settings = _with_openai(config, settings, environment_keys)

    def build(demo_spent: Callable[[], int] | None) -> Mapping[str, Provider]:
        return build_providers(
            settings,
            catalog,
            elumenta_api_key=elumenta_api_key,
            elumenta_base_url=elumenta_base_url,
            demo_spent=demo_spent,
        )

    providers = build(None)
    _check_providers(config, providers)
    store = open_store(settings.resolved_database_url)
    spent = demo_spent_reader(store.engine)
    try:
        batch_id, version_ids = _plan(store, config, concurrency, use_cache)
        announce(
            f"Batch #{batch_id}: {len(config.prompts)} prompt(s) x {len(config.tests)} test(s) "
            f"x {len(config.providers)} provider(s).\n"
        )
        job = BatchJob.from_settings(
            store,
            batch_id,
            catalog,
            settings,
            lambda: build(spent),
            concurrency=concurrency,
        )
        follow(job.start())
        with store.session() as session, session.begin():
            cells = batch_cells(session, batch_id)
        judge_fn = _judge(config, providers)
        graded = asyncio.run(_grade_cells(store, config, version_ids, cells, judge_fn))
    finally:
        store.close()
    return results_document(config, batch_id, version_ids, cells, graded)


def _with_openai(config: PromptfooConfig, settings: Settings, environment: bool) -> Settings:
    """The settings with the config's ``apiBaseUrl``/``apiKey`` for the openai providers.

    A key from outside the config goes only where it was configured for: the settings' key
    to the settings' URL, and (``environment``: the command line, as promptfoo does)
    ``OPENAI_API_KEY`` to ``OPENAI_BASE_URL`` or the config's URL. An uploaded config
    (``environment`` false) pointing elsewhere gets no key but its own.
    """
    openai = [
        p for p in (*config.providers, config.judge) if p and p.provider == "openai_compatible"
    ]
    if not openai:
        return settings
    env_url = os.environ.get("OPENAI_BASE_URL") if environment else None
    base_url = (openai[0].base_url or env_url or settings.openai_base_url or "").rstrip("/")
    if not base_url:
        raise InvalidRequestError(
            f"{openai[0].id}: set config.apiBaseUrl (or OPENAI_BASE_URL, as for promptfoo)."
        )
    key = openai[0].api_key
    if key is None and environment:
        key = os.environ.get("OPENAI_API_KEY")
    if key is None and base_url == (settings.openai_base_url or "").rstrip("/"):
        return settings.model_copy(update={"openai_base_url": base_url})
    secret = None if key is None else SecretStr(key)
    return settings.model_copy(update={"openai_base_url": base_url, "openai_api_key": secret})


def _check_providers(config: PromptfooConfig, providers: Mapping[str, Provider]) -> None:
    """A provider or model we cannot reach is bad input (exit 2), found before spending."""
    for item in (*config.providers, *([config.judge] if config.judge else [])):
        provider = providers.get(item.provider)
        if provider is None:
            raise InvalidRequestError(f"{item.id}: the {item.provider} provider is not configured.")
        known = [m.slug for m in provider.models()]
        if known and item.model not in known and item.provider == "elumenta":
            raise InvalidRequestError(
                f"{item.id}: unknown model {item.model!r}; known: {', '.join(known)}."
            )


def _plan(
    store: Store, config: PromptfooConfig, concurrency: int | None, use_cache: bool
) -> tuple[int, list[int]]:
    rows = [{TEST_COLUMN: str(i), **t.vars} for i, t in enumerate(config.tests)]
    text = "\n".join(json.dumps(r, ensure_ascii=False, default=str) for r in rows)
    dataset = parse_dataset(text, "jsonl")
    with store.session() as session, session.begin():
        version_ids = [
            save_template_version(session, f"{config.description}: {p.label}"[:200], p.template).id
            for p in config.prompts
        ]
        dataset_id = save_dataset(session, f"{config.description} tests", dataset)
        spec = BatchSpec(
            title=config.description,
            template_version_ids=tuple(version_ids),
            dataset_id=dataset_id,
            targets=tuple(ModelTarget(p.provider, p.model) for p in config.providers),
            params=config.providers[0].params,
            concurrency=concurrency or 8,
            use_cache=use_cache,
        )
        return plan_batch(session, spec), version_ids


AskJudge = Callable[[str, str, str], Awaitable[tuple[bool, str, int | None]]]
"""The grading model on (rubric, prompt, answer): ``(passed, reason, billing tokens)``."""


def _judge(config: PromptfooConfig, providers: Mapping[str, Provider]) -> AskJudge | None:
    if config.judge is None:
        return None
    grader = make_grader(providers[config.judge.provider], config.judge.model)

    async def ask(
        rubric: str, question: str = "", answer: str = ""
    ) -> tuple[bool, str, int | None]:
        outcome = await judge(
            AssertionSpec("llm_judge", rubric), Observation(answer, question=question), {}, grader
        )
        return outcome.passed and not outcome.error, outcome.message, outcome.cost_tokens

    return ask


async def _grade_cells(
    store: Store,
    config: PromptfooConfig,
    version_ids: list[int],
    cells: list[CellState],
    judge_fn: AskJudge | None,
) -> dict[int, dict[str, Any]]:
    """Each completed cell's gradingResult, keyed by cell id (stored with the cell too)."""
    limit = asyncio.Semaphore(GRADING_CONCURRENCY)

    async def one(cell: CellState) -> tuple[int, dict[str, Any]]:
        test = config.tests[cell.key.row_index]
        prompt = config.prompts[version_ids.index(cell.key.template_version_id)]

        async def cell_judge(rubric: str) -> tuple[bool, str, int | None]:
            assert judge_fn is not None  # only called for llm-rubric, which needs a judge
            question = render(prompt.template, test.vars).user
            return await judge_fn(rubric, question, cell.content)

        answer = Answer(cell.content, cell.latency_ms, cell.tokens_used, test.vars)
        async with limit:
            result = await grade(
                test.asserts, test.threshold, answer, cell_judge if judge_fn else None
            )
        outcomes = [
            {
                "label": str((c.get("assertion") or {}).get("type", "assert-set")),
                "passed": bool(c["pass"]),
                "message": c["reason"],
                "cost_tokens": c["tokensUsed"]["total"] or None,
                "judge": (c.get("assertion") or {}).get("type", "").endswith("llm-rubric"),
            }
            for c in result["componentResults"]
        ]
        judge_tokens = result["tokensUsed"]["total"]
        with store.session() as session, session.begin():
            update_cells(
                session,
                [cell.id],
                assertions_json=outcomes,
                passed=bool(result["pass"]),
                **(
                    {"judge_tokens": judge_tokens, "judged_utc": datetime.now(UTC)}
                    if judge_tokens
                    else {}
                ),
            )
        return cell.id, result

    done = await asyncio.gather(*(one(c) for c in cells if c.status == "completed"))
    return dict(done)


def results_document(
    config: PromptfooConfig,
    batch_id: int,
    version_ids: list[int],
    cells: list[CellState],
    graded: Mapping[int, Mapping[str, Any]],
) -> dict[str, Any]:
    """promptfoo's ``results.json`` shape (version 3) for the batch's cells."""
    targets = {(p.provider, p.model): (i, p) for i, p in enumerate(config.providers)}
    results = []
    for cell in cells:
        prompt_index = version_ids.index(cell.key.template_version_id)
        prompt, test = config.prompts[prompt_index], config.tests[cell.key.row_index]
        provider_index, provider = targets[(cell.key.provider, cell.key.model)]
        grading = graded.get(cell.id)
        error = None if cell.status == "completed" else (cell.error_message or cell.status)
        results.append(
            {
                # promptfoo's columns: each provider's prompts, provider by provider.
                "promptIdx": provider_index * len(config.prompts) + prompt_index,
                "testIdx": cell.key.row_index,
                "testCase": _test_case(test),
                "promptId": str(cell.key.template_version_id),
                "provider": {"id": provider.id, "label": provider.label},
                "prompt": {"raw": prompt.raw, "label": prompt.label},
                "vars": dict(test.vars),
                "response": None
                if error
                else {
                    "output": cell.content,
                    "cached": cell.cached,
                    "tokenUsage": {"total": cell.tokens_used or 0, "cached": 0},
                },
                "error": error,
                "success": bool(grading and grading["pass"]),
                "score": grading["score"] if grading else 0,
                "latencyMs": cell.latency_ms or 0,
                "gradingResult": grading,
                "namedScores": grading["namedScores"] if grading else {},
                "cost": 0,
                "failureReason": 0 if grading and grading["pass"] else (2 if error else 1),
            }
        )
    successes = sum(r["success"] for r in results)
    errors = sum(r["error"] is not None for r in results)
    tokens = sum(c.tokens_used or 0 for c in cells)
    judge_tokens = sum(g["tokensUsed"]["total"] for g in graded.values())
    return {
        "evalId": f"batch-{batch_id}",
        "results": {
            "version": RESULTS_VERSION,
            "timestamp": datetime.now(UTC).isoformat(),
            "prompts": [
                {"raw": p.raw, "label": p.label, "provider": t.id}
                for t in config.providers
                for p in config.prompts
            ],
            "results": results,
            "stats": {
                "successes": successes,
                "failures": len(results) - successes - errors,
                "errors": errors,
                "tokenUsage": {"total": tokens + judge_tokens, "assertions": judge_tokens},
            },
        },
        "config": _without_keys(json.loads(json.dumps(config.raw, default=str))),
        "shareableUrl": None,
    }


def _without_keys(value: Any) -> Any:
    """The config as written, with every ``apiKey`` masked: results files get shared."""
    if isinstance(value, dict):
        return {k: "***" if k == "apiKey" else _without_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_keys(v) for v in value]
    return value


def _test_case(test: PfTest) -> dict[str, Any]:
    case: dict[str, Any] = {"vars": dict(test.vars), "assert": [dict(a.raw) for a in test.asserts]}
    if test.description:
        case["description"] = test.description
    if test.threshold is not None:
        case["threshold"] = test.threshold
    return case


def summary(document: Mapping[str, Any]) -> str:
    """One PASS/FAIL/ERROR line per cell and a closing count, as the CLI prints them."""
    lines = []
    for result in document["results"]["results"]:
        verdict = "PASS" if result["success"] else ("ERROR" if result["error"] else "FAIL")
        name = result["testCase"].get("description") or f"test {result['testIdx'] + 1}"
        why = result["error"] or (result["gradingResult"] or {}).get("reason", "")
        lines.append(
            f"{verdict} [{result['provider']['label']}] {result['prompt']['label'][:40]!r}, "
            f"{name}: score {result['score']:.2f}"
            + ("" if result["success"] else f" — {why}")
            + "\n"
        )
    stats = document["results"]["stats"]
    lines.append(
        f"{stats['successes']} passed, {stats['failures']} failed, {stats['errors']} errors; "
        f"{stats['tokenUsage']['total']} tokens "
        f"({stats['tokenUsage']['assertions']} for grading).\n"
    )
    return "".join(lines)
