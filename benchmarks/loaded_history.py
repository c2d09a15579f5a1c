"""The options that name a history bench_store has loaded, shared by the benchmarks that
time reads of it (bench_history, bench_search)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.engine import make_url


def add_history_options(parser: argparse.ArgumentParser) -> None:
    """``--sqlite FILE`` or ``--postgres-url URL`` with ``--pg-schema``."""
    parser.add_argument("--sqlite", type=Path, help="a loaded SQLite history file")
    parser.add_argument("--postgres-url", help="PostgreSQL URL (with --pg-schema)")
    parser.add_argument("--pg-schema", default="bench_store")


def history_url(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """The database URL the options name (a usage error if they name none)."""
    if args.sqlite:
        return f"sqlite:///{args.sqlite}"
    if args.postgres_url:
        url = make_url(args.postgres_url).update_query_dict(
            {"options": f"-csearch_path={args.pg_schema}"}
        )
        return url.render_as_string(hide_password=False)
    parser.error("give --sqlite or --postgres-url")
