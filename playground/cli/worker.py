"""``python -m playground worker [--concurrency N] [--jobs M]``: the worker's command line."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from playground.catalog import Catalog
from playground.config import Settings
from playground.errors import InvalidRequestError


def add_worker_parser(commands: Any) -> None:
    """Register the ``worker`` subcommand on the CLI's subparsers."""
    parser = commands.add_parser(
        "worker", help="run batch evaluations from the queue (PostgreSQL) until stopped"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="requests in flight in this process (default: PLAYGROUND_MAX_CONCURRENCY)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="batch shards run at once (default 1)")


def run_worker_command(
    args: argparse.Namespace, settings: Settings, catalog: Catalog, out: TextIO
) -> int:
    """Run the worker as the arguments ask; returns the exit code."""
    if args.jobs < 1 or (args.concurrency is not None and args.concurrency < 1):
        raise InvalidRequestError("--jobs and --concurrency must be at least 1.")
    # Imported here: procrastinate takes about a second to import, and only workers need it.
    from playground.workers.worker import run_worker

    return run_worker(settings, catalog, jobs=args.jobs, concurrency=args.concurrency, out=out)
