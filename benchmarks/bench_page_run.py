"""Page-run benchmark (issue 14): what one Compare page run costs while six columns stream.

The app (``streamlit run serve.py``, local mode, SQLite) and the fake Elumenta server run as
processes; one user is a WebSocket session speaking Streamlit's protocol
(``tests/e2e/ws_client.py``), so no browser shares the machine's cores. The user picks six
models and presses Run; every model then streams slowly (a word every ``--delay-ms``), and
the user asks for ``--reruns`` full page runs while they stream, as a click that needs the
server does. For the page run that draws the columns after Run and for each page run while
streaming it prints the messages the app sent (``delta`` messages: elements and blocks),
their bytes (and how many of them are components' own code: JS, CSS, HTML in elements),
and the app process's CPU for the run (from /proc, minus what the process spent per second
while the columns streamed and nobody clicked). The client does not follow the live event
streams: only page runs are measured. Counts and CPU are meaningful on a loaded machine,
wall-clock less so. Usage: ``python benchmarks/bench_page_run.py
[--reruns 30] [--rounds 1] [--roots CHECKOUT,CHECKOUT] [--delay-ms 150] [--live
true|false] [--profile 'py-spy record -o out.txt -f raw']``. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from benchmarks._common import exit_on_sigterm
from playground.presenters import compare_state
from tests.e2e.app_process import ROOT, AppProcess, app_environment
from tests.e2e.load import sample_process
from tests.e2e.load_ws import model_labels
from tests.e2e.ws_client import StreamlitSession
from tests.fake_elumenta.process import FakeServerProcess


class RunCount:
    """The messages of one page run, by kind, and their bytes."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.bytes = 0
        self.bytes_by_kind: Counter[str] = Counter()
        self.code_bytes = 0
        """Components' own code (JS, CSS, HTML) the run's elements carry."""


async def counted_run(
    session: StreamlitSession, press: str | None = None, click: str | None = None
) -> RunCount:
    """Ask for one full page run (pressing ``press`` with it), or click the button labelled
    ``click`` as the browser does (a run of the fragment that drew it, if one did), and
    count what that run sends."""
    count = RunCount()
    if click is not None:
        await session.click(session.button_id(click))
    else:
        if press is not None:
            session.press(press)
        await session.rerun()
    while True:
        message = await session.receive()
        kind = message.WhichOneof("type")
        if kind == "delta":
            kind = f"delta.{message.delta.WhichOneof('type')}"
        count.kinds[kind] += 1
        count.bytes += message.ByteSize()
        if kind == "delta.new_element":
            element = message.delta.new_element
            kind = f"element.{element.WhichOneof('type')}"
            if kind == "element.bidi_component":
                code = element.bidi_component
                count.code_bytes += sum(
                    len(text.encode())
                    for text in (code.js_content, code.css_content, code.html_content)
                )
        count.bytes_by_kind[kind] += message.ByteSize()
        if session.full_run_finished(message) or (
            kind == "script_finished"
            and message.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
        ):
            return count


def cpu_s(pid: int) -> float:
    return sample_process(pid).cpu_s


async def measure(
    url: str, pid: int, reruns: int, profile: list[str] | None = None, click: str | None = None
) -> Figures:
    async with StreamlitSession(url, timeout_s=120) as session:
        await session.run_script()
        session.set_widget(
            session.widget_id(compare_state.PROMPT), string_value="Tell me a long story"
        )
        session.set_widget(
            session.widget_id(compare_state.MODELS), string_array_value=model_labels()
        )
        await session.run_script()
        before = cpu_s(pid)
        drawn = await counted_run(session, press=session.button_id("Run"))
        draw_cpu = cpu_s(pid) - before
        await asyncio.sleep(1.0)  # let the first tokens arrive
        # What the process spends per second while the columns stream and nobody clicks.
        idle_from, idle_cpu = time.monotonic(), cpu_s(pid)
        await asyncio.sleep(3.0)
        background = (cpu_s(pid) - idle_cpu) / (time.monotonic() - idle_from)
        counts: list[RunCount] = []
        wall: list[float] = []
        spy = None
        if profile:
            spy = subprocess.Popen([*profile, "--pid", str(pid)])
            await asyncio.sleep(2.0)
        start_cpu, start = cpu_s(pid), time.monotonic()
        for _ in range(reruns):
            began = time.monotonic()
            counts.append(await counted_run(session, click=click))
            wall.append(time.monotonic() - began)
        total_cpu = cpu_s(pid) - start_cpu - background * (time.monotonic() - start)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait()
        components = sum(
            1 for _, e in session.elements() if e.WhichOneof("type") == "bidi_component"
        )
    deltas = [c.kinds["delta.new_element"] + c.kinds["delta.add_block"] for c in counts]
    elements = [c.kinds["delta.new_element"] for c in counts]
    return Figures(
        components=components,
        drawn_messages=sum(drawn.kinds.values()),
        drawn_elements=drawn.kinds["delta.new_element"],
        drawn_blocks=drawn.kinds["delta.add_block"],
        drawn_cpu_ms=draw_cpu * 1000,
        messages=statistics.median(sum(c.kinds.values()) for c in counts),
        elements=statistics.median(elements),
        blocks=statistics.median(deltas) - statistics.median(elements),
        bytes=statistics.median(c.bytes for c in counts),
        code_bytes=statistics.median(c.code_bytes for c in counts),
        cpu_ms=total_cpu / reruns * 1000,
        background_ms_per_s=background * 1000,
        wall_ms=statistics.median(wall) * 1000,
        bytes_by_kind=dict(counts[-1].bytes_by_kind.most_common()),
    )


@dataclass
class Figures:
    """One app's page runs: the one after Run (``drawn_*``) and the median of the rest."""

    components: int
    drawn_messages: int
    drawn_elements: int
    drawn_blocks: int
    drawn_cpu_ms: float
    messages: float
    elements: float
    blocks: float
    bytes: float
    code_bytes: float
    cpu_ms: float
    background_ms_per_s: float
    wall_ms: float
    bytes_by_kind: dict[str, int]

    def describe(self) -> str:
        return (
            f"  page run drawing the columns after Run: {self.drawn_messages} messages "
            f"({self.drawn_elements} elements, {self.drawn_blocks} blocks), app CPU "
            f"{self.drawn_cpu_ms:.0f} ms (with starting the run)\n"
            f"  page run while streaming ({self.components} live components): "
            f"{self.messages:.0f} messages ({self.elements:.0f} elements, {self.blocks:.0f} "
            f"blocks), {self.bytes:,.0f} bytes (components' code {self.code_bytes:,.0f}), "
            f"app CPU {self.cpu_ms:.1f} ms per run "
            f"(background {self.background_ms_per_s:.0f} ms/s taken off), wall median "
            f"{self.wall_ms:.0f} ms\n"
            f"  bytes by kind: {self.bytes_by_kind}"
        )


def run_app(root: Path, args: argparse.Namespace) -> Figures:
    """Start the fake and the app of the checkout ``root``; measure; stop both."""
    work = Path(tempfile.mkdtemp(prefix="bench-page-run-"))
    with FakeServerProcess(log_path=work / "fake.log") as fake:
        fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
        words = " ".join(f"word{n}" for n in range(2000))
        fake.script("*", {"text": words, "ttft_ms": 50, "delay_ms": args.delay_ms})
        env = app_environment(fake, work, PLAYGROUND_LIVE_ROUTE=args.live)
        app = AppProcess(env, work / "streamlit.log", script=str(root / "serve.py")).start()
        try:
            assert app.pid is not None
            profile = args.profile.split() or None
            return asyncio.run(measure(app.url, app.pid, args.reruns, profile, args.click or None))
        finally:
            app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reruns", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every --roots app")
    parser.add_argument("--delay-ms", type=float, default=150.0)
    parser.add_argument("--live", default="true", choices=("true", "false"))
    parser.add_argument(
        "--roots",
        default=str(ROOT),
        help="comma-separated checkouts whose app is measured, taking turns round by round "
        "(e.g. a worktree of main, then this one): A/B in one run",
    )
    parser.add_argument(
        "--click",
        default="",
        help="measure clicks on this button (e.g. 'Add user turn', as bench_ui times), sent "
        "as the browser sends them (a fragment's run for a button in a fragment), instead of "
        "full page runs",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="a profiler command run on the app during the page runs (given --pid), e.g. "
        "'py-spy record -o runs.svg --idle'",
    )
    args = parser.parse_args()
    exit_on_sigterm()
    roots = [Path(root).resolve() for root in args.roots.split(",")]
    for round_index in range(args.rounds):
        for root in roots:
            figures = run_app(root, args)
            print(f"== {root} (round {round_index + 1}, live route {args.live})")
            print(figures.describe(), flush=True)


if __name__ == "__main__":
    main()
