"""The command line: ``python -m playground compare|models|history|show|export|eval|worker``,
``keys``, ``backup``, ``restore`` and ``doctor`` (the operator's commands).

A stable interface for scripts: ``--json`` prints one JSON object per model per line;
exit code 0 when every model completed, 1 when any did not, 2 on bad usage, 3 when a newer
release migrated the database (run that release, or restore the pre-upgrade backup), 4
when an answer could not be written to history even after waiting out a database outage
(it is kept in the spool file the message names, and written on the next start).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import select
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from playground.catalog import Catalog, load_catalog, refresh_catalog, save_catalog
from playground.cli.eval import add_eval_parser, run_eval
from playground.cli.keys import add_keys_parser, run_keys_command
from playground.cli.worker import add_worker_parser, run_worker_command
from playground.config import Settings, load_settings
from playground.errors import InvalidRequestError, PlaygroundError, SchemaNewerThanCodeError
from playground.providers.base import GenerationParams, Message
from playground.providers.elumenta import ElumentaProvider
from playground.providers.registry import build_providers
from playground.results import CompareRequest, ModelResult, ModelTarget
from playground.runner import ModelDelta, ModelFinished, RunEvent, Runner
from playground.store import (
    EXPORT_FORMATS,
    HistoryFilter,
    Store,
    StoreRecorder,
    export_rows,
    get_comparison,
    list_results,
    open_configured_store,
    write_export,
)
from playground.store.postgres import unbounded
from playground.store.rollups import rebuild as rebuild_rollups
from playground.store.spending import demo_spent_reader

EXIT_OK, EXIT_NOT_ALL_COMPLETED, EXIT_USAGE, EXIT_SCHEMA_NEWER, EXIT_NOT_SAVED = 0, 1, 2, 3, 4
PROVIDERS = ("elumenta", "demo", "openai_compatible")
STATUSES = ("running", "completed", "partial", "failed", "cancelled", "interrupted")


class UsageError(PlaygroundError):
    """The command line asks for something impossible (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m playground", description="Compare Elumenta models from the terminal."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    compare = commands.add_parser("compare", help="run one prompt on several models at once")
    compare.add_argument(
        "--model", "-m", action="append", required=True, help="model slug (repeat for more)"
    )
    compare.add_argument("--system", default="", help="system prompt")
    compare.add_argument(
        "--prompt", "-p", required=True, help="user prompt ('-' reads it from standard input)"
    )
    compare.add_argument("--temperature", "-t", type=float, default=None, help="0 to 2")
    compare.add_argument("--max-tokens", type=int, default=None)
    compare.add_argument("--provider", choices=PROVIDERS, default=None)
    compare.add_argument("--json", action="store_true", help="one JSON object per model per line")
    compare.add_argument("--title", default="", help="title stored with the run")
    compare.add_argument("--tag", action="append", default=[], help="tag stored with the run")
    compare.add_argument("--no-save", action="store_true", help="do not record in history")
    compare.add_argument(
        "--cache", action="store_true", help="reuse an identical earlier completed answer"
    )

    models = commands.add_parser("models", help="list the model catalog with billing prices")
    models.add_argument(
        "--refresh", action="store_true", help="update prices from GET /models/{slug} and save"
    )
    models.add_argument("--json", action="store_true", help="one JSON object per model per line")

    history = commands.add_parser("history", help="list recorded results, newest first")
    _add_filters(history)
    history.add_argument("--limit", type=int, default=20, help="rows to show (default 20)")
    history.add_argument("--offset", type=int, default=0, help="rows to skip (paging)")
    history.add_argument("--json", action="store_true", help="one JSON object per result per line")

    show = commands.add_parser("show", help="one comparison with every model's answer")
    show.add_argument("id", type=int, help="comparison id (see history)")
    show.add_argument("--json", action="store_true", help="the comparison as one JSON object")

    export = commands.add_parser("export", help="write matching results as CSV or JSON")
    _add_filters(export)
    export.add_argument("--format", choices=EXPORT_FORMATS, default="csv")
    export.add_argument("--output", "-o", default=None, help="file to write (default: stdout)")

    add_eval_parser(commands)
    add_worker_parser(commands)
    add_keys_parser(commands)
    backup = commands.add_parser(
        "backup", help="write the history database to a new file (mode 600)"
    )
    backup.add_argument("file", type=Path, help="the file to write (must not exist)")
    restore = commands.add_parser(
        "restore", help="restore a backup into a new database (created if missing)"
    )
    restore.add_argument("file", type=Path, help="a file written by backup")
    restore.add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="the new database: postgresql+psycopg://…/playground_restored or sqlite:///path",
    )
    rollups = commands.add_parser(
        "rollups", help="the usage rollups behind the Costs page"
    ).add_subparsers(dest="rollups_command", required=True)
    rollups.add_parser("rebuild", help="recompute them from every stored result")
    doctor = commands.add_parser(
        "doctor", help="check settings, database, sign-in and keys before the first start"
    )
    doctor.add_argument(
        "--no-api", action="store_true", help="do not ask the Elumenta API whether the key works"
    )
    return parser


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", "-m", action="append", default=[], help="model slug (repeat)")
    parser.add_argument("--status", "-s", action="append", default=[], choices=STATUSES)
    parser.add_argument("--tag", default=None)
    parser.add_argument("--search", "-q", default=None, help="words in the prompt or answer")
    parser.add_argument("--since", type=_date, default=None, help="YYYY-MM-DD (UTC, inclusive)")
    parser.add_argument("--until", type=_date, default=None, help="YYYY-MM-DD (UTC, exclusive)")


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from exc


def history_filter(args: argparse.Namespace) -> HistoryFilter:
    """The history filter the ``--model/--status/--tag/--search/--since/--until`` flags ask for."""
    return HistoryFilter(
        models=tuple(args.model),
        statuses=tuple(args.status),
        tag=args.tag,
        search=args.search,
        since=args.since,
        until=args.until,
    )


def run_history(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    """Print one page of history; returns the exit code."""
    if args.limit < 1 or args.offset < 0:
        raise UsageError("--limit must be at least 1 and --offset not negative.")
    with store.session() as session, session.begin():
        entries = list_results(session, history_filter(args), args.limit, args.offset)
    for entry in entries:
        if args.json:
            out.write(json.dumps(entry.to_json_dict(), ensure_ascii=False) + "\n")
        else:
            r = entry.result
            preview = " ".join(r.content.split())[:60]
            out.write(
                f"#{entry.comparison_id:<6} {entry.created_at:%Y-%m-%d %H:%M}  {r.model:<18} "
                f"{r.status:<11} {_fmt(r.latency_ms):>7} ms  {preview}\n"
            )
    if not entries and not args.json:
        out.write("No results match.\n")
    return EXIT_OK


def run_show(args: argparse.Namespace, store: Store, out: TextIO) -> int:
    """Print one comparison; returns the exit code."""
    with store.session() as session, session.begin():
        comparison = get_comparison(session, args.id)
    if comparison is None:
        raise UsageError(f"No comparison #{args.id}.")
    if args.json:
        out.write(json.dumps(comparison.to_json_dict(), ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    request = comparison.request
    out.write(f"Comparison #{comparison.id}  {comparison.created_at:%Y-%m-%d %H:%M:%S} UTC")
    out.write(f"  {request.title}\n" if request.title else "\n")
    if request.system_prompt:
        out.write(f"\n[system]\n{request.system_prompt}\n")
    for message in request.messages:
        out.write(f"\n[{message.role}]\n{message.content}\n")
    for result in comparison.results:
        cut = " · cut at max tokens" if result.truncated else ""
        out.write(f"\n── {result.model} ({result.provider}) · {result.status}{cut} ──\n")
        out.write((result.content or result.error_message or "") + "\n")
    out.write("\n" + summary_table(comparison.results) + "\n")
    return EXIT_OK


def run_export(args: argparse.Namespace, store: Store, out: TextIO, err: TextIO) -> int:
    """Write matching results as CSV/JSON to ``--output`` or stdout; returns the exit code."""
    with store.session() as session, session.begin():
        rows = export_rows(session, history_filter(args))
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as fileobj:
                count = write_export(rows, args.format, fileobj)
        else:
            count = write_export(rows, args.format, out)
    err.write(f"Exported {count} results.\n")
    return EXIT_OK


def run_models(args: argparse.Namespace, settings: Settings, catalog: Catalog, out: TextIO) -> int:
    """List (and optionally refresh) the catalog; returns the exit code."""
    exit_code = EXIT_OK
    if args.refresh:
        provider = build_providers(settings, catalog, demo_spent=None)["elumenta"]
        assert isinstance(provider, ElumentaProvider)

        async def refresh() -> tuple[Catalog, dict[str, str]]:
            try:
                return await refresh_catalog(catalog, provider.model_details)
            finally:
                await provider.aclose()

        catalog, failures = asyncio.run(refresh())
        save_catalog(catalog, settings.resolved_catalog_path)
        for slug, message in failures.items():
            out.write(f"warning: {slug}: {message}\n")
        exit_code = EXIT_NOT_ALL_COMPLETED if failures else EXIT_OK
    for model in catalog:
        if args.json:
            row = {
                "slug": model.slug,
                "name": model.name,
                "tier": model.tier,
                "token_cost": model.token_cost,
                "uses": list(model.uses),
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            uses = ", ".join(model.uses)
            out.write(
                f"{model.slug:<20} {model.name:<20} {model.tier:<8} {model.token_cost:>3}  {uses}\n"
            )
    return exit_code


def compare_request(args: argparse.Namespace, settings: Settings, stdin: TextIO) -> CompareRequest:
    """The comparison the ``compare`` arguments describe; ``UsageError`` for non-UTF-8 text."""
    try:
        prompt = stdin.read() if args.prompt == "-" else args.prompt
    except UnicodeDecodeError as exc:
        raise UsageError(f"The prompt on standard input is not UTF-8 text ({exc.reason}).") from exc
    provider = args.provider or settings.default_provider
    return CompareRequest(
        messages=(Message("user", _utf8(prompt, "The prompt")),),
        targets=tuple(ModelTarget(provider, model) for model in args.model),
        system_prompt=_utf8(args.system, "The system prompt"),
        params=GenerationParams(temperature=args.temperature, max_tokens=args.max_tokens),
        title=_utf8(args.title, "The title"),
        tags=tuple(_utf8(tag, "A tag") for tag in args.tag),
        use_cache=args.cache,
    )


def _utf8(text: str, what: str) -> str:
    # Undecodable bytes in argv or stdin arrive as lone surrogates, which nothing can store.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{what} is not UTF-8 text (undecodable bytes at {exc.start}).") from exc
    return text


class _LinePrinter:
    """Prints concurrent streams as whole lines prefixed with the model's name."""

    def __init__(self, request: CompareRequest, out: TextIO) -> None:
        self._out = out
        self._names = [t.model for t in request.targets]
        self._width = max(len(n) for n in self._names)
        self._pending = [""] * len(self._names)

    def __call__(self, event: RunEvent) -> None:
        if isinstance(event, ModelDelta):
            text = self._pending[event.index] + event.text
            *lines, self._pending[event.index] = text.split("\n")
            for line in lines:
                self._line(event.index, line)
        elif isinstance(event, ModelFinished):
            if self._pending[event.index]:
                self._line(event.index, self._pending[event.index])
                self._pending[event.index] = ""
            result = event.result
            if result.status != "completed":
                self._line(event.index, f"⚠ {result.status}: {result.error_message or ''}")

    def _line(self, index: int, text: str) -> None:
        self._out.write(f"{self._names[index]:<{self._width}} │ {text}\n")
        self._out.flush()


def _fmt(value: float | int | None, spec: str = ".0f") -> str:
    return "—" if value is None else format(value, spec)


def summary_table(results: Sequence[ModelResult]) -> str:
    """A plain-text table of every model's status, timing and billing tokens."""
    header = ("model", "status", "TTFT ms", "latency ms", "chars/s", "tokens", "balance")
    rows = [header] + [
        (
            r.model + (" (cached)" if r.cached else ""),
            r.status,
            _fmt(r.ttft_ms),
            _fmt(r.latency_ms),
            _fmt(r.chars_per_s),
            _fmt(r.tokens_used, "d"),
            _fmt(r.balance_remaining, "d"),
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("─" * w for w in widths))
    return "\n".join(lines)


def run_compare(
    args: argparse.Namespace,
    settings: Settings,
    catalog: Catalog,
    streams: tuple[TextIO, TextIO, TextIO],
) -> int:
    """Run ``compare`` (recorded in history unless ``--no-save``); returns the exit code."""
    out, err, stdin = streams
    request = compare_request(args, settings, stdin)
    runner = Runner.from_settings(catalog, settings)
    store = None if args.no_save else open_configured_store(settings)
    providers = build_providers(
        settings,
        catalog,
        demo_spent=None if store is None else demo_spent_reader(store.engine),
    )
    recorder = StoreRecorder(store.engine, catalog.cost_of, writes=store.writes) if store else None
    try:
        listener = None if args.json else _LinePrinter(request, out)
        handle = runner.start(request, providers, recorder=recorder, on_event=listener)
        snapshot = handle.wait()
    finally:
        for provider in providers.values():
            runner.run_coroutine(provider.aclose(), timeout=5)
        runner.close()
        if store is not None:
            store.close()
    if args.json:
        for result in snapshot.results:
            out.write(json.dumps(result.to_json_dict(), ensure_ascii=False) + "\n")
    else:
        out.write("\n" + summary_table(snapshot.results) + "\n")
        if snapshot.comparison_id is not None:
            out.write(f"Saved as comparison #{snapshot.comparison_id}.\n")
    if snapshot.record_error:
        err.write(f"error: {snapshot.record_error}\n")
        return EXIT_NOT_SAVED
    all_done = all(r.status == "completed" for r in snapshot.results)
    return EXIT_OK if all_done else EXIT_NOT_ALL_COMPLETED


def reader_gone(out: TextIO) -> bool:
    """Whether ``out`` is a pipe that nobody reads any more (``| head`` has exited)."""
    try:
        poller = select.poll()
        poller.register(out.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no file descriptor, or no poll()
        return False


def main(
    argv: Sequence[str] | None = None,
    *,
    settings: Settings | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Entry point; returns the process exit code instead of raising."""
    out, err, stdin = out or sys.stdout, err or sys.stderr, stdin or sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=err,
    )
    if args.command == "doctor":  # reports bad settings itself, as one of its checks
        # Imported for their commands only: a batch's start-up (eval) needs neither.
        from playground.cli.doctor import run_doctor

        return run_doctor(out, check_api=not args.no_api)
    try:
        settings = settings or load_settings()
        catalog = load_catalog(settings.resolved_catalog_path)
        if args.command == "compare":
            return run_compare(args, settings, catalog, (out, err, stdin))
        if args.command == "models":
            return run_models(args, settings, catalog, out)
        if args.command == "eval":
            return run_eval(args, settings, catalog, out, err)
        if args.command == "worker":
            return run_worker_command(args, settings, catalog, out)
        if args.command == "keys":
            return run_keys_command(args, settings, out)
        if args.command in ("backup", "restore"):
            from playground.cli.backup import backup, restore

            done = (
                backup(settings.resolved_database_url, args.file)
                if args.command == "backup"
                else restore(args.file, args.to)
            )
            out.write(done + "\n")
            return EXIT_OK
        store = open_configured_store(settings)
        try:
            if args.command == "history":
                return run_history(args, store, out)
            if args.command == "show":
                return run_show(args, store, out)
            if args.command == "export":
                return run_export(args, store, out, err)
            if args.command == "rollups":
                # One pass over the whole history: it may outlast the statement timeout.
                with (
                    store.session() as session,
                    session.begin(),
                    unbounded(session.connection()),
                ):
                    counted = rebuild_rollups(session)
                out.write(f"Usage rollups rebuilt from {counted} finished result(s).\n")
                return EXIT_OK
        finally:
            store.close()
    except (InvalidRequestError, UsageError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except SchemaNewerThanCodeError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_SCHEMA_NEWER
    except PlaygroundError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_NOT_ALL_COMPLETED
    except OSError as exc:
        if isinstance(exc, BrokenPipeError) and reader_gone(out):
            raise  # `| head` has read enough: the entry point ends quietly
        err.write(f"error: {exc.strerror or exc} ({getattr(exc, 'filename', '') or ''})\n")
        return EXIT_NOT_ALL_COMPLETED
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE
