"""Load benchmark (issue 6): 20 signed-in users each running six-model comparisons at once.

The hosted app (proxy sign-in, PostgreSQL) and the fake Elumenta server run as processes.
``--client ws`` (the default) plays each user as a WebSocket session speaking Streamlit's
own protocol (``tests/e2e/load_ws.py``): light, so the machine's cores go to the app.
``--client browser`` gives each user a Chromium tab (``tests/e2e/load_browser.py``): what
people run, but 20 tabs saturate a 2-core machine by themselves.

Prints the comparisons finished and the model requests the fake received, errors, markers
leaked between users, time-to-first-token as the user sees it (from pressing Run to a
model's first answer text on the page) beside the runner's own (request sent to first
text, from the history), the time until all six columns are done, the median time from
Run to each stage of a round (``load_ws.STAGES``: where the time to first text goes), and
the app process's CPU and memory (before the users arrive, and while they run).

Each path in ``--paths`` is measured in turn, in the same run, on a fresh app process:
``polling`` (``PLAYGROUND_LIVE_ROUTE=false``: the page redraws live columns from a polled
fragment, the path before the live route) and ``live`` (the browser follows each run's
event stream; the client reads it as a live column does). Compare their ratios, not
absolute figures from different runs.

Needs PLAYGROUND_TEST_POSTGRES_URL (a fresh schema is created and dropped).
Usage: ``python benchmarks/bench_load.py [--client ws|browser] [--users 20] [--duration 60]
[--ttft-ms 100] [--delay-ms 15] [--requests-per-minute 10000] [--think-s 0]
[--paths polling,live] [--max-streams N]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import exit_on_sigterm
from tests.e2e.hosted import hosted_app_process
from tests.e2e.load import (
    ProcessWatcher,
    describe_load,
    first_text_path,
    model_requests,
    recorded_deltas,
    recorded_ttft_ms,
)
from tests.e2e.load_browser import run_browser_load
from tests.e2e.load_ws import run_ws_load
from tests.fake_elumenta.process import FakeServerProcess

CLIENTS = {"ws": run_ws_load, "browser": run_browser_load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=sorted(CLIENTS), default="ws")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of new rounds")
    parser.add_argument("--ttft-ms", type=float, default=100.0)
    parser.add_argument("--delay-ms", type=float, default=15.0)
    parser.add_argument(
        "--requests-per-minute", type=int, default=10_000, help="each user's request limit"
    )
    parser.add_argument(
        "--think-s",
        type=float,
        default=0.0,
        help="average pause between a user's rounds (0: Run again at once)",
    )
    parser.add_argument(
        "--paths", default="polling,live", help="comma-separated: polling, live (in order)"
    )
    parser.add_argument(
        "--max-streams", type=int, default=None, help="PLAYGROUND_MAX_STREAMS (default: the app's)"
    )
    args = parser.parse_args()
    exit_on_sigterm()
    run_load = CLIENTS[args.client]
    print(
        f"client {args.client}; the fake answers after {args.ttft_ms:.0f} ms, "
        f"then a word every {args.delay_ms:.0f} ms; users pause {args.think_s:g} s "
        "between rounds on average"
    )
    for path in args.paths.split(","):
        work = Path(tempfile.mkdtemp(prefix=f"bench-load-{path}-"))
        with FakeServerProcess(log_path=work / "fake.log") as fake:
            fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
            fake.script("*", {"ttft_ms": args.ttft_ms, "delay_ms": args.delay_ms})
            # Users who press Run again the moment a round ends would reach the default
            # limit of 60 model requests a minute (refused by design); the load is measured.
            with hosted_app_process(
                fake,
                work,
                PLAYGROUND_REQUESTS_PER_MINUTE=str(args.requests_per_minute),
                PLAYGROUND_LIVE_ROUTE=str(path == "live").lower(),
                **({"PLAYGROUND_MAX_STREAMS": str(args.max_streams)} if args.max_streams else {}),
            ) as app:
                assert app.process.pid is not None
                with ProcessWatcher(app.process.pid) as watcher:
                    load = run_load(
                        app.url, args.users, duration_s=args.duration, think_s=args.think_s
                    )
                requests = model_requests(fake)
                runner_ttft_ms = recorded_ttft_ms(app.store)
                deltas = recorded_deltas(app.store)
        print(f"\n== {path}")
        print(
            describe_load(
                load,
                watcher,
                requests=len(requests),
                runner_ttft_ms=runner_ttft_ms,
                deltas=deltas,
            )
        )
        path_line = first_text_path(load.reports, requests)
        if path_line is not None:
            print(path_line)


if __name__ == "__main__":
    main()
