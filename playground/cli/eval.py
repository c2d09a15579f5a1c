"""``python -m playground eval SUITE.yaml``: run an eval suite and gate CI on its assertions.

Prints the results matrix (or ``--json``), records everything in history, and exits 0 when
every answer arrived and passed, 1 when any assertion failed or any request failed, 2 for
a bad suite file. ``--resume BATCH_ID`` continues a batch that was stopped or crashed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TextIO

from playground.catalog import Catalog
from playground.config import Settings
from playground.errors import InvalidRequestError
from playground.evaluation.batch import BatchJob
from playground.evaluation.judging.cells import judge_price_of
from playground.evaluation.plan import BatchSpec, estimate, load_inputs, plan_batch
from playground.evaluation.promptfoo.config import is_promptfoo, load_promptfoo
from playground.evaluation.recording import BatchProgress
from playground.evaluation.report import export_records, matrix_table, pass_rates
from playground.evaluation.suite import Suite, load_suite
from playground.providers.base import Provider
from playground.providers.registry import build_providers
from playground.results import ModelTarget
from playground.runner import unknown_provider_message
from playground.store import Store, open_configured_store
from playground.store.eval_recovery import recover_interrupted_batches
from playground.store.eval_repository import (
    CellState,
    batch_cells,
    get_batch,
    models_to_do,
    save_dataset,
    save_template_version,
)
from playground.store.spending import demo_spent_reader
from playground.unsaved import unsaved

# 3 is the command line's "a newer release migrated the database" (playground.cli.main).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NOT_SAVED = 0, 1, 2, 4
PROGRESS_EVERY_S = 2.0
# Answers are read on the runner's event loop while the batch and history-writer threads run
# Python between their database calls; a thread waiting for the GIL gets it only after the
# switch interval (5 ms by default), a delay on each answer with 8 requests in flight.
BATCH_SWITCH_INTERVAL_S = 0.001


def add_eval_parser(commands: Any) -> None:
    """Register the ``eval`` subcommand on the CLI's subparsers."""
    parser = commands.add_parser("eval", help="run an eval suite (YAML); exit 1 on a failed check")
    parser.add_argument("suite", nargs="?", type=Path, help="the suite file (YAML)")
    parser.add_argument("--resume", type=int, default=None, help="continue batch BATCH_ID")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight")
    parser.add_argument("--provider", default=None, help="override the suite's provider")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="promptfoo configs: write the results as promptfoo's results.json",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="ask again even for identical earlier requests"
    )


def run_eval(
    args: argparse.Namespace, settings: Settings, catalog: Catalog, out: TextIO, err: TextIO
) -> int:
    """Plan (or resume) the batch, run it, grade it, print it; returns the exit code."""
    if (args.suite is None) == (args.resume is None):
        raise InvalidRequestError("Give either a suite file or --resume BATCH_ID.")
    if args.concurrency is not None and args.concurrency < 1:
        raise InvalidRequestError("--concurrency must be at least 1.")
    if args.suite is not None and is_promptfoo(args.suite):
        config = load_promptfoo(args.suite)
        # Imported for promptfoo configs only (its graders load rapidfuzz).
        from playground.evaluation.promptfoo.run import run_promptfoo

        return run_promptfoo(config, args, settings, catalog, out, err, _follow)
    if args.output is not None:
        raise InvalidRequestError("-o/--output is for promptfoo configs; use --json here.")
    suite = load_suite(args.suite) if args.suite is not None else None
    if suite is not None:
        # Only asked which models it serves: nothing is generated with these.
        providers = build_providers(settings, catalog, demo_spent=None)
        _check_models(suite, _provider_of(suite, args, settings), providers)
    store = open_configured_store(settings)
    try:
        batch_id = args.resume if suite is None else _plan(store, suite, args, settings)
        with store.session() as session, session.begin():
            recover_interrupted_batches(
                session, stale_after=timedelta(seconds=settings.batch_stale_after_s)
            )
            batch = get_batch(session, batch_id)
            if batch is None:
                raise InvalidRequestError(f"No batch #{batch_id}.")
            spec = BatchSpec.from_json(batch.spec_json)
            if suite is None:
                # A resumed batch's template and dataset must still be there and render
                # (a suite's were checked as it was planned, just now).
                load_inputs(session, spec)
            todo = models_to_do(session, batch_id)
        judge = spec.judge
        judged = len(todo) if judge_price_of(spec, catalog.cost_of) is not None else 0
        report = estimate(
            todo,
            catalog.cost_of,
            judge_model=judge.model if judge else None,
            judged_cells=judged,
            budget_tokens=spec.budget_tokens,
        )
        err.write(f"Batch #{batch_id}: {report.requests} requests, up to {report.tokens} tokens.\n")
        for warning in report.warnings:
            err.write(f"warning: {warning}\n")
        job = BatchJob.from_settings(
            store,
            batch_id,
            catalog,
            settings,
            lambda: build_providers(settings, catalog, demo_spent=demo_spent_reader(store.engine)),
            concurrency=args.concurrency,
        )
        progress = _follow(job.start(), err)
        judge_tokens = progress.judge_tokens
        with store.session() as session, session.begin():
            cells = batch_cells(session, batch_id)
        spooled = unsaved().spooled
        spool = store.writes.spool
    finally:
        store.close()
    _print(args.json, batch_id, progress, cells, judge_tokens, out)
    if spooled and spool is not None:
        err.write(
            f"error: {spooled} answer(s) could not be written to history while the database "
            f"was unreachable; they are kept in {spool.path} and written on the next start.\n"
        )
        return EXIT_NOT_SAVED
    all_passed = all(c.status == "completed" and c.passed is not False for c in cells)
    return EXIT_OK if all_passed and progress.status == "completed" else EXIT_FAILED


def _provider_of(suite: Suite, args: argparse.Namespace, settings: Settings) -> str:
    return str(args.provider or suite.provider or settings.default_provider)


def _check_models(suite: Suite, provider_name: str, providers: Mapping[str, Provider]) -> None:
    """A model or judge the provider does not serve is a bad suite (exit 2), not a failed run."""
    provider = providers.get(provider_name)
    if provider is None:
        raise InvalidRequestError(
            f"{unknown_provider_message(provider_name)} Available: {', '.join(providers)}."
        )
    known = [m.slug for m in provider.models()]
    named = [*suite.models, *([suite.judge] if suite.judge else [])]
    unknown = [m for m in named if known and m not in known]
    if unknown:
        raise InvalidRequestError(
            f"Unknown model(s) for {provider.label}: {', '.join(unknown)}. "
            f"Known models: {', '.join(known)}."
        )


def _plan(store: Store, suite: Suite, args: argparse.Namespace, settings: Settings) -> int:
    provider = _provider_of(suite, args, settings)
    with store.session() as session, session.begin():
        version = save_template_version(session, suite.template_name, suite.template)
        dataset_id = save_dataset(session, suite.dataset_name, suite.dataset)
        spec = BatchSpec(
            title=suite.title,
            template_version_ids=(version.id,),
            dataset_id=dataset_id,
            targets=tuple(ModelTarget(provider, m) for m in suite.models),
            mapping=suite.mapping,
            assertions=suite.assertions,
            params=suite.params,
            concurrency=args.concurrency or suite.concurrency,
            budget_tokens=suite.budget_tokens,
            judge=None if suite.judge is None else ModelTarget(provider, suite.judge),
            use_cache=not args.no_cache,
        )
        return plan_batch(session, spec)


def _follow(job: BatchJob, err: TextIO) -> BatchProgress:
    with _quick_thread_switches():
        while True:
            progress = job.wait(PROGRESS_EVERY_S)
            if job.finished:
                return progress
            _report(progress, err)


@contextmanager
def _quick_thread_switches() -> Iterator[None]:
    """Let threads waiting for the GIL have it sooner while a batch runs
    (:data:`BATCH_SWITCH_INTERVAL_S`); the previous interval is restored after."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, BATCH_SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _report(progress: BatchProgress, err: TextIO) -> None:
    eta = "" if progress.eta_s is None else f", ETA {progress.eta_s:.0f} s"
    err.write(
        f"  {progress.done}/{progress.total} done ({progress.failed} failed), "
        f"{progress.spent_tokens} tokens{eta} {progress.message}\n"
    )
    err.flush()


def _print(
    as_json: bool,
    batch_id: int,
    progress: BatchProgress,
    cells: list[CellState],
    judge_tokens: int,
    out: TextIO,
) -> None:
    rates = pass_rates(cells)
    if as_json:
        document = {
            "batch_id": batch_id,
            "status": progress.status,
            "total": progress.total,
            "completed": progress.completed,
            "failed": progress.failed,
            "spent_tokens": progress.spent_tokens,
            "judge_tokens": judge_tokens,
            "pass_rates": {
                m: {"rate": r.estimate, "low": r.low, "high": r.high} for m, r in rates.items()
            },
            "cells": export_records(cells),
        }
        out.write(json.dumps(document, ensure_ascii=False) + "\n")
        return
    out.write(matrix_table(cells) + "\n")
    out.write(
        f"Batch #{batch_id} {progress.status}: {progress.completed} completed, "
        f"{progress.failed} failed, {progress.spent_tokens} tokens"
        + (f" (+{judge_tokens} for the judge)" if judge_tokens else "")
        + ".\n"
    )
    if progress.status != "completed" and progress.message:
        out.write(progress.message + "\n")  # why it stopped, e.g. the judge was refused
    for cell in cells:
        for assertion in cell.assertions:
            if not assertion["passed"]:
                out.write(
                    f"FAIL {cell.key.model} row {cell.key.row_index + 1}: "
                    f"{assertion['label']}: {assertion['message']}\n"
                )
        if cell.status == "failed":
            out.write(
                f"ERROR {cell.key.model} row {cell.key.row_index + 1}: {cell.error_message}\n"
            )
