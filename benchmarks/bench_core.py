"""Core benchmarks (issue 2): fan-out, SSE parsing throughput, timing accuracy.

Runs the fake Elumenta server in a separate process (so it does not share the client's
GIL) and prints one figure per line. Usage: ``python benchmarks/bench_core.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pydantic import SecretStr

from playground.catalog import load_catalog
from playground.providers.base import ContentDelta, GenerationRequest, Message
from playground.providers.elumenta import ElumentaProvider
from playground.results import CompareRequest, ModelTarget
from playground.runner import Runner
from tests.fake_elumenta.process import FakeServerProcess

CATALOG = load_catalog()
FAN_OUT = {  # model: (ttft_ms, delay_ms, deltas)
    "gpt-5-nano": (80, 5, 40),
    "claude-haiku-4.5": (120, 8, 40),
    "gemini-2.5-flash": (100, 6, 60),
    "gpt-5": (300, 10, 60),
    "claude-opus-4.5": (400, 12, 60),
    "gemini-3-pro": (250, 15, 50),
}


def provider(fake: FakeServerProcess) -> ElumentaProvider:
    return ElumentaProvider(
        api_key=SecretStr(fake.api_key), base_url=fake.base_url, catalog=CATALOG
    )


def compare(models: list[str]) -> CompareRequest:
    return CompareRequest(
        messages=(Message("user", "benchmark"),),
        targets=tuple(ModelTarget("elumenta", m) for m in models),
    )


def bench_fan_out(fake: FakeServerProcess, rounds: int) -> None:
    for model, (ttft, delay, n) in FAN_OUT.items():
        fake.script(model, {"ttft_ms": ttft, "delay_ms": delay, "n_deltas": n, "text": "x" * 4 * n})
    runner = Runner(CATALOG)
    elumenta = provider(fake)
    providers = {"elumenta": elumenta}
    ratios = []
    try:
        for _ in range(rounds):
            singles = []
            for model in FAN_OUT:
                started = time.perf_counter()
                runner.start(compare([model]), providers).wait(60)
                singles.append(time.perf_counter() - started)
            started = time.perf_counter()
            snapshot = runner.start(compare(list(FAN_OUT)), providers).wait(60)
            wall = time.perf_counter() - started
            assert all(r.status == "completed" for r in snapshot.results)
            ratios.append(wall / max(singles))
    finally:
        runner.run_coroutine(elumenta.aclose())
        runner.close()
    print(
        f"fan-out: 6 models, wall / slowest single stream = {statistics.median(ratios):.3f} "
        f"(median of {rounds}; worst {max(ratios):.3f}; target <= 1.05)"
    )


async def _consume(fake: FakeServerProcess, model: str) -> tuple[int, float]:
    client = provider(fake)
    request = GenerationRequest(model=model, messages=(Message("user", "go"),))
    count = 0
    started = time.perf_counter()
    try:
        async for event in client.stream(request):
            if isinstance(event, ContentDelta):
                count += 1
    finally:
        await client.aclose()
    return count, time.perf_counter() - started


def bench_throughput(fake: FakeServerProcess, events: int) -> None:
    fake.script("gpt-5-nano", {"deltas": ["ab"] * events, "events_per_write": 1000})
    asyncio.run(_consume(fake, "gpt-5-nano"))  # warm-up
    cpu_started = time.process_time()
    count, seconds = asyncio.run(_consume(fake, "gpt-5-nano"))
    cpu = time.process_time() - cpu_started
    print(
        f"sse throughput: {count} content_delta events in {seconds:.2f} s = "
        f"{count / seconds:,.0f} events/s wall, {count / cpu:,.0f} events/s per CPU-second "
        f"of the client (target >= 20,000)"
    )


async def _timed(fake: FakeServerProcess, model: str) -> tuple[float, float]:
    client = provider(fake)
    request = GenerationRequest(model=model, messages=(Message("user", "time me"),))
    first = None
    try:
        sent = time.perf_counter()
        async for event in client.stream(request):
            if isinstance(event, ContentDelta) and first is None:
                first = time.perf_counter()
        last = time.perf_counter()
    finally:
        await client.aclose()
    assert first is not None
    return (first - sent) * 1000, (last - sent) * 1000


def bench_timing(fake: FakeServerProcess, runs: int) -> None:
    ttft, delay, n = 120.0, 10.0, 20
    expected_latency = ttft + (n - 1) * delay
    fake.script("gpt-5", {"ttft_ms": ttft, "delay_ms": delay, "n_deltas": n, "text": "y" * 100})
    runner = Runner(CATALOG)
    elumenta = provider(fake)
    ttft_errors, latency_errors = [], []
    try:
        for _ in range(runs):
            (result,) = runner.start(compare(["gpt-5"]), {"elumenta": elumenta}).wait(30).results
            assert result.status == "completed"
            ttft_errors.append(result.ttft_ms - ttft)  # type: ignore[operator]
            latency_errors.append(result.latency_ms - expected_latency)  # type: ignore[operator]
    finally:
        runner.run_coroutine(elumenta.aclose())
        runner.close()
    print(
        f"timing accuracy (runner, {runs} runs, injected TTFT {ttft:.0f} ms, last byte at "
        f"{expected_latency:.0f} ms): TTFT error median {statistics.median(ttft_errors):+.2f} ms "
        f"(max {max(ttft_errors, key=abs):+.2f}), latency error median "
        f"{statistics.median(latency_errors):+.2f} ms (max {max(latency_errors, key=abs):+.2f}); "
        "target within ±5 ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with FakeServerProcess() as fake:
        bench_fan_out(fake, args.rounds)
        bench_throughput(fake, args.events)
        bench_timing(fake, args.runs)


if __name__ == "__main__":
    main()
