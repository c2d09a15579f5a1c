"""History search alone, on a history bench_store loaded: wall and CPU time per page of
50 results for common, mid and rare words.

    .venv/bin/python benchmarks/bench_search.py --postgres-url postgresql+psycopg://… \\
        --pg-schema bench3m
    .venv/bin/python benchmarks/bench_search.py --sqlite copy-of-1m.sqlite3
    .venv/bin/python benchmarks/bench_search.py --postgres-url … --code ../other-checkout
    .venv/bin/python benchmarks/bench_search.py --postgres-url … --history

``--history`` times the History page's call instead: ``history_entries`` (a page of 20
entries and their count) with the search.

The words are drawn from the vocabulary bench_store generated (same ``--seed``) by rank,
as bench_store's search figures are: common (rank 10-100), mid (1k-3k), rare (10k-20k)
and two mid words, in alternating rounds. Prints p50/p95 of wall time, of this process's
CPU time and, on PostgreSQL, of the CPU time of the server process that answered (read
from ``/proc``, so only with the server on this machine). Nothing is written; the store's
migrations run on open (use a schema already at head). No statement timeout: a search
the app would cancel after 30 s is timed to its end.

``--code`` runs another checkout's ``playground`` package on the same data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script: this folder is first on the path.
from loaded_history import add_history_options, history_url

CASES = {
    "common word (rank 10-100)": (10, 100, 1),
    "mid word (rank 1k-3k)": (1_000, 3_000, 1),
    "rare word (rank 10k-20k)": (10_000, 20_000, 1),
    "two mid words": (500, 3_000, 2),
}


def _server_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_history_options(parser)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds")
    parser.add_argument("--per-round", type=int, default=4, help="searches per case and round")
    parser.add_argument("--seed", type=int, default=1, help="bench_store's --seed")
    parser.add_argument("--code", type=Path, help="checkout whose playground package to time")
    parser.add_argument(
        "--history", action="store_true", help="time the History page's history_entries"
    )
    parser.add_argument("--cases", help="comma-separated case numbers to run (1-4; default all)")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str((args.code or root).resolve()))

    import sqlalchemy as sa

    from playground.store import HistoryFilter, list_results, open_store
    from playground.store.repository import history_entries

    # After playground: bench_store puts this checkout first on the path, but the package
    # is already imported from --code.
    sys.path.append(str(root))
    from benchmarks.bench_store import build_corpus

    url = history_url(parser, args)
    store = open_store(url, statement_timeout_s=0)
    vocabulary = build_corpus(np.random.default_rng(args.seed)).vocabulary
    rng = np.random.default_rng(args.seed)

    def words(low: int, high: int, count: int) -> Callable[[], str]:
        return lambda: " ".join(vocabulary[int(rng.integers(low, high))] for _ in range(count))

    chosen = {int(n) for n in args.cases.split(",")} if args.cases else None
    cases = {
        name: words(*ranks)
        for number, (name, ranks) in enumerate(CASES.items(), start=1)
        if chosen is None or number in chosen
    }

    def search(session: Any, flt: Any) -> int:
        """Runs one search; returns how many rows (entries) its page holds."""
        if args.history:
            return len(history_entries(session, flt, limit=20).entries)
        return len(list_results(session, flt, limit=50))

    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    server: dict[str, list[float]] = {name: [] for name in cases}
    found: dict[str, list[int]] = {name: [] for name in cases}
    pid = None
    if store.backend == "postgresql":
        # One search at a time: the pool keeps handing out the same connection.
        with store.session() as session:
            pid = int(session.scalar(sa.text("SELECT pg_backend_pid()")) or 0)
    for make in cases.values():  # warm-up: caches, imports
        with store.session() as session:
            search(session, HistoryFilter(search=make()))
    for _ in range(args.rounds):
        for case, make in cases.items():
            for _ in range(args.per_round):
                flt = HistoryFilter(search=make())
                began, began_cpu = time.perf_counter(), time.process_time()
                began_server = _server_cpu_s(pid)
                with store.session() as session:
                    rows = search(session, flt)
                wall[case].append((time.perf_counter() - began) * 1000)
                cpu[case].append((time.process_time() - began_cpu) * 1000)
                server[case].append((_server_cpu_s(pid) - began_server) * 1000)
                found[case].append(rows)
    what = "history_entries, 20 entries" if args.history else "list_results, 50 rows"
    print(f"== {store.backend}: {url.split('@')[-1]} ({args.code or root}; {what}) ==")
    for case in cases:
        w, c, s = wall[case], cpu[case], server[case]
        print(
            f"  {case:<26} n={len(w):<3} wall p50/p95 {statistics.median(w):8.1f} /"
            f" {float(np.percentile(w, 95)):8.1f} ms"
            f"   CPU {statistics.median(c):6.1f} / {float(np.percentile(c, 95)):6.1f} ms"
            + (
                f"   server CPU {statistics.median(s):8.1f} / {float(np.percentile(s, 95)):8.1f} ms"
                if pid
                else ""
            )
            + f"   rows/page min {min(found[case])}"
        )
    store.close()


if __name__ == "__main__":
    main()
