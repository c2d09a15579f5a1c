"""Batch benchmark (issue 5): 500 rows × 4 models at concurrency 8 against the fake server.

Per-request latency is drawn from a log-normal distribution (a background thread keeps
re-scripting every model's time to first token). Prints:

* wall time / ideal, where ideal = sum of the measured request latencies / concurrency
  (target <= 1.10: the scheduler keeps every slot busy);
* peak resident memory of the process;
* responsiveness while it runs: how long a ``progress()`` poll (what the page's fragment
  calls) takes, and how late a 20 ms timer in another thread wakes up (GIL pressure).

Usage: ``python benchmarks/bench_batch.py [--rows 500] [--mean-ms 150] [--concurrency 8]``.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from playground.catalog import load_catalog
from playground.evaluation.batch import BatchJob
from playground.evaluation.datasets import parse_dataset
from playground.evaluation.plan import BatchSpec, plan_batch
from playground.evaluation.templates import PromptTemplate
from playground.providers._http import RetryPolicy
from playground.providers.base import Provider
from playground.providers.elumenta import ElumentaProvider
from playground.results import ModelTarget
from playground.store import open_store
from playground.store.eval_repository import batch_cells, save_dataset, save_template_version
from tests.fake_elumenta.process import FakeServerProcess

CATALOG = load_catalog()
MODELS = ("gpt-5-nano", "claude-haiku-4.5", "gemini-2.5-flash", "deepseek-v3")


def rescript_forever(fake: FakeServerProcess, mean_ms: float, stop: threading.Event) -> None:
    """Give every model a new random time to first token every few milliseconds."""
    rng = random.Random(5)
    sigma = 0.5
    mu = math.log(mean_ms) - sigma**2 / 2
    while not stop.is_set():
        for model in MODELS:
            ttft = rng.lognormvariate(mu, sigma)
            fake.script(model, {"ttft_ms": ttft, "delay_ms": 2, "n_deltas": 8})
        stop.wait(0.01)


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
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{tmp.name}/bench.sqlite3"
    store = open_store(url)
    csv_text = "question\n" + "".join(f"Question number {i}\n" for i in range(args.rows))
    with store.session() as session, session.begin():
        version = save_template_version(session, "bench", PromptTemplate("", "{{ question }}"))
        dataset_id = save_dataset(session, "bench", parse_dataset(csv_text))
        spec = BatchSpec(
            title="bench",
            template_version_ids=(version.id,),
            dataset_id=dataset_id,
            targets=tuple(ModelTarget("elumenta", m) for m in MODELS),
            concurrency=args.concurrency,
            use_cache=True,
        )
        batch_id = plan_batch(session, spec)

    with FakeServerProcess() as fake:
        fake.set_state(quota_hour=None, quota_day=None, balance=10**9)

        def providers() -> dict[str, Provider]:
            return {
                "elumenta": ElumentaProvider(
                    api_key=SecretStr(fake.api_key),
                    base_url=fake.base_url,
                    catalog=CATALOG,
                    retry=RetryPolicy(max_retries=0),
                )
            }

        stop = threading.Event()
        scripter = threading.Thread(target=rescript_forever, args=(fake, args.mean_ms, stop))
        scripter.start()
        time.sleep(0.05)
        job = BatchJob(store, batch_id, CATALOG, providers)
        polls: list[float] = []
        lateness: list[float] = []
        prober = threading.Thread(target=probe, args=(job, stop, polls, lateness))
        started = time.perf_counter()
        job.start()
        prober.start()
        progress = job.wait()
        wall = time.perf_counter() - started
        stop.set()
        scripter.join()
        prober.join()

    with store.session() as session, session.begin():
        cells = batch_cells(session, batch_id)
    store.close()
    latencies = [c.latency_ms or 0.0 for c in cells if c.status == "completed"]
    ideal = sum(latencies) / 1000 / args.concurrency
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    polls.sort()
    lateness.sort()
    print(
        f"batch: {args.rows} rows × {len(MODELS)} models, concurrency {args.concurrency}: "
        f"{progress.completed} completed, {progress.failed} failed, status {progress.status}"
    )
    print(
        f"wall {wall:.2f} s / ideal {ideal:.2f} s (sum of latencies / concurrency) = "
        f"{wall / ideal:.3f} (target <= 1.10); mean latency {statistics.mean(latencies):.0f} ms"
    )
    print(f"peak RSS: {peak_mb:.0f} MB")
    print(
        f"responsiveness: progress() poll p50 {polls[len(polls) // 2] * 1000:.2f} ms, "
        f"p99 {polls[int(len(polls) * 0.99)] * 1000:.2f} ms; 20 ms timer late by "
        f"p50 {lateness[len(lateness) // 2] * 1000:.1f} ms, "
        f"p99 {lateness[int(len(lateness) * 0.99)] * 1000:.1f} ms"
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()
