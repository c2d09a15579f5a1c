"""What keeping the usage rollups costs the recorder path, per result.

    .venv/bin/python benchmarks/bench_rollup_upkeep.py                     # fresh SQLite file
    .venv/bin/python benchmarks/bench_rollup_upkeep.py --sqlite big.sqlite3 # a loaded history
    .venv/bin/python benchmarks/bench_rollup_upkeep.py --postgres-url postgresql+psycopg://…
    .venv/bin/python benchmarks/bench_rollup_upkeep.py --final-writes 1500  # and the write alone

Runs the runner's real write path (a comparison of 3 models; per result: started, two
flushes, finished) in rounds, alternately with the rollups kept (the recorder as shipped)
and without (the rollup upkeep around each final write replaced by nothing), and prints
each variant's median wall and CPU time per result and the upkeep's share of the path
without rollups, then the median of that share over pairs of neighbouring rounds.
Alternating rounds in one run keeps a shared machine's load changes out of the ratio; the
paired figure also keeps out its slow drift (use many small rounds for it:
``--rounds 60 --comparisons 10``). The rows written are left in place (``--sqlite``/
PostgreSQL: a copy or a throwaway schema is the caller's choice); rollups written without
upkeep are rebuilt at the end so the store stays consistent. ``--final-writes N`` also
times a result's final write alone, N each way in alternating blocks, each in its own
transaction: the plain update against the update keeping the rollups in step, the part of
the path the upkeep is in, without the rest of the path's noise.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.catalog import load_catalog
from playground.providers.base import GenerationParams, Message
from playground.results import CompareRequest, ModelResult, ModelTarget
from playground.store import Store, StoreRecorder, open_store, rollups
from playground.store import recorder as recorder_module
from playground.store import spool as spool_module
from playground.store.spool import RowUpdate, apply_update

MODELS = ("gpt-5", "claude-haiku-4.5", "deepseek-v3")


@contextlib.contextmanager
def _no_upkeep(_session: Any, _rows: Any) -> Iterator[None]:
    yield


def _update_without_upkeep(session: Any, _row_id: int, write: Any, params: Any) -> None:
    """The final write as it would be without rollups: the plain update, nothing returned."""
    session.execute(write.update, params)


def one_round(store: Store, comparisons: int, keep_rollups: bool) -> tuple[float, float]:
    """Wall and CPU seconds per result of ``comparisons`` comparisons of :data:`MODELS`."""
    recorder = StoreRecorder(store.engine, load_catalog().cost_of)
    original, original_update = recorder_module.kept_in_step, spool_module.updated_in_step
    if not keep_rollups:
        recorder_module.kept_in_step = _no_upkeep  # type: ignore[assignment]
        spool_module.updated_in_step = _update_without_upkeep
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        for run in range(comparisons):
            record_comparison(recorder, run)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        recorder_module.kept_in_step = original
        spool_module.updated_in_step = original_update
    results = comparisons * len(MODELS)
    return wall / results, cpu / results


def started_results(recorder: StoreRecorder, prompt: str) -> Iterator[ModelResult]:
    """A comparison of :data:`MODELS` on ``prompt`` started as the runner starts one, and
    each model's result once its row is written (running, with its row id)."""
    request = CompareRequest(
        messages=(Message("user", prompt),),
        targets=tuple(ModelTarget("elumenta", m) for m in MODELS),
        params=GenerationParams(temperature=0.7),
    )
    comparison_id = recorder.start_comparison(request)
    for index, model in enumerate(MODELS):
        generation = request.generation_request(index)
        result = ModelResult(
            index=index,
            provider="elumenta",
            model=model,
            params=generation.params,
            request_hash=generation.request_hash("elumenta"),
            status="running",
        )
        yield replace(result, result_id=recorder.record_started(comparison_id, result))


def record_comparison(recorder: StoreRecorder, run: int) -> None:
    """The runner's real write path for one comparison of :data:`MODELS`: start, then per
    model started, two progress flushes and finished (with a latency, so timings count)."""
    for result in started_results(recorder, f"Upkeep prompt {run}"):
        for part in ("Half an ", "Half an answer, more "):
            recorder.record_progress(replace(result, content=part))
        recorder.record_finished(
            replace(
                result,
                status="completed",
                content="Done.",
                tokens_used=2,
                latency_ms=900.0 + 37 * run % 800,
                ttft_ms=200.0 + 13 * run % 300,
            )
        )


def final_writes(store: Store, count: int) -> None:
    """Time ``count`` final writes each way, alternating in blocks of 25, each in its own
    transaction as the recorder's is: the plain update, and the update keeping the rollups
    in step (as shipped). Prints each way's median wall and CPU time and the upkeep's."""
    recorder = StoreRecorder(store.engine, load_catalog().cost_of)
    rows = [
        result.result_id
        for number in range(-(-count * 2 // len(MODELS)))
        for result in started_results(recorder, f"Final write {number}")
    ]
    now = datetime.now(UTC)
    values = {
        "status": "completed",
        "content": "Done.",
        "tokens_used": 2,
        "latency_ms": 900.0,
        "ttft_ms": 200.0,
        "finished_utc": now,
        "updated_utc": now,
    }
    samples: dict[bool, tuple[list[float], list[float]]] = {True: ([], []), False: ([], [])}
    original = spool_module.updated_in_step
    try:
        for block, start in enumerate(range(0, len(rows), 25)):
            keep = block % 2 == 0
            spool_module.updated_in_step = original if keep else _update_without_upkeep
            for row_id in rows[start : start + 25]:
                wall, cpu = time.perf_counter(), time.process_time()
                with store.engine.begin() as connection:
                    apply_update(connection, RowUpdate("results", row_id, values))
                samples[keep][0].append(time.perf_counter() - wall)
                samples[keep][1].append(time.process_time() - cpu)
    finally:
        spool_module.updated_in_step = original
    wall_on, cpu_on = (statistics.median(t) * 1000 for t in samples[True])
    wall_off, cpu_off = (statistics.median(t) * 1000 for t in samples[False])
    print(
        f"  final write alone ({len(samples[True][0])} each way): plain update wall "
        f"{wall_off:.3f} ms, CPU {cpu_off:.3f} ms; keeping the rollups wall {wall_on:.3f} ms, "
        f"CPU {cpu_on:.3f} ms; upkeep wall {wall_on - wall_off:+.3f} ms, "
        f"CPU {cpu_on - cpu_off:+.3f} ms"
    )


def run(url: str, rounds: int, comparisons: int, final: int = 0) -> None:
    store = open_store(url)
    try:
        with store.session() as session:
            loaded = session.scalar(sa.text("SELECT count(*) FROM results"))
        print(f"  {store.backend}: {loaded:,} results already stored")
        one_round(store, 20, True)  # warm-up: statements compiled, caches filled
        one_round(store, 20, False)
        samples: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for index in range(rounds):
            order = (True, False) if index % 2 == 0 else (False, True)
            for keep in order:
                samples[keep].append(one_round(store, comparisons, keep))
        figures = {}
        for keep, label in ((False, "without rollups"), (True, "with rollups")):
            wall = statistics.median(s[0] for s in samples[keep]) * 1000
            cpu = statistics.median(s[1] for s in samples[keep]) * 1000
            figures[keep] = (wall, cpu)
            print(f"  {label:<16} wall {wall:6.3f} ms/result  CPU {cpu:6.3f} ms/result")
        (wall_on, cpu_on), (wall_off, cpu_off) = figures[True], figures[False]
        print(
            f"  rollup upkeep per result: wall {wall_on - wall_off:+.3f} ms "
            f"({(wall_on - wall_off) / wall_off:+.1%} of the path without rollups), "
            f"CPU {cpu_on - cpu_off:+.3f} ms ({(cpu_on - cpu_off) / cpu_off:+.1%})"
        )
        # Each round with upkeep against the round without it run next to it: a shared
        # machine's (and the database's) slow drift cancels out of each pair.
        pairs = list(zip(samples[True], samples[False], strict=True))
        shares = [statistics.median((on[i] - off[i]) / off[i] for on, off in pairs) for i in (0, 1)]
        print(
            f"  paired rounds (median of {len(pairs)}): wall {shares[0]:+.1%}, CPU {shares[1]:+.1%}"
        )
        if final:
            final_writes(store, final)
        # Rounds without upkeep left results outside the rollups: count them again.
        with store.session() as session, session.begin():
            rollups.rebuild(session)
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sqlite", type=Path, help="SQLite file (default: a new temporary one)")
    parser.add_argument("--postgres-url", help="PostgreSQL URL (its schema is written to)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds of each variant")
    parser.add_argument("--comparisons", type=int, default=50, help="comparisons per round")
    parser.add_argument(
        "--final-writes", type=int, default=0, help="also time this many final writes each way"
    )
    args = parser.parse_args()
    if args.postgres_url:
        run(args.postgres_url, args.rounds, args.comparisons, args.final_writes)
        return
    with tempfile.TemporaryDirectory(prefix="bench_upkeep_") as tmp:
        path = args.sqlite or Path(tmp) / "history.sqlite3"
        url = f"sqlite:///{make_url(f'sqlite:///{path}').database}"
        run(url, args.rounds, args.comparisons, args.final_writes)


if __name__ == "__main__":
    main()
