"""Rerun timings of two pages in AppTest (issue 16): what a click costs once the page has data.

* Leaderboard with 8 models and 5,000 votes: median of 25 reruns (target <= 100 ms).
* Compare showing a finished 6-model comparison: answers of 6,000 characters against
  short ones, median of 25 reruns each (target: at most 50 ms more).

Usage: ``python benchmarks/bench_reruns.py [--votes 5000] [--reruns 25]``. Runs on a
throwaway SQLite history in a temporary directory, with the demo provider.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamlit.testing.v1 import AppTest

from playground.catalog import load_catalog
from playground.services import runtime
from playground.store import StoreRecorder
from playground.store.eval_ratings import add_vote
from tests.app_harness import APP, RUN_TIMEOUT_S, open_page
from tests.store_fixtures import Outcome, make_request, record_run

WINNERS = ("a", "b", "tie", "both_bad")


def reruns(at: AppTest, times: int) -> list[float]:
    """Milliseconds of each of ``times`` reruns of the page ``at`` shows."""
    out = []
    for _ in range(times):
        began = time.perf_counter()
        at.run()
        out.append((time.perf_counter() - began) * 1000)
        assert not at.exception, at.exception
    return out


def describe(name: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    print(
        f"  {name:<52} n={len(samples):<3} median={median:7.1f} ms  "
        f"min={min(samples):7.1f} ms  max={max(samples):7.1f} ms"
    )
    return median


def leaderboard(models: list[str], votes: int, times: int) -> None:
    rng = random.Random(1)
    recorder = StoreRecorder(runtime.get_store().engine)
    answers = []
    for n in range(votes // 8 + 1):
        _, ids = record_run(recorder, make_request(models, f"Prompt {n}"), [Outcome()] * 8)
        answers.append(ids)
    with runtime.get_store().session() as session, session.begin():
        for n in range(votes):
            a, b = rng.sample(answers[n % len(answers)], 2)
            add_vote(session, a, b, rng.choice(WINNERS), rater=f"rater{n % 5}")
    at = open_page("pages/leaderboard.py")
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == len(models)
    describe(f"Leaderboard rerun, {len(models)} models x {votes:,} votes", reruns(at, times))


def compare(models: list[str], chars: int, times: int) -> float:
    recorder = StoreRecorder(runtime.get_store().engine)
    words = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. "
    outcomes = [
        Outcome((f"Model {i}: " + words * (chars // len(words) + 1))[:chars])
        for i in range(len(models))
    ]
    comparison_id, _ = record_run(recorder, make_request(models, "Describe WAL"), outcomes)
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
    at.query_params["comparison"] = str(comparison_id)
    at.run()
    assert not at.exception, at.exception
    return describe(
        f"Compare rerun, {len(models)} finished answers of {chars:,} chars", reruns(at, times)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--votes", type=int, default=5_000)
    parser.add_argument("--reruns", type=int, default=25)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_reruns_") as tmp:
        for name in list(os.environ):
            if name.startswith(("PLAYGROUND_", "ELUMENTA_", "OPENAI_COMPATIBLE_")):
                del os.environ[name]
        os.chdir(tmp)
        os.environ["PLAYGROUND_DATA_DIR"] = str(Path(tmp) / "data")
        runtime.reset()
        slugs = load_catalog().slugs
        leaderboard(slugs[:8], args.votes, args.reruns)
        short = compare(slugs[:6], 200, args.reruns)
        long = compare(slugs[:6], 6_000, args.reruns)
        print(f"  6,000 chars cost {long - short:+.1f} ms per rerun over 200 chars (target <= 50)")
        runtime.reset()


if __name__ == "__main__":
    main()
