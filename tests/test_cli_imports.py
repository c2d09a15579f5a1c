"""The command line starts without the dashboard's libraries: ``eval`` and ``compare`` are
on the critical path of a batch, and pandas/altair/streamlit cost about a second of CPU to
import that no CLI command needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "altair", "streamlit")


def test_cli_module_graph_imports_no_dashboard_library() -> None:
    script = (
        "import sys\n"
        "import playground.cli.main, playground.cli.eval, playground.workers.worker\n"
        "import playground.evaluation.promptfoo.run\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_eval_on_sqlite_starts_without_libraries_it_does_not_use() -> None:
    """A batch's start-up is on its critical path: psycopg (PostgreSQL only), jsonschema
    (``json_schema`` assertions only), rapidfuzz (promptfoo configs only), httpx's own
    command line (rich, click), markdown-it (the pages' answer rendering), numpy (the
    usage timings' bins and the leaderboard's fits), SQLAlchemy's PostgreSQL dialect and
    cryptography (personal keys on a hosted server) are imported when used, not before
    the first request."""
    unused = (
        "psycopg",
        "jsonschema",
        "rapidfuzz",
        "rich",
        "click",
        "markdown_it",
        "numpy",
        "sqlalchemy.dialects.postgresql",
        "cryptography",
    )
    script = (
        "import sys\n"
        "import playground.cli.main, playground.cli.eval\n"
        f"print(','.join(m for m in {unused!r} if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""
