"""Load benchmark (issue 6): 20 signed-in users each running six-model comparisons at once.

The hosted app (proxy sign-in, PostgreSQL) and the fake Elumenta server run as processes;
one Chromium holds a session per user (see ``tests/e2e/load.py``). Prints time-to-first-
token as the user sees it (from pressing Run to the first answer text in the page), the
time until all six columns are done, and the app process's CPU and memory while it runs.

Needs PLAYGROUND_TEST_POSTGRES_URL (a fresh schema is created and dropped).
Usage: ``python benchmarks/bench_load.py [--users 20] [--duration 60] [--ttft-ms 100]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.hosted import hosted_app_process
from tests.e2e.load import MODELS, ProcessSample, run_load, sample_process
from tests.fake_elumenta.process import FakeServerProcess


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) by linear interpolation."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of new rounds")
    parser.add_argument("--ttft-ms", type=float, default=100.0)
    parser.add_argument("--delay-ms", type=float, default=15.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    with FakeServerProcess(log_path=work / "fake.log") as fake:
        fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
        fake.script("*", {"ttft_ms": args.ttft_ms, "delay_ms": args.delay_ms})
        with hosted_app_process(fake, work) as app:
            pid = app.process.pid
            assert pid is not None
            samples: list[ProcessSample] = []
            stop = threading.Event()
            started = time.monotonic()

            def watch() -> None:
                while not stop.wait(0.5):
                    samples.append(sample_process(pid, started))

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            baseline = sample_process(pid, started)
            load = run_load(app.url, args.users, rounds=10_000, duration_s=args.duration)
            stop.set()
            watcher.join()
            opened = load.opened_at - started
            wall = time.monotonic() - load.opened_at
            reports = load.reports

    ttft = [t for r in reports for t in r.ui_ttft_s]
    runs = [t for r in reports for t in r.run_s]
    errors = [e for r in reports for e in r.errors]
    leaks = [m for r in reports for m in r.foreign_markers_seen]
    during = [s for s in samples if s.at_s >= opened]
    cpu = during[-1].cpu_s - during[0].cpu_s if len(during) > 1 else 0.0
    print(
        f"users {args.users}, models per comparison {len(MODELS)}: all pages open after "
        f"{opened:.0f} s, then {wall:.0f} s of comparisons"
    )
    print(
        f"comparisons {len(runs)} ({len(runs) * len(MODELS)} model requests), errors {len(errors)}"
    )
    print(f"leaked markers between users: {len(leaks)}")
    repeated = sum(r.repeated_clicks for r in reports)
    print(f"Run clicks pressed again (dropped by a starved browser): {repeated}")
    if ttft:
        print(
            f"UI time to first token: p50 {percentile(ttft, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(ttft, 0.95) * 1000:.0f} ms "
            f"(server TTFT {args.ttft_ms:.0f} ms included)"
        )
        print(
            f"Run to all six done: p50 {percentile(runs, 0.5):.2f} s, "
            f"p95 {percentile(runs, 0.95):.2f} s"
        )
    if during:
        print(
            f"app process: CPU {cpu:.1f} s over {wall:.0f} s "
            f"({cpu / wall * 100:.0f}% of one core), "
            f"RSS before {baseline.rss_mb:.0f} MB, peak {max(s.rss_mb for s in during):.0f} MB, "
            f"median {statistics.median(s.rss_mb for s in during):.0f} MB"
        )
    for error in errors[:5]:
        print("error:", error)


if __name__ == "__main__":
    main()
