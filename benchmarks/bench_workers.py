"""Worker scale-out benchmark: one batch on 1, 2 and 4 queue worker processes.

A batch of 200 rows × 4 models (800 requests) runs on ``python -m playground worker``
processes (``--concurrency 4`` each) against the fake Elumenta server in a process of its
own answering after a fixed 150 ms; each run gets a fresh PostgreSQL database (so the
response cache starts empty). Prints, per worker count:

* requests/s over the whole batch (queueing to completion, as a user waits) and in the
  steady state (first to last request the fake received);
* the ideal (workers × concurrency / latency) and the scaling efficiency,
  throughput_n / (n × throughput_1);
* how the 800 cells were split between the workers, whether any was requested twice, and
  the workers' CPU time per request (on a small machine, CPU caps the scaling).

Usage: ``python benchmarks/bench_workers.py [--rows 200] [--latency-ms 150]
[--concurrency 4] [--workers 1,2,4] [--database-url postgresql+psycopg://postgres@host/db]``
(default: ``PLAYGROUND_TEST_POSTGRES_URL``). Worker logs go to a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa

from playground.config import Settings
from playground.store import open_store
from playground.store.eval_models import BatchCellRow
from playground.workers.dispatch import queue_batch
from tests.evaluation_fixtures import plan
from tests.fake_elumenta.process import FakeServerProcess
from tests.worker_fixtures import WorkerProcess, throwaway_database

MODELS = ("gpt-5-nano", "claude-haiku-4.5", "gemini-2.5-flash", "deepseek-v3")


@dataclass(frozen=True)
class Run:
    """The figures of one batch on ``workers`` processes."""

    workers: int
    cells: int
    wall_s: float
    steady_rps: float
    split: tuple[int, ...]
    duplicates: int
    cpu_ms_per_request: float
    fake_cpu_ms_per_request: float
    load: float

    @property
    def rps(self) -> float:
        """Requests per second from queueing the batch until it completed."""
        return self.cells / self.wall_s


def run_batch(
    base_url: str, fake: FakeServerProcess, workers: int, args: argparse.Namespace, logs: Path
) -> Run:
    """Start ``workers`` workers on a fresh database, run one batch, measure it."""
    fake.reset()
    fake.set_state(quota_hour=None, quota_day=None, balance=10**9)
    fake.script("*", {"ttft_ms": args.latency_ms})
    with throwaway_database(base_url, "bench_workers") as url, ExitStack() as stack:
        store = stack.enter_context(closing(open_store(url)))
        batch_id = plan(store, MODELS, rows=args.rows, concurrency=args.concurrency)
        processes = []
        for index in range(workers):
            process = WorkerProcess(
                url,
                fake,
                logs,
                concurrency=args.concurrency,
                log_path=logs / f"worker-{workers}-{index}.log",
            )
            processes.append(stack.enter_context(process))
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=url,
            batch_execution="worker",
            batch_shards=max(4, workers),
        )
        pids = [p.pid for p in processes]
        cpu_before = sum(_cpu_s(pid) for pid in pids)
        assert fake.pid is not None
        fake_before = _cpu_s(fake.pid)
        started = time.perf_counter()
        handle = queue_batch(store, settings, batch_id)
        while not handle.finished:
            time.sleep(0.02)
        wall = time.perf_counter() - started
        cpu = sum(_cpu_s(pid) for pid in pids) - cpu_before
        fake_cpu = _cpu_s(fake.pid) - fake_before
        progress = handle.progress()
        if progress.status != "completed" or progress.completed != progress.total:
            raise RuntimeError(f"the batch did not complete: {progress}")
        with store.session() as session, session.begin():
            claimers = session.scalars(
                sa.select(BatchCellRow.claimed_by).where(BatchCellRow.batch_id == batch_id)
            ).all()
    streams = [r for r in fake.requests() if r["path"].endswith("/generate/stream")]
    received = sorted(r["received_at"] for r in streams)
    asked = Counter((r["json"]["model"], r["json"]["messages"][-1]["content"]) for r in streams)
    split = Counter(str(c).rsplit("/", 1)[0] for c in claimers)
    return Run(
        workers=workers,
        cells=progress.total,
        wall_s=wall,
        steady_rps=(len(received) - 1) / (received[-1] - received[0]),
        split=tuple(sorted(split.values(), reverse=True)),
        duplicates=sum(n - 1 for n in asked.values()),
        cpu_ms_per_request=cpu * 1000 / progress.total,
        fake_cpu_ms_per_request=fake_cpu * 1000 / progress.total,
        load=os.getloadavg()[0],
    )


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per worker")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to compare")
    parser.add_argument("--database-url", default=os.environ.get("PLAYGROUND_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not args.database_url:  # `make bench` runs every benchmark; this one needs a server
        print("skipped: needs PostgreSQL (--database-url or PLAYGROUND_TEST_POSTGRES_URL)")
        return
    counts = [int(n) for n in args.workers.split(",")]
    ideal_per_worker = args.concurrency / (args.latency_ms / 1000)
    print(
        f"batch: {args.rows} rows × {len(MODELS)} models, fake latency {args.latency_ms:g} ms, "
        f"{args.concurrency} requests in flight per worker; {os.cpu_count()} CPUs"
    )
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as logs, FakeServerProcess() as fake:
        for workers in counts:
            runs.append(run_batch(args.database_url, fake, workers, args, Path(logs)))
            run = runs[-1]
            base = runs[0]
            efficiency = run.rps / (run.workers / base.workers * base.rps)
            steady_efficiency = run.steady_rps / (run.workers / base.workers * base.steady_rps)
            print(
                f"{workers} worker(s): {run.cells} requests in {run.wall_s:.1f} s = "
                f"{run.rps:.1f} req/s (steady {run.steady_rps:.1f} req/s; ideal "
                f"{workers * ideal_per_worker:.1f}); scaling efficiency {efficiency:.2f} "
                f"(steady {steady_efficiency:.2f}); cells per worker {list(run.split)}; "
                f"requested twice: {run.duplicates}; CPU per request: workers "
                f"{run.cpu_ms_per_request:.0f} ms, fake server "
                f"{run.fake_cpu_ms_per_request:.0f} ms; load average {run.load:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
