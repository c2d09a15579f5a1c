"""Many signed-in users at once, each running six-model comparisons: what the load drivers
share (issue 6).

Two drivers play the users against the hosted app: ``load_ws.py`` speaks Streamlit's own
WebSocket protocol (light: the suite's load test, and the load benchmark's default) and
``load_browser.py`` gives each user a Chromium tab (heavy: ``bench_load.py --client
browser``). Each prompt starts with a marker unique to the user and round; the fake
server's default answer echoes the prompt, so a marker showing up in anyone else's page
would be a leak between sessions.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import sqlalchemy as sa

from playground.store import Store
from playground.store.models import Comparison, Result
from tests.fake_elumenta.process import FakeServerProcess
from tests.fake_elumenta.scripts import split_words

MODELS = (
    "gpt-5-nano",
    "claude-haiku-4.5",
    "gemini-2.5-flash",
    "deepseek-v3",
    "gpt-5",
    "grok-4-fast",
)
USERS_DOMAIN = "@load.test"
MARKER = re.compile(r"mk-(user\d+)-r\d+-x")
T = TypeVar("T")


def user_emails(users: int) -> list[str]:
    """The simulated users: ``user1@load.test``, ``user2@load.test``…"""
    return [f"user{i + 1}{USERS_DOMAIN}" for i in range(users)]


def marker(email: str, round_index: int) -> str:
    """The text that starts ``email``'s prompt in round ``round_index`` (matches MARKER)."""
    return f"mk-{email.split('@')[0]}-r{round_index}-x"


def foreign_markers(text: str, email: str) -> list[str]:
    """Markers of users other than ``email`` found in ``text``."""
    own = email.split("@")[0]
    return [m.group(0) for m in MARKER.finditer(text) if m.group(1) != own]


def model_requests(fake: FakeServerProcess) -> list[dict[str, Any]]:
    """The generate requests the fake server received since its last reset."""
    return [r for r in fake.requests() if r["path"].endswith(("/generate", "/generate/stream"))]


def recorded_ttft_ms(store: Store) -> list[float]:
    """Time to first token as the app's runner measured it (request sent to first text),
    for every answer the load's users have in the history."""
    query = (
        sa.select(Result.ttft_ms)
        .join(Comparison)
        .where(Comparison.owner.endswith(USERS_DOMAIN), Result.ttft_ms.is_not(None))
    )
    with store.session() as session:
        return [float(ttft) for ttft in session.scalars(query)]


def recorded_deltas(store: Store) -> int:
    """How many text deltas the load's answers arrived in: the fake server streams an
    answer a word at a time (``split_words``), so the stored text tells."""
    query = (
        sa.select(Result.content)
        .join(Comparison)
        .where(Comparison.owner.endswith(USERS_DOMAIN), Result.content.is_not(None))
    )
    with store.session() as session:
        return sum(len(split_words(content)) for content in session.scalars(query))


@dataclass
class UserReport:
    """What one simulated user did and saw."""

    email: str
    markers: list[str] = field(default_factory=list)
    """One per Run pressed: the marker of that comparison's prompt."""
    ui_ttft_s: list[float] = field(default_factory=list)
    """From pressing Run to a model's first answer text on the page (the browser driver
    times the first model only, the WebSocket driver every model)."""
    first_round_ttfts: int | None = None
    """How many of :attr:`ui_ttft_s` are the user's first round's: every user presses
    Run for the first time at the same moment (:class:`StartLine`)."""
    run_s: list[float] = field(default_factory=list)
    """From pressing Run until every column was done, per finished comparison."""
    errors: list[str] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)
    """Per finished comparison: seconds from pressing Run to each stage the driver saw
    (the WebSocket driver only; see ``load_ws.STAGES``)."""
    repeated_clicks: int = 0
    """Run clicks a starved browser dropped and the driver pressed again (browser only)."""
    foreign_markers_seen: list[str] = field(default_factory=list)
    first_text_at: dict[str, tuple[float, dict[str, float]]] = field(default_factory=dict)
    """Per marker (round): when Run was pressed and when each model's first text showed,
    by model slug (``time.perf_counter()``, the WebSocket driver only)."""


@dataclass(frozen=True)
class LoadRun:
    """Every user's report, and when (``time.monotonic()``) the rounds started and ended."""

    reports: list[UserReport]
    opened_at: float
    ended_at: float

    @property
    def wall_s(self) -> float:
        """Seconds from the start line to the last user's last comparison."""
        return self.ended_at - self.opened_at


class StartLine:
    """Every user opens the page first; rounds start together once all are in (or failed)."""

    def __init__(self, users: int, duration_s: float, think_s: float = 0.0) -> None:
        self._waiting = users
        self._duration_s = duration_s
        self._think_s = think_s
        self._open = asyncio.Event()
        self.deadline = float("inf")
        self.opened_at = 0.0

    def arrive(self) -> None:
        """One user is ready (or gave up); the last one starts the clock."""
        self._waiting -= 1
        if self._waiting == 0 and not self._open.is_set():
            self.opened_at = time.monotonic()
            self.deadline = self.opened_at + self._duration_s
            self._open.set()

    async def wait(self) -> None:
        """Until every user has arrived."""
        await self._open.wait()

    async def think(self) -> None:
        """A user's pause between two rounds: reading the answers (``think_s`` on average,
        spread 0.5–1.5×, so users drift apart as people do; none by default)."""
        if self._think_s > 0:
            await asyncio.sleep(self._think_s * random.uniform(0.5, 1.5))


def run_in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` in a new event loop on its own thread.

    The browser tests' sync Playwright keeps an event loop on the main thread.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass(frozen=True)
class ProcessSample:
    """CPU seconds and resident memory of a process at one moment (``time.monotonic()``)."""

    at: float
    cpu_s: float
    rss_mb: float


def sample_process(pid: int) -> ProcessSample:
    """Read CPU time and RSS of ``pid`` from /proc (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(stat[11]) + int(stat[12])) / ticks
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return ProcessSample(time.monotonic(), cpu_s, rss_kb / 1024)


class ProcessWatcher:
    """Samples a process's CPU and memory twice a second while inside ``with``."""

    def __init__(self, pid: int, every_s: float = 0.5) -> None:
        self.pid = pid
        self.every_s = every_s
        self.baseline = sample_process(pid)
        self.samples: list[ProcessSample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(self.every_s):
            self.samples.append(sample_process(self.pid))

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(sample_process(self.pid))

    def between(self, start: float, end: float) -> list[ProcessSample]:
        """The samples taken from ``start`` to ``end`` (``time.monotonic()``)."""
        return [s for s in self.samples if start <= s.at <= end]


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0–1) of ``values``, linearly interpolated."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def describe_load(
    load: LoadRun,
    watcher: ProcessWatcher,
    *,
    requests: int,
    runner_ttft_ms: list[float],
    deltas: int | None = None,
) -> str:
    """The load's figures as printable lines: comparisons, model ``requests`` the fake
    received, errors, leaks, UI timings (beside the runner's own TTFT), and the app
    process's CPU and memory while the rounds ran (with the answers' text ``deltas``:
    CPU per comparison and per delta, figures a busy machine changes little)."""
    reports = load.reports
    runs = [t for r in reports for t in r.run_s]
    ttft = [t for r in reports for t in r.ui_ttft_s]
    errors = [e for r in reports for e in r.errors]
    leaks = [m for r in reports for m in r.foreign_markers_seen]
    lines = [
        f"users {len(reports)}, {len(MODELS)} models per comparison, {load.wall_s:.0f} s: "
        f"{len(runs)} comparisons finished, the fake received {requests} model requests",
        f"errors {len(errors)}, leaked markers between users {len(leaks)}, "
        f"Run clicks pressed again {sum(r.repeated_clicks for r in reports)}",
    ]
    if ttft:
        lines.append(
            f"UI time to first token: p50 {quantile(ttft, 0.5) * 1000:.0f} ms, "
            f"p95 {quantile(ttft, 0.95) * 1000:.0f} ms ({len(ttft)} answers)"
        )
        # Every user's first Run is pressed at once (a start no real team makes): its
        # queue shows in the tail, so the rounds after it are given apart as well.
        later = [t for r in reports for t in r.ui_ttft_s[r.first_round_ttfts or 0 :]]
        if later and len(later) < len(ttft):
            lines.append(
                f"  after each user's first round: p50 {quantile(later, 0.5) * 1000:.0f} ms, "
                f"p95 {quantile(later, 0.95) * 1000:.0f} ms ({len(later)} answers)"
            )
    if runner_ttft_ms:
        lines.append(
            f"runner's time to first token (request sent to first text): "
            f"p50 {quantile(runner_ttft_ms, 0.5):.0f} ms, "
            f"p95 {quantile(runner_ttft_ms, 0.95):.0f} ms"
        )
    if runs:
        lines.append(
            f"Run to all {len(MODELS)} done: p50 {quantile(runs, 0.5):.2f} s, "
            f"p95 {quantile(runs, 0.95):.2f} s"
        )
    stages: dict[str, list[float]] = {}
    for stage_times in (s for r in reports for s in r.stages):
        for name, at in stage_times.items():
            stages.setdefault(name, []).append(at)
    if stages:
        lines.append(
            "from Run to (median): "
            + ", ".join(f"{name} {statistics.median(at):.2f} s" for name, at in stages.items())
        )
    during = watcher.between(load.opened_at, load.ended_at + watcher.every_s)
    if len(during) > 1:
        cpu_s = during[-1].cpu_s - during[0].cpu_s
        span_s = during[-1].at - during[0].at
        lines.append(
            f"app process: CPU {cpu_s:.1f} s over {span_s:.0f} s "
            f"({cpu_s / span_s * 100:.0f}% of one core), RSS before "
            f"{watcher.baseline.rss_mb:.0f} MB, peak {max(s.rss_mb for s in during):.0f} MB, "
            f"median {statistics.median(s.rss_mb for s in during):.0f} MB"
        )
        if runs and deltas:
            lines.append(
                f"app CPU per comparison {cpu_s / len(runs) * 1000:.0f} ms, "
                f"per streamed delta {cpu_s / deltas * 1e6:.0f} µs ({deltas} deltas)"
            )
    lines += [f"error: {e}" for e in errors[:5]]
    return "\n".join(lines)


def first_text_path(reports: list[UserReport], requests: list[dict[str, Any]]) -> str | None:
    """Where each answer's time to first text went, as a printable line (medians over the
    answers the driver timed): from Run to its request reaching the fake (the app's Run
    path), from there to the fake sending the first text (the fake's scripted time to
    first token, plus its own lag on a busy machine), and from there to the text on the
    page (the app reading the stream and pushing it). ``requests``: the fake's record of
    the model requests (:func:`model_requests`). ``None`` when no answer can be matched."""
    rounds = {m: times for r in reports for m, times in r.first_text_at.items()}
    parts: dict[str, list[float]] = {"start": [], "fake": [], "push": []}
    for request in requests:
        found = MARKER.search(request.get("body", ""))
        if found is None or found.group(0) not in rounds or not request.get("first_text_at"):
            continue
        pressed, shown = rounds[found.group(0)]
        on_page = shown.get((request.get("json") or {}).get("model", ""))
        if on_page is None:
            continue
        parts["start"].append(request["received_at"] - pressed)
        parts["fake"].append(request["first_text_at"] - request["received_at"])
        parts["push"].append(on_page - request["first_text_at"])
    if not parts["start"]:
        return None

    def ms(values: list[float]) -> str:
        return (
            f"{statistics.median(values) * 1000:.0f} ms (p95 {quantile(values, 0.95) * 1000:.0f})"
        )

    return (
        f"first text, where the time goes (median per answer, {len(parts['start'])} answers): "
        f"Run to request at the fake {ms(parts['start'])}; the fake's first text "
        f"{ms(parts['fake'])} later; on the page {ms(parts['push'])} after that"
    )
