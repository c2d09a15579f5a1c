"""Outage benchmark (issue 18): PostgreSQL cut for 3, 10 and 30 s while answers stream.

A fault proxy (tests/fault_proxy.py) sits between the playground and PostgreSQL; the
database is taken away by cutting every connection and refusing new ones, never by
restarting the server. Two workloads, each with the outage starting once it is under way:

* six-way compares, one after another (as a user on the Compare page or the CLI);
* a 500-cell batch (125 rows × 4 models, concurrency 8) run in process.

The fake Elumenta server (its own process) answers with modest latency. Prints, per
workload and outage length:

* answers lost: answers that arrived (a final result the runner saw) but are not in history
  with their full text afterwards — must be 0;
* requests asked twice: requests to the fake beyond one per (model, prompt) — must be at
  most the requests in flight when the database went away (also printed);
* time from the database's return until every answer waiting for it was written.

A last run of compares cuts for 30 s with ``--short-wait`` (default 10 s) as the outage
wait, so answers go to the spool file and are replayed when the database returns. (A batch
whose database stays away longer than the wait stops, and is resumed by hand.)

Usage: ``python benchmarks/bench_outage.py --database-url postgresql+psycopg://…/db
[--outages 3,10,30] [--rows 125]``. The run uses a throwaway schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sqlalchemy as sa
from pydantic import SecretStr

from benchmarks._common import exit_on_sigterm, fresh_database
from playground.catalog import load_catalog
from playground.datasets import parse_dataset
from playground.errors import PlaygroundError
from playground.evaluation.batch import BatchJob
from playground.evaluation.plan import BatchSpec, plan_batch
from playground.providers._http import RetryPolicy
from playground.providers.base import Message, Provider
from playground.providers.elumenta import ElumentaProvider
from playground.results import CompareRequest, ModelTarget
from playground.runner import ModelFinished, ModelStarted, RunEvent, Runner
from playground.store import Store, StoreRecorder, open_store
from playground.store.eval_repository import batch_cells, save_dataset, save_template_version
from playground.store.models import Result
from playground.templates import PromptTemplate
from playground.unsaved import unsaved
from tests.fake_elumenta.process import FakeServerProcess
from tests.fault_proxy import FaultProxy, proxied

CATALOG = load_catalog()
SIX = ("gpt-5-nano", "claude-haiku-4.5", "gemini-2.5-flash", "deepseek-v3", "grok-4-fast", "gpt-5")
BATCH_MODELS = SIX[:4]
# About 0.3 s per answer: a first token after 60 ms, then 8 pieces 30 ms apart.
SCRIPT = {"ttft_ms": 60, "n_deltas": 8, "delay_ms": 30}


@dataclass
class Figures:
    """What one run measured."""

    workload: str
    outage_s: float
    arrived: int
    lost: int
    asked_twice: int
    in_flight_at_cut: int
    written_after_return_s: float
    spooled: bool = False

    def line(self) -> str:
        spool = " (via the spool)" if self.spooled else ""
        verdict = "OK" if self.lost == 0 and self.asked_twice <= self.in_flight_at_cut else "FAIL"
        return (
            f"{self.workload:<16} outage {self.outage_s:>4.0f} s{spool}: {self.arrived} answers, "
            f"lost {self.lost}, asked twice {self.asked_twice} (in flight at the cut "
            f"{self.in_flight_at_cut}), all written {self.written_after_return_s:.2f} s after "
            f"the database returned [{verdict}]"
        )


class InFlight:
    """Requests started and not finished, counted from the runner's events."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.now = 0

    def __call__(self, event: RunEvent) -> None:
        with self._lock:
            if isinstance(event, ModelStarted):
                self.now += 1
            elif isinstance(event, ModelFinished):
                self.now -= 1


def asked_twice(fake: FakeServerProcess) -> int:
    keys = Counter(
        (r["json"]["model"], r["json"]["messages"][-1]["content"])
        for r in fake.requests()
        if r["path"].endswith("/generate/stream")
    )
    return sum(count - 1 for count in keys.values())


def written_after(returned_at: float, timeout_s: float = 120.0) -> float:
    """Seconds from ``returned_at`` until no answer waits in memory or in the spool."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = unsaved()
        if not state.alarming and state.waiting == 0:
            return time.monotonic() - returned_at
        if time.monotonic() > deadline:
            raise SystemExit(f"answers still waiting {timeout_s:g} s after the return: {state}")
        time.sleep(0.01)


def take_away(proxy: FaultProxy, seconds: float) -> float:
    """Cut the database for ``seconds`` (blocking); returns when it came back (monotonic)."""
    proxy.outage()
    time.sleep(seconds)
    proxy.restore()
    return time.monotonic()


def providers(fake: FakeServerProcess) -> dict[str, Provider]:
    return {
        "elumenta": ElumentaProvider(
            api_key=SecretStr(fake.api_key),
            base_url=fake.base_url,
            catalog=CATALOG,
            retry=RetryPolicy(max_retries=0),
        )
    }


def compares(
    store: Store, proxy: FaultProxy, fake: FakeServerProcess, outage_s: float, tag: str
) -> Figures:
    """Six-way compares back to back; the database goes away for ``outage_s`` about 1 s in,
    while a compare streams."""
    runner = Runner(CATALOG, flush_interval_s=0.1)
    recorder = StoreRecorder(store.engine, CATALOG.cost_of, writes=store.writes)
    clients = providers(fake)
    in_flight = InFlight()
    stop = threading.Event()
    handles = []

    def ask() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            request = CompareRequest(
                messages=(Message("user", f"{tag} question {number}"),),
                targets=tuple(ModelTarget("elumenta", m) for m in SIX),
            )
            try:
                handle = runner.start(request, clients, recorder=recorder, on_event=in_flight)
            except PlaygroundError:  # the database stayed away past the wait: try again
                time.sleep(0.5)
                continue
            handles.append(handle)
            handle.wait(120)

    asker = threading.Thread(target=ask)
    asker.start()
    time.sleep(1.0)
    while in_flight.now < len(SIX):  # cut while a compare streams
        time.sleep(0.005)
    cut_in_flight = in_flight.now
    returned = take_away(proxy, outage_s)
    written = written_after(returned)
    time.sleep(1.0)
    stop.set()
    asker.join()
    written = max(written, 0.0)
    arrived = {
        h.comparison_id * 100 + r.index: r
        for h in handles
        for r in h.snapshot().results
        if r.status == "completed" and h.comparison_id is not None
    }
    with store.session() as session:
        stored = {
            row.comparison_id * 100 + row.position: row
            for row in session.scalars(sa.select(Result).where(Result.status == "completed"))
        }
    lost = sum(
        key not in stored or stored[key].content != result.content
        for key, result in arrived.items()
    )
    for client in clients.values():
        runner.run_coroutine(client.aclose(), timeout=5)
    runner.close()
    return Figures(
        "six-way compare",
        outage_s,
        len(arrived),
        lost,
        asked_twice(fake),
        cut_in_flight,
        written,
        spooled=store.writes.wait_s < outage_s,
    )


def batch(
    store: Store, proxy: FaultProxy, fake: FakeServerProcess, outage_s: float, rows: int, tag: str
) -> Figures:
    """A ``rows`` × 4 batch at concurrency 8; the database goes away at a third of it."""
    csv_text = "question\n" + "".join(f"{tag} question {i}\n" for i in range(rows))
    with store.session() as session, session.begin():
        version = save_template_version(session, tag, PromptTemplate("", "{{ question }}"))
        dataset_id = save_dataset(session, tag, parse_dataset(csv_text))
        batch_id = plan_batch(
            session,
            BatchSpec(
                title=tag,
                template_version_ids=(version.id,),
                dataset_id=dataset_id,
                targets=tuple(ModelTarget("elumenta", m) for m in BATCH_MODELS),
                concurrency=8,
            ),
        )
    job = BatchJob(store, batch_id, CATALOG, lambda: providers(fake)).start()
    total = rows * len(BATCH_MODELS)
    while job.progress().done < total // 3:
        time.sleep(0.01)
    cut_in_flight = job.progress().running
    returned = take_away(proxy, outage_s)
    written = written_after(returned)
    progress = job.wait(600)
    with store.session() as session, session.begin():
        cells = batch_cells(session, batch_id)
    lost = sum(c.status != "completed" for c in cells)
    if progress.status != "completed":
        print(f"  batch ended {progress.status}: {progress.message}")
    return Figures(
        f"{total}-cell batch",
        outage_s,
        sum(c.status == "completed" for c in cells),
        lost,
        asked_twice(fake),
        cut_in_flight,
        written,
        spooled=store.writes.wait_s < outage_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("PLAYGROUND_TEST_POSTGRES_URL"))
    parser.add_argument("--outages", default="3,10,30")
    parser.add_argument("--rows", type=int, default=125)
    parser.add_argument("--short-wait", type=float, default=10.0)
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit(
            "give --database-url postgresql+psycopg://… (or PLAYGROUND_TEST_POSTGRES_URL)"
        )
    exit_on_sigterm()
    # The outage's own warnings (a watcher's failed heartbeat, …) would bury the figures.
    logging.disable(logging.WARNING)
    outages = [float(s) for s in args.outages.split(",")]
    # (outage, outage wait, workloads): the last run outlasts the wait, so answers are spooled.
    runs = [(s, 60.0, ("compare", "batch")) for s in outages]
    runs.append((max(outages), args.short_wait, ("compare",)))
    results: list[Figures] = []
    with (
        fresh_database(args.database_url, "bench_outage") as url,
        proxied(url) as (proxy, via_proxy),
        FakeServerProcess() as fake,
        tempfile.TemporaryDirectory() as spool_dir,
    ):
        fake.set_state(quota_hour=None, quota_day=None, balance=10**9)
        fake.script("*", SCRIPT)
        open_store(via_proxy).close()
        for number, (outage_s, wait_s, workloads) in enumerate(runs):
            for workload in workloads:
                fake.reset()
                fake.set_state(quota_hour=None, quota_day=None, balance=10**9)
                fake.script("*", SCRIPT)
                store = open_store(via_proxy, spool_dir=Path(spool_dir), outage_wait_s=wait_s)
                tag = f"run{number}-{workload}"
                try:
                    if workload == "compare":
                        figures = compares(store, proxy, fake, outage_s, tag)
                    else:
                        figures = batch(store, proxy, fake, outage_s, args.rows, tag)
                finally:
                    store.close()
                print(figures.line(), flush=True)
                results.append(figures)
    bad = [f for f in results if f.lost or f.asked_twice > f.in_flight_at_cut]
    if bad:
        raise SystemExit(f"{len(bad)} run(s) lost answers or asked too often")


if __name__ == "__main__":
    main()
