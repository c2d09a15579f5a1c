"""The History page's reads alone, on an already loaded history: wall and CPU time per page.

    .venv/bin/python benchmarks/bench_history.py --sqlite copy-of-1m.sqlite3
    .venv/bin/python benchmarks/bench_history.py --postgres-url postgresql+psycopg://… \\
        --pg-schema bench1m
    .venv/bin/python benchmarks/bench_history.py --sqlite a.sqlite3 --code ../other-checkout

Times what the History page asks on each rerun (``history_entries``: the page of 20
entries and its capped count) for the cases bench_store times (no filter; one model, one
status and 30 days), plus a hosted viewer's page (a member of workspace 1 owning what the
history's first owner owns; bench_store writes no owners, so there it sees nothing and
times the visibility condition on an empty walk), in alternating rounds. Prints p50/p95 of
wall and CPU time (CPU: this process, so SQLite's work but only PostgreSQL's client side),
the statements a page runs, the time they spent in the database driver, and how many
statements SQLAlchemy compiled rather than found in its cache. Nothing is written; the
store's migrations run on open (use a copy, or a schema already at head).

``--code`` runs another checkout's ``playground`` package on the same data (a before/after
comparison with the same filters and seed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script: this folder is first on the path.
from loaded_history import add_history_options, history_url


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


class _Statements:
    """Statements run, driver time and compilations since the last :meth:`take`."""

    def __init__(self, engine: Any) -> None:
        import sqlalchemy as sa

        self.count = 0
        self.compiled = 0
        self.driver_s = 0.0
        self._began = 0.0

        def before(conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any):
            self.count += 1
            # CACHE_MISS is 1 in SQLAlchemy's default execution context.
            if context is not None and getattr(context, "cache_hit", None) == 1:
                self.compiled += 1
            self._began = time.perf_counter()

        def after(conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: Any):
            self.driver_s += time.perf_counter() - self._began

        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "after_cursor_execute", after)

    def take(self) -> tuple[int, int, float]:
        taken = (self.count, self.compiled, self.driver_s)
        self.count, self.compiled, self.driver_s = 0, 0, 0.0
        return taken


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_history_options(parser)
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds")
    parser.add_argument("--per-round", type=int, default=10, help="pages per case and round")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--code", type=Path, help="checkout whose playground package to time")
    args = parser.parse_args()
    sys.path.insert(0, str((args.code or Path(__file__).resolve().parents[1]).resolve()))

    import sqlalchemy as sa

    from playground.catalog import load_catalog
    from playground.principal import Principal
    from playground.store import HistoryFilter, open_store
    from playground.store.models import Comparison
    from playground.store.repository import history_entries

    # After playground: bench_store puts this checkout first on the path, but the package
    # is already imported from --code.
    sys.path.append(str(Path(__file__).resolve().parents[1]))
    from benchmarks.bench_store import month_filter

    url = history_url(parser, args)
    store = open_store(url)
    statements = _Statements(store.engine)
    rng = np.random.default_rng(args.seed)
    slugs = load_catalog().slugs
    with store.session() as session:
        owners = [
            o
            for (o,) in session.execute(
                sa.select(Comparison.owner).where(Comparison.owner.is_not(None)).distinct().limit(5)
            )
        ]
    viewer = Principal(
        user_id=1,
        subject=owners[0] if owners else "nobody",
        display_name="viewer",
        role="member",
        workspace_ids=frozenset({1}),
    )

    cases: dict[str, Callable[[], Any]] = {
        "no filter": HistoryFilter,
        "model+status+30 d": lambda: month_filter(rng, slugs),
        "hosted viewer": lambda: HistoryFilter(viewer=viewer),
    }
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    driver: dict[str, list[float]] = {name: [] for name in cases}
    shapes: dict[str, set[tuple[int, int]]] = {name: set() for name in cases}
    compiled_after_first_round: dict[str, int] = dict.fromkeys(cases, 0)
    for make in cases.values():  # warm-up: caches, imports, the page cache
        for _ in range(3):
            with store.session() as session:
                history_entries(session, make(), limit=20)
    statements.take()
    for round_no in range(args.rounds):
        for case, make in cases.items():
            for _ in range(args.per_round):
                flt = make()
                began, began_cpu = time.perf_counter(), time.process_time()
                with store.session() as session:
                    history_entries(session, flt, limit=20)
                wall[case].append((time.perf_counter() - began) * 1000)
                cpu[case].append((time.process_time() - began_cpu) * 1000)
                count, compiled, driver_s = statements.take()
                driver[case].append(driver_s * 1000)
                shapes[case].add((count, compiled))
                if round_no > 0:
                    compiled_after_first_round[case] += compiled
    print(f"== {store.backend}: {url.split('@')[-1]} ==")
    for case in cases:
        w, c, d = wall[case], cpu[case], driver[case]
        counts = sorted({n for n, _ in shapes[case]})
        print(
            f"  {case:<26} wall p50/p95 {statistics.median(w):6.1f} / {_percentile(w, 95):6.1f} ms"
            f"   CPU {statistics.median(c):6.1f} / {_percentile(c, 95):6.1f} ms"
            f"   in driver {statistics.median(d):6.1f} ms"
            f"   statements {counts}"
            f"   compiled after round 1: {compiled_after_first_round[case]}"
        )
    store.close()


if __name__ == "__main__":
    main()
