"""History-store benchmark: bulk load N results, then time the queries the UI and CLI run.

    .venv/bin/python benchmarks/bench_store.py                    # 1,000,000 results, SQLite
    .venv/bin/python benchmarks/bench_store.py --results 50000    # a quick run
    .venv/bin/python benchmarks/bench_store.py --postgres-url postgresql+psycopg://…/db
    .venv/bin/python benchmarks/bench_store.py --sqlite big.sqlite3 --reuse  # time again

With ``--reuse`` an already loaded ``--sqlite`` file (or PostgreSQL schema) is timed again
without loading: what a build of the code does to the same history (its migrations run
first, back-fills included, and are timed). ``--reuse --flat-against SMALLER`` times the
History page and the Costs queries on two loaded histories by turns (the flatness ratio,
e.g. 3M against 1M results, in one run):

    .venv/bin/python benchmarks/bench_store.py --skip-sqlite --postgres-url … \
        --pg-schema bs3m --reuse --flat-against bs1m

PostgreSQL runs in its own schema (``bench_store``, dropped and re-created), so tests can
share the database. Targets: filtered history page p95 < 100 ms, cost-by-model < 1 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_rollup_upkeep import MODELS as UPKEEP_MODELS
from benchmarks.bench_rollup_upkeep import record_comparison
from playground.catalog import load_catalog
from playground.providers.base import Message
from playground.store import (
    HistoryFilter,
    Store,
    StoreRecorder,
    count_results,
    list_results,
    open_store,
    repository,
    stats,
)
from playground.store.eval_models import PromptTemplateRow, TemplateVersionRow
from playground.store.models import Base, Comparison, Result
from playground.store.repository import (
    count_history_entries,
    list_history_entries,
    prompt_hash,
    prompt_text,
)
from playground.store.stats import (
    latency_by_model,
    model_summary,
    prompt_model_costs,
    tokens_by_day,
)

try:  # the same script measures builds before the rollups (their Costs queries above)
    from playground.store.rollups import RELATIVE_ERROR
    from playground.store.rollups import rebuild as rebuild_rollups
except ImportError:
    pass

PG_SCHEMA = "bench_store"
COMPARISONS_PER_BATCH = 2_000
# A fifth of the comparisons were run by evaluation batches, 200 dataset rows each (a
# team's history holds both; History shows each batch as one entry).
BATCH_SHARE = 0.2
BATCH_BLOCK = 200
STATUSES = ["completed", "failed", "partial", "cancelled", "interrupted", "cached"]
STATUS_WEIGHTS = [0.88, 0.05, 0.02, 0.02, 0.01, 0.02]
TAGS = [f"project-{i}" for i in range(20)]
NOW = datetime(2026, 11, 25, tzinfo=UTC)
SPAN = timedelta(days=365)


@dataclass
class Corpus:
    """Synthetic text: a Zipf-distributed vocabulary arranged in reusable sentences."""

    vocabulary: list[str]
    sentences: list[str]


def build_corpus(rng: np.random.Generator, words: int = 20_000, sentences: int = 40_000) -> Corpus:
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"] + ["qu", "th", "sh", "ch"]
    vocabulary: list[str] = []
    seen: set[str] = set()
    while len(vocabulary) < words:
        parts = rng.choice(len(syllables), size=int(rng.integers(2, 5)))
        word = "".join(syllables[p] for p in parts)
        if word not in seen:
            seen.add(word)
            vocabulary.append(word)
    weights = 1.0 / np.arange(1, words + 1) ** 1.05
    weights /= weights.sum()
    lengths = rng.integers(6, 15, size=sentences)
    picks = rng.choice(words, size=int(lengths.sum()), p=weights)
    out, at = [], 0
    for length in lengths:
        chunk = picks[at : at + length]
        at += length
        text = " ".join(vocabulary[i] for i in chunk)
        out.append(text[0].upper() + text[1:] + ".")
    return Corpus(vocabulary, out)


Rows = list[dict[str, Any]]


def generate_batches(
    total_results: int,
    rng: np.random.Generator,
    corpus: Corpus,
    batch_share: float = BATCH_SHARE,
) -> Iterator[dict[str, Rows]]:
    """Comparisons, tags and results in insert-ready batches, in chronological order, by
    table; with the evaluation batches that ran some of the comparisons (a block of
    :data:`BATCH_BLOCK` comparisons in a row, ``batch_share`` of them in all) and
    their cells, one per answer."""
    models = list(load_catalog())
    base_latency = {m.slug: 800 + 300 * i for i, m in enumerate(models)}
    # One arrival time per result, sorted; a comparison takes the time of its first result, so
    # times stay spread over the span however many results the comparisons draw.
    times = np.sort(rng.uniform(0, SPAN.total_seconds(), size=total_results))
    start = NOW - SPAN
    result_id, comparison_id, balance = 0, 0, 10_000_000
    batch_id, in_batch = 0, 0
    # The chance that a comparison outside a batch starts one.
    batch_start = batch_share / (BATCH_BLOCK * (1 - batch_share))
    while result_id < total_results:
        comparisons, tags, results, batches, cells = [], [], [], [], []
        for _ in range(COMPARISONS_PER_BATCH):
            if result_id >= total_results:
                break
            comparison_id += 1
            created = start + timedelta(seconds=float(times[result_id]))
            if in_batch == 0 and rng.random() < batch_start:
                batch_id += 1
                in_batch = BATCH_BLOCK
                batches.append(_batch_row(batch_id, created))
            row_index = BATCH_BLOCK - in_batch
            in_batch = max(in_batch - 1, 0)
            messages = (Message("user", " ".join(_sentences(rng, corpus, 1, 3))),)
            system = corpus.sentences[int(rng.integers(0, 20))] if rng.random() < 0.5 else ""
            comparisons.append(
                {
                    "id": comparison_id,
                    "created_utc": created,
                    "owner": None,
                    "title": "",
                    "system_prompt": system,
                    "messages_json": [{"role": m.role, "content": m.content} for m in messages],
                    "params_json": {"temperature": 0.7},
                    "note": "",
                    "use_cache": False,
                    "prompt_text": prompt_text(system, messages),
                    "prompt_hash": prompt_hash(system, messages),
                    "batch_id": batch_id if row_index < BATCH_BLOCK else None,
                }
            )
            if rng.random() < 0.1:
                tags.append({"comparison_id": comparison_id, "tag": TAGS[int(rng.integers(0, 20))]})
            count = min(int(rng.integers(1, 12)), total_results - result_id)
            chosen = rng.choice(len(models), size=count, replace=False)
            statuses = rng.choice(len(STATUSES), size=count, p=STATUS_WEIGHTS)
            for position, (m, s) in enumerate(zip(chosen, statuses, strict=True)):
                result_id += 1
                model, status = models[int(m)], STATUSES[int(s)]
                cached = status == "cached"
                status = "completed" if cached else status
                content = "" if status == "failed" else " ".join(_sentences(rng, corpus, 2, 9))
                ttft = float(rng.lognormal(np.log(base_latency[model.slug] / 4), 0.4))
                latency = ttft + len(content) / float(rng.uniform(150, 500)) * 1000
                charged = status in ("completed", "partial") and not cached
                balance -= model.token_cost if charged else 0
                results.append(
                    {
                        "id": result_id,
                        "comparison_id": comparison_id,
                        "position": position,
                        "provider": "elumenta",
                        "model": model.slug,
                        "target_params_json": None,
                        "params_json": {"temperature": 0.7},
                        "request_hash": f"{comparison_id:016x}{position:04x}".ljust(64, "0"),
                        "status": status,
                        "content": content,
                        "chars": len(content),
                        "chars_per_s": len(content) / max((latency - ttft) / 1000, 0.001),
                        "generation_id": f"gen_{result_id}",
                        "tokens_used": model.token_cost if status != "failed" else None,
                        "balance_remaining": balance if status != "failed" else None,
                        "price_tokens": model.token_cost,
                        "latency_ms": None if status == "failed" else latency,
                        "ttft_ms": None if status == "failed" else ttft,
                        "error_code": "provider_error" if status == "failed" else None,
                        "error_message": "Upstream failed." if status == "failed" else None,
                        "cached": cached,
                        "writer": None,
                        "created_utc": created,
                        "started_utc": created,
                        "finished_utc": created + timedelta(milliseconds=latency),
                        "updated_utc": created + timedelta(milliseconds=latency),
                    }
                )
                if row_index < BATCH_BLOCK:
                    cells.append(
                        {
                            "batch_id": batch_id,
                            "template_version_id": 1,
                            "row_index": row_index,
                            "provider": "elumenta",
                            "model": model.slug,
                            "status": "failed" if status == "failed" else "completed",
                            "attempts": 1,
                            "result_id": result_id,
                            "updated_utc": created + timedelta(milliseconds=latency),
                        }
                    )
        yield {
            "eval_batches": batches,
            "comparisons": comparisons,
            "comparison_tags": tags,
            "results": results,
            "batch_cells": cells,
        }


def _batch_row(batch_id: int, created: datetime) -> dict[str, Any]:
    """An evaluation batch's row (of the one prompt template every batch runs)."""
    return {
        "id": batch_id,
        "title": f"Batch {batch_id}",
        "owner": None,
        "dataset_id": None,
        "status": "completed",
        "spec_json": {},
        "budget_tokens": None,
        "created_utc": created,
        "updated_utc": created,
        "finished_utc": created,
    }


def _template_rows(connection: sa.Connection) -> None:
    """The prompt template (and its one version) the generated batches ran."""
    connection.execute(
        sa.insert(cast(sa.Table, PromptTemplateRow.__table__)),
        {"id": 1, "name": "bench", "owner": None, "created_utc": NOW - SPAN},
    )
    connection.execute(
        sa.insert(cast(sa.Table, TemplateVersionRow.__table__)),
        {
            "id": 1,
            "template_id": 1,
            "version": 1,
            "system_prompt": "",
            "user_prompt": "{{question}}",
            "variables_json": ["question"],
            "note": "",
            "created_utc": NOW - SPAN,
        },
    )


def _sentences(rng: np.random.Generator, corpus: Corpus, low: int, high: int) -> list[str]:
    picks = rng.integers(0, len(corpus.sentences), size=int(rng.integers(low, high + 1)))
    return [corpus.sentences[int(i)] for i in picks]


# In insert order (foreign keys).
LOADED_TABLES = ("eval_batches", "comparisons", "comparison_tags", "results", "batch_cells")


def bulk_load(
    store: Store,
    total: int,
    rng: np.random.Generator,
    corpus: Corpus,
    batch_share: float = BATCH_SHARE,
) -> float:
    """Insert everything; returns seconds spent in the database (generation excluded).

    Secondary indexes (and SQLite's full-text triggers) are dropped for the load and built
    once at the end, as a bulk import would; PostgreSQL loads with ``COPY``.
    """
    spent = 0.0
    done = 0
    began = time.perf_counter()
    with store.engine.begin() as connection:
        saved = _drop_secondary_indexes(connection)
        _template_rows(connection)
    spent += time.perf_counter() - began
    tables = Base.metadata.tables
    for rows_of in generate_batches(total, rng, corpus, batch_share):
        began = time.perf_counter()
        with store.engine.begin() as connection:
            for table in LOADED_TABLES:
                if rows_of[table]:
                    _insert(connection, tables[table], rows_of[table])
        spent += time.perf_counter() - began
        done += len(rows_of["results"])
        print(
            f"\r  loaded {done:,} results ({done / spent:,.0f}/s in the database)",
            end="",
            flush=True,
        )
    print()
    began = time.perf_counter()
    with store.engine.begin() as connection:
        for statement in saved:
            connection.exec_driver_sql(statement)
        if store.backend == "sqlite":
            for fts in ("results_fts", "comparisons_fts"):
                connection.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
    indexed = time.perf_counter() - began
    print(f"  indexes and full-text search built in {indexed:.1f} s")
    spent += indexed
    if store.backend == "postgresql":
        # Explicit ids skipped the sequences.
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            for table in ("eval_batches", "comparisons", "results"):
                c.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        # What autovacuum would do, on this schema's tables only: a database-wide VACUUM
        # also changed the state of every other loaded schema.
        settle(store)
    return spent


def _drop_secondary_indexes(connection: sa.Connection) -> list[str]:
    """Drop the loaded tables' secondary indexes (and full-text triggers); returns the
    statements that create them again."""
    names = ", ".join(f"'{t}'" for t in LOADED_TABLES)
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
            f"AND tbl_name IN ({names}) AND sql IS NOT NULL"
        ).all()
        drops = [f"DROP {kind.upper()} {name}" for kind, name, _ in rows]
    else:
        rows = connection.exec_driver_sql(
            "SELECT 'index', i.indexname, i.indexdef FROM pg_indexes i "
            f"WHERE i.schemaname = current_schema() AND i.tablename IN ({names}) "
            "AND i.indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).all()
        drops = [f"DROP INDEX {name}" for _, name, _ in rows]
    for drop in drops:
        connection.exec_driver_sql(drop)
    return [sql for _, _, sql in rows]


def _insert(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if connection.dialect.name != "postgresql":
        # Core table inserts (executemany), not the slower ORM bulk path.
        connection.execute(table.insert(), rows)
        return
    from psycopg.types.json import Jsonb

    columns = list(rows[0])
    as_json = {c.name for c in table.columns if c.name.endswith("_json")}
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [Jsonb(row[c]) if c in as_json and row[c] is not None else row[c] for c in columns]
            )


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds of each of ``repeat`` calls."""
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        out.append((time.perf_counter() - began) * 1000)
    return out


def describe(name: str, samples: list[float], target_ms: float | None = None) -> None:
    p95 = float(np.percentile(samples, 95))
    verdict = (
        "" if target_ms is None else ("  OK" if p95 < target_ms else f"  OVER {target_ms:g} ms")
    )
    print(
        f"  {name:<44} n={len(samples):<4} p50={statistics.median(samples):9.1f} ms"
        f"  p95={p95:9.1f} ms  max={max(samples):9.1f} ms{verdict}"
    )


def month_filter(rng: np.random.Generator, slugs: list[str]) -> HistoryFilter:
    """A random History filter of the filtered-page figures: one model, one status, 30 days."""
    since = NOW - SPAN + timedelta(days=float(rng.uniform(0, 330)))
    return HistoryFilter(
        models=(slugs[int(rng.integers(0, len(slugs)))],),
        statuses=(str(rng.choice(["completed", "failed"])),),
        since=since,
        until=since + timedelta(days=30),
    )


def query_benchmarks(store: Store, rng: np.random.Generator, corpus: Corpus, repeat: int) -> None:
    slugs = load_catalog().slugs

    def filtered_page() -> None:
        with store.session() as session:
            list_results(session, month_filter(rng, slugs), limit=50)

    def count_page() -> None:
        flt = HistoryFilter(models=(slugs[int(rng.integers(0, len(slugs)))],), statuses=("failed",))
        with store.session() as session:
            count_results(session, flt)

    def history_page(flt: Callable[[], HistoryFilter]) -> Callable[[], None]:
        """What the History page asks on each rerun: the count for paging, then 20 entries."""

        def run() -> None:
            with store.session() as session:
                chosen = flt()
                if hasattr(repository, "history_entries"):  # a count that stops early
                    repository.history_entries(session, chosen, limit=20)
                else:
                    count_history_entries(session, chosen)
                    list_history_entries(session, chosen, limit=20)

        return run

    def page_filter() -> HistoryFilter:
        return month_filter(rng, slugs)

    def first_and_again() -> tuple[list[float], list[float]]:
        """The History page on a new random filter, then on the same filter again: the
        first visit reads what the machine no longer holds in memory (a year of history
        is larger than it keeps cached: this VM pages out what was not touched for a
        minute), the second what the page itself costs."""
        first, again = [], []
        for _ in range(repeat):
            page = history_page(partial(lambda chosen: chosen, page_filter()))
            first.extend(timed(page, 1))
            again.extend(timed(page, 1))
        return first, again

    def first_page() -> None:
        with store.session() as session:
            list_results(session, HistoryFilter(), limit=50)

    def search(rank_low: int, rank_high: int, words: int = 1) -> Callable[[], None]:
        def run() -> None:
            terms = [
                corpus.vocabulary[int(rng.integers(rank_low, rank_high))] for _ in range(words)
            ]
            with store.session() as session:
                list_results(session, HistoryFilter(search=" ".join(terms)), limit=50)

        return run

    def aggregate(fn: Callable[..., object]) -> Callable[[], None]:
        def run() -> None:
            with store.session() as session:
                fn(session)

        return run

    describe("history page: model+status+30 days, 50 rows", timed(filtered_page, repeat), 100)
    describe("history page: no filter, 50 rows", timed(first_page, repeat))
    describe("History page + count: no filter", timed(history_page(HistoryFilter), repeat), 10)
    first, again = first_and_again()
    describe("History page + count: model+status+30 d", first, 10)
    describe("  the same filter again (its pages in memory)", again, 10)
    describe("search: common word (rank 10-100)", timed(search(10, 100), repeat))
    describe("search: mid word (rank 1k-3k)", timed(search(1_000, 3_000), repeat))
    describe("search: rare word (rank 10k-20k)", timed(search(10_000, 20_000), repeat))
    describe("search: two mid words", timed(search(500, 3_000, 2), repeat))
    describe("cost by model (model_summary, all rows)", timed(aggregate(model_summary), 5), 1000)
    describe("tokens by day (all rows)", timed(aggregate(tokens_by_day), 5))
    describe("latency p50/p95 by model (all rows)", timed(aggregate(latency_by_model), 3))
    month = HistoryFilter(since=NOW - timedelta(days=30))
    describe(
        "latency p50/p95 by model (last 30 days)",
        timed(aggregate(lambda s: latency_by_model(s, month)), 5),
    )
    describe(
        "same prompt, other models (last 30 days)",
        timed(aggregate(lambda s: prompt_model_costs(s, month)), 5),
    )
    describe("count for paging: model+status", timed(count_page, 10))
    rollup_benchmarks(store, rng, repeat)


def costs_queries() -> dict[str, Callable[..., object]]:
    """The Costs page's queries, by name: each takes a session and a filter."""
    return {
        "cost by model": stats.model_summary,
        "tokens by day": stats.tokens_by_day,
        "latency p50/p95 by model": stats.latency_by_model,
        "same prompt, other models": stats.prompt_model_costs,
        # What the page asks for (a build before the limit reads every balance).
        "balance over time": (
            partial(stats.balance_points, limit=stats.BALANCE_POINTS)
            if hasattr(stats, "BALANCE_POINTS")
            else stats.balance_points
        ),
    }


def period_filter(rng: np.random.Generator, days: int) -> HistoryFilter:
    """A random whole-days period of ``days`` within the loaded year."""
    start = NOW - SPAN + timedelta(days=int(rng.integers(0, 366 - days)))
    return HistoryFilter(since=start, until=start + timedelta(days=days))


def settle(store: Store) -> None:
    """Vacuum and analyze a PostgreSQL history's tables, so two histories compared are in
    the same state: every page all-visible, as the bulk load left the older rows.

    Without it the newest answers' pages (written four times each by the recorder
    benchmark) stayed not all-visible on the larger history only: VACUUM skips index
    cleanup when under 2 % of a table's pages hold dead items, and such pages keep their
    flag off, so the History page's index-only walk over the newest answers visited the
    heap 768 times there and never on the smaller history.
    """
    if store.backend != "postgresql":
        return
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        for table in LOADED_TABLES:
            c.exec_driver_sql(f"VACUUM (ANALYZE, INDEX_CLEANUP ON) {table}")


def flatness(small: Store, large: Store, rng: np.random.Generator, repeat: int) -> None:
    """The History page and every Costs query on two loaded histories (e.g. 1M and 3M
    results), taking turns sample by sample with the same filter on both: the larger
    one's cost as a ratio measured in one run, whatever else the machine does meanwhile
    (separate loads an hour apart differed by up to 2x for the same code and data)."""
    slugs = load_catalog().slugs

    def history_page(session: Any, flt: HistoryFilter) -> None:
        repository.history_entries(session, flt, limit=20)

    cases: list[tuple[str, Callable[[], HistoryFilter], Callable[..., object]]] = [
        ("History page + count: no filter", HistoryFilter, history_page),
        (
            "History page + count: model+status+30 d",
            lambda: month_filter(rng, slugs),
            history_page,
        ),
    ]
    for days in (30, 365):
        cases += [
            (f"Costs {name} ({days} days)", partial(period_filter, rng, days), query)
            for name, query in costs_queries().items()
        ]
    print(f"  {'':<44} {'smaller p50 / p95':>20} {'larger p50 / p95':>20}   ratio p50 / p95")
    for name, make_filter, query in cases:
        samples: dict[int, list[float]] = {id(small): [], id(large): []}
        for turn in range(repeat):
            flt = make_filter()
            for store in (small, large) if turn % 2 == 0 else (large, small):
                samples[id(store)] += timed(partial(_in_session, store, query, flt), 1)
        a, b = samples[id(small)], samples[id(large)]
        a50, a95, b50, b95 = (
            statistics.median(a),
            float(np.percentile(a, 95)),
            statistics.median(b),
            float(np.percentile(b, 95)),
        )
        print(
            f"  {name:<44} {a50:8.1f} / {a95:6.1f} ms {b50:8.1f} / {b95:6.1f} ms"
            f"   {b50 / a50:5.2f}x / {b95 / a95:5.2f}x"
        )


def rollup_benchmarks(store: Store, rng: np.random.Generator, repeat: int) -> None:
    """Every Costs query for random whole-day periods (what the page asks), and how far the
    rollups' p50/p95 are from the exact ones over the same rows (builds with rollups)."""
    queries = costs_queries()

    def whole_page(session: Any, flt: HistoryFilter) -> None:
        for query in queries.values():
            query(session, flt)

    for days in (30, 365):
        period = partial(period_filter, rng, days)
        for name, query in queries.items():
            samples = timed(lambda q=query, p=period: _in_session(store, q, p()), repeat)
            describe(f"Costs {name} ({days} days)", samples, 100)
        samples = timed(lambda p=period: _in_session(store, whole_page, p()), repeat)
        describe(f"Costs page, all five queries ({days} days)", samples)
    if not hasattr(stats, "from_rollups"):
        return  # a build before the rollups: nothing to compare with the exact figures
    whole = HistoryFilter(since=NOW - SPAN, until=NOW + timedelta(days=1))
    exact = replace(whole, since=whole.since + timedelta(seconds=1))
    with store.session() as session:
        rolled, counted = (stats.latency_by_model(session, f) for f in (whole, exact))
    columns = [c for c in rolled.columns if c.startswith(("p50_", "p95_"))]
    error = (rolled[columns] - counted[columns]).abs() / counted[columns]
    print(
        f"  rollup vs exact p50/p95 over {len(rolled)} models: largest relative error "
        f"{float(error.max().max()):.3%} (stated bound {RELATIVE_ERROR:.2%})"
    )


def _in_session(store: Store, query: Callable[..., object], flt: HistoryFilter) -> None:
    with store.session() as session:
        query(session, flt)


def recorder_benchmark(store: Store, runs: int = 200) -> None:
    """The runner's real write path: start, started, 2 flushes, finished per result."""
    recorder = StoreRecorder(store.engine, load_catalog().cost_of)
    began = time.perf_counter()
    for run in range(runs):
        record_comparison(recorder, run)
    seconds = time.perf_counter() - began
    transactions = runs * (1 + len(UPKEEP_MODELS) * 4)
    print(
        f"  recorder path: {runs * len(UPKEEP_MODELS) / seconds:,.0f} results/s, "
        f"{transactions / seconds:,.0f} transactions/s "
        f"({seconds * 1000 / transactions:.2f} ms each)"
    )


def run_backend(label: str, url: str, args: argparse.Namespace) -> None:
    print(f"\n== {label}: {args.results:,} results ==")
    rng = np.random.default_rng(args.seed)
    corpus = build_corpus(rng)
    began = time.perf_counter()
    # No statement timeout: index builds after a bulk load (and migrations back-filling
    # millions of rows) run for minutes, which the app's 30 s default would cancel.
    store = open_store(url, statement_timeout_s=0)
    if args.reuse:
        print(f"  opened (migrations included) in {time.perf_counter() - began:.1f} s")
        try:
            with store.session() as session:
                loaded = session.scalar(sa.select(sa.func.count()).select_from(Result))
            print(f"  reusing {loaded:,} results")
            query_benchmarks(store, rng, corpus, args.repeat)
            recorder_benchmark(store)
        finally:
            store.close()
        return
    try:
        generation_began = time.perf_counter()
        spent = bulk_load(store, args.results, rng, corpus, args.batch_share)
        total = time.perf_counter() - generation_began
        with store.session() as session:
            comparisons = session.scalar(sa.select(sa.func.count()).select_from(Comparison))
        print(
            f"  bulk insert: {args.results / spent:,.0f} results/s in the database "
            f"({spent:.1f} s; {total:.1f} s with generation); {comparisons:,} comparisons"
        )
        if hasattr(stats, "from_rollups"):
            began = time.perf_counter()
            with store.session() as session, session.begin():
                rebuild_rollups(session)
            print(f"  rollups back-filled in {time.perf_counter() - began:.1f} s")
        if store.backend == "sqlite":
            size = Path(make_url(url).database or "").stat().st_size
            print(f"  database file: {size / 1e9:.2f} GB")
        query_benchmarks(store, rng, corpus, args.repeat)
        recorder_benchmark(store)
    finally:
        store.close()


def _pg_schema_url(base: str, schema: str = PG_SCHEMA, reuse: bool = False) -> str:
    if not reuse:
        admin = sa.create_engine(base)
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=int, default=1_000_000, help="results to generate")
    parser.add_argument("--sqlite", type=Path, help="SQLite file (default: a temporary file)")
    parser.add_argument("--skip-sqlite", action="store_true", help="only run PostgreSQL")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("PLAYGROUND_BENCH_POSTGRES_URL"),
        help="PostgreSQL URL (or PLAYGROUND_BENCH_POSTGRES_URL); schema bench_store is replaced",
    )
    parser.add_argument("--repeat", type=int, default=50, help="timed runs per query")
    parser.add_argument(
        "--batch-share",
        type=float,
        default=BATCH_SHARE,
        help="share of the comparisons run by evaluation batches (0: none, as before 0014)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pg-schema", default=PG_SCHEMA, help="PostgreSQL schema to use")
    parser.add_argument(
        "--reuse", action="store_true", help="time an already loaded --sqlite file / PG schema"
    )
    parser.add_argument(
        "--flat-against",
        metavar="SMALLER",
        help="with --reuse: an already loaded smaller history (a SQLite file, or a PostgreSQL "
        "schema with --postgres-url) timed by turns with the --sqlite file / --pg-schema, "
        "which is the larger: only the flatness figures are printed",
    )
    args = parser.parse_args()
    if args.flat_against:
        if not args.reuse:
            sys.exit("--flat-against compares two loaded histories: pass --reuse too.")
        if args.postgres_url:
            urls = [
                _pg_schema_url(args.postgres_url, schema, reuse=True)
                for schema in (args.flat_against, args.pg_schema)
            ]
        elif args.sqlite:
            urls = [f"sqlite:///{path}" for path in (args.flat_against, args.sqlite)]
        else:
            sys.exit("--flat-against needs --sqlite FILE or --postgres-url with --pg-schema.")
        stores = [open_store(url, statement_timeout_s=0) for url in urls]
        try:
            for store in stores:
                settle(store)
            sizes = []
            for store in stores:
                with store.session() as session:
                    sizes.append(session.scalar(sa.select(sa.func.count()).select_from(Result)))
            print(f"\n== flatness: {sizes[0]:,} results against {sizes[1]:,}, by turns ==")
            flatness(stores[0], stores[1], np.random.default_rng(args.seed), args.repeat)
        finally:
            for store in stores:
                store.close()
        return

    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
            path = args.sqlite or Path(tmp) / "history.sqlite3"
            if path.exists() and not args.reuse:
                sys.exit(f"{path} exists; pass a new file so the load starts from empty.")
            run_backend("SQLite", f"sqlite:///{path}", args)
    if args.postgres_url:
        url = _pg_schema_url(args.postgres_url, args.pg_schema, args.reuse)
        run_backend("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
