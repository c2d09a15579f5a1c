"""Batch benchmark (issue 5): 500 rows × 4 models at concurrency 8 against the fake server.

Per-request latency is drawn from a log-normal distribution (a background thread keeps
re-scripting every model's time to first token). Prints:

* wall time / ideal, where ideal = sum of the measured request latencies / concurrency
  (target <= 1.10: the scheduler keeps every slot busy);
* peak resident memory of the process;
* responsiveness while it runs: how long a ``progress()`` poll (what the page's fragment
  calls) takes, and how late a 20 ms timer in another thread wakes up (GIL pressure).

Usage: ``python benchmarks/bench_batch.py [--rows 500] [--mean-ms 150] [--concurrency 8]
[--database-url postgresql+psycopg://…/db]``. PostgreSQL runs in a schema of its own
(``bench_batch_<pid>``), dropped afterwards, so tests and other benchmarks can share the
database. ``bench_batch_ui.py`` runs the same batch in the app, watched in Chromium.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from benchmarks._common import exit_on_sigterm, fresh_database
from playground.catalog import load_catalog
from playground.datasets import parse_dataset
from playground.evaluation.batch import BatchJob
from playground.evaluation.plan import BatchSpec, plan_batch
from playground.providers._http import RetryPolicy
from playground.providers.base import Provider
from playground.providers.elumenta import ElumentaProvider
from playground.results import ModelTarget
from playground.store import Store, open_store
from playground.store.eval_repository import (
    CellState,
    batch_cells,
    save_dataset,
    save_template_version,
)
from playground.templates import PromptTemplate
from tests.fake_elumenta.process import FakeServerProcess

CATALOG = load_catalog()
MODELS = ("gpt-5-nano", "claude-haiku-4.5", "gemini-2.5-flash", "deepseek-v3")
TEMPLATE = "bench"


def rescript_forever(
    fake: FakeServerProcess, mean_ms: float, stop: threading.Event, interval_s: float = 0.01
) -> None:
    """Give every model a new random time to first token every ``interval_s`` until ``stop``."""
    rng = random.Random(5)
    sigma = 0.5
    mu = math.log(mean_ms) - sigma**2 / 2
    while not stop.is_set():
        for model in MODELS:
            ttft = rng.lognormvariate(mu, sigma)
            fake.script(model, {"ttft_ms": ttft, "delay_ms": 2, "n_deltas": 8})
        stop.wait(interval_s)


@contextmanager
def random_latencies(
    fake: FakeServerProcess, mean_ms: float, interval_s: float = 0.01
) -> Iterator[None]:
    """Inside: the fake answers with log-normal times to first token (mean ``mean_ms``) and
    no account limits (quota, balance) to get in the way."""
    fake.set_state(quota_hour=None, quota_day=None, balance=10**9)
    stop = threading.Event()
    scripter = threading.Thread(target=rescript_forever, args=(fake, mean_ms, stop, interval_s))
    scripter.start()
    time.sleep(0.05)  # every model scripted before the first request
    try:
        yield
    finally:
        stop.set()
        scripter.join()


def save_inputs(store: Store, rows: int) -> tuple[int, int]:
    """Save the template ``bench`` (``{{ question }}``) and a dataset of ``rows`` distinct
    questions; returns ``(template version id, dataset id)``."""
    csv_text = "question\n" + "".join(f"Question number {i}\n" for i in range(rows))
    with store.session() as session, session.begin():
        version = save_template_version(session, TEMPLATE, PromptTemplate("", "{{ question }}"))
        return version.id, save_dataset(session, TEMPLATE, parse_dataset(csv_text))


def wall_against_ideal(cells: list[CellState], concurrency: int, wall_s: float) -> str:
    """The batch's efficiency: wall time over the ideal (the completed cells' latencies /
    ``concurrency``, every slot always busy), and the mean latency, as one line."""
    latencies = [c.latency_ms or 0.0 for c in cells if c.status == "completed"]
    ideal = sum(latencies) / 1000 / concurrency
    return (
        f"wall {wall_s:.2f} s / ideal {ideal:.2f} s (sum of latencies / concurrency) = "
        f"{wall_s / ideal:.3f} (target <= 1.10); mean latency {statistics.mean(latencies):.0f} ms"
    )


def probe(job: BatchJob, stop: threading.Event, polls: list[float], lateness: list[float]) -> None:
    """Measure a progress() poll and a 20 ms timer's lateness until ``stop``."""
    while not stop.is_set():
        started = time.perf_counter()
        job.progress()
        polls.append(time.perf_counter() - started)
        before = time.perf_counter()
        time.sleep(0.02)
        lateness.append(time.perf_counter() - before - 0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--mean-ms", type=float, default=150.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--database-url",
        default=None,
        help="PostgreSQL URL: the batch runs in a throwaway schema of that database; "
        "default: a temporary SQLite file",
    )
    args = parser.parse_args()
    exit_on_sigterm()

    with fresh_database(args.database_url, "bench_batch") as url:
        store = open_store(url)
        version_id, dataset_id = save_inputs(store, args.rows)
        spec = BatchSpec(
            title="bench",
            template_version_ids=(version_id,),
            dataset_id=dataset_id,
            targets=tuple(ModelTarget("elumenta", m) for m in MODELS),
            concurrency=args.concurrency,
            use_cache=True,
        )
        with store.session() as session, session.begin():
            batch_id = plan_batch(session, spec)

        with FakeServerProcess() as fake, random_latencies(fake, args.mean_ms):

            def providers() -> dict[str, Provider]:
                return {
                    "elumenta": ElumentaProvider(
                        api_key=SecretStr(fake.api_key),
                        base_url=fake.base_url,
                        catalog=CATALOG,
                        retry=RetryPolicy(max_retries=0),
                    )
                }

            job = BatchJob(store, batch_id, CATALOG, providers)
            stop = threading.Event()
            polls: list[float] = []
            lateness: list[float] = []
            prober = threading.Thread(target=probe, args=(job, stop, polls, lateness))
            started = time.perf_counter()
            job.start()
            prober.start()
            try:
                progress = job.wait()
                wall = time.perf_counter() - started
            finally:
                stop.set()
                prober.join()
                if not job.finished:  # interrupted: stop writing before the database goes
                    job.cancel()
                    job.wait(10)

        with store.session() as session, session.begin():
            cells = batch_cells(session, batch_id)
        store.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    polls.sort()
    lateness.sort()
    print(
        f"batch: {args.rows} rows × {len(MODELS)} models, concurrency {args.concurrency}, "
        f"{store.backend}: {progress.completed} completed, {progress.failed} failed, "
        f"status {progress.status}"
    )
    print(wall_against_ideal(cells, args.concurrency, wall))
    print(f"peak RSS: {peak_mb:.0f} MB")
    print(
        f"responsiveness: progress() poll p50 {polls[len(polls) // 2] * 1000:.2f} ms, "
        f"p99 {polls[int(len(polls) * 0.99)] * 1000:.2f} ms; 20 ms timer late by "
        f"p50 {lateness[len(lateness) // 2] * 1000:.1f} ms, "
        f"p99 {lateness[int(len(lateness) * 0.99)] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
