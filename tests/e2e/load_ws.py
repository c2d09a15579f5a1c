"""The load's users over Streamlit's own WebSocket protocol (see ``ws_client.py``).

Light enough for the suite: 20 users are 20 sockets in one asyncio loop. Each user opens
the app signed in by the proxy header (Compare is the default page), types a prompt that
starts with their marker, picks the six models, presses Run once and follows the run as
the browser does: the live columns' event streams (the app's own route) until the run is
done, then the one rerun the component asks for, or, where the page polls, its polling
timer until every column is done; then the next round, until the time is up.
A Run press that starts no comparison is an error, never pressed again.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections import Counter
from urllib.parse import parse_qs

import httpx
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from playground.catalog import load_catalog
from playground.presenters import compare_state
from playground.presenters.compare import SHARE_PARAM
from tests.e2e.hosted import proxy_headers
from tests.e2e.load import (
    MARKER,
    MODELS,
    LoadRun,
    StartLine,
    UserReport,
    foreign_markers,
    marker,
    run_in_own_loop,
    user_emails,
)
from tests.e2e.ws_client import StreamlitSession
from ui.columns import WAITING_TEXT

# A column's answer box is the container keyed answer-<position> (ui/columns.py).
ANSWER_BOX = re.compile(r"-answer-(\d+)$")
LIVE_COLUMN = "playground.live_column"  # the component's name (ui/live_column.py)
MARKER_BYTES = re.compile(MARKER.pattern.encode())


class RunNotStartedError(RuntimeError):
    """Pressing Run drew the page again but started no comparison."""


STAGES = (
    "press run ended",
    "columns drawn",
    "page drawn",
    "stream open",
    "first event",
    "streams ended",
    "final page",
)
"""What a round goes through after Run is pressed, in order: the Run press's own script run
ends (it starts the comparison and asks for the next run), the next run draws the first
column, that run ends, the first live column's event stream answers, its first event
arrives, every stream has ended, the rerun the columns ask for at the end has drawn the
page. A round drawn by polling skips the stream stages."""


class Round:
    """One comparison as the user follows it: when each stage was reached, and what the
    round is waiting for now (what a timeout names)."""

    def __init__(self, prompt_marker: str) -> None:
        self.marker = prompt_marker
        self.pressed = time.perf_counter()
        self.stages: dict[str, float] = {}
        self.events: Counter[str] = Counter()
        """Events of each kind read from the run's streams (``finished``, ``done``…)."""
        self.waiting_for = "the page before Run"

    def reached(self, stage: str) -> None:
        """Note the first time ``stage`` (one of :data:`STAGES`) is reached."""
        self.stages.setdefault(stage, time.perf_counter() - self.pressed)

    def press(self) -> None:
        """Run is pressed now: stages count from here."""
        self.pressed = time.perf_counter()
        self.waiting_for = "the page after Run"


@functools.cache
def model_labels() -> tuple[str, ...]:
    """The picker labels of :data:`~tests.e2e.load.MODELS` (what a multiselect sends)."""
    labels = {info.slug: info.label for info in load_catalog()}
    return tuple(labels[slug] for slug in MODELS)


async def _user(url: str, email: str, start: StartLine, timeout_s: float) -> UserReport:
    report = UserReport(email)
    session = StreamlitSession(url, proxy_headers(email), timeout_s=timeout_s, watch=MARKER_BYTES)
    arrived = False
    doing = "opening the app"
    try:
        # One HTTP client per user for all their rounds: a new client loads the CA bundle
        # (tens of ms of this loop's CPU, which every user shares). Each stream gets a new
        # connection: reusing one the app closed while idle fails the read (a browser's
        # EventSource would retry; this driver reports it).
        async with (
            session,
            httpx.AsyncClient(
                base_url=session.app_url,
                headers=session.headers,
                timeout=timeout_s,
                limits=httpx.Limits(max_keepalive_connections=0),
            ) as client,
        ):
            await session.run_script()
            start.arrive()
            arrived = True
            await start.wait()
            round_index = 0
            while time.monotonic() < start.deadline:
                doing = marker(email, round_index)
                current = Round(doing)
                try:
                    async with asyncio.timeout(timeout_s):
                        await _comparison(session, client, current, report)
                except TimeoutError as exc:
                    seen = ", ".join(f"{k} {v:.2f} s" for k, v in current.stages.items())
                    raise TimeoutError(
                        f"waited for {current.waiting_for}; after Run: {seen or 'nothing'}; "
                        f"stream events {dict(current.events)}"
                    ) from exc
                round_index += 1
                if report.first_round_ttfts is None:
                    report.first_round_ttfts = len(report.ui_ttft_s)
                await start.think()
    except Exception as exc:  # noqa: BLE001  (a user's failure is a finding, not a crash)
        report.errors.append(f"{doing}: {type(exc).__name__}: {exc}"[:500])
    finally:
        if not arrived:
            start.arrive()
        report.errors += session.errors
        seen = b" ".join(sorted(session.seen)).decode()
        report.foreign_markers_seen += foreign_markers(seen, email)
    return report


async def _comparison(
    session: StreamlitSession, client: httpx.AsyncClient, current: Round, report: UserReport
) -> None:
    """One round: fill in the prompt and models, press Run, follow it until all are done."""
    prompt_marker = current.marker
    prompt = f"{prompt_marker} tell me something"
    session.set_widget(session.widget_id(compare_state.PROMPT), string_value=prompt)
    session.set_widget(session.widget_id(compare_state.MODELS), string_array_value=model_labels())
    # As the browser does when the prompt box loses focus: a run of the editor's fragment.
    await session.edit(session.widget_id(compare_state.PROMPT))
    shown_before = _shown_comparison(session)
    report.markers.append(prompt_marker)
    run_button = session.button_id("Run")
    current.press()
    pressed = current.pressed
    await session.click(run_button)  # with a run of the editor's fragment, as a browser
    started = False
    first_text: dict[int, float] = {}
    streams: dict[str, asyncio.Task[None]] = {}
    while True:
        message = await session.receive()
        kind = message.WhichOneof("type")
        if kind == "script_finished":
            current.reached("press run ended")
        if kind == "page_info_changed":
            # The page puts the new comparison in its URL before it draws the columns.
            started = started or _shown_comparison(session) != shown_before
        elif kind == "delta" and started:
            url = _live_stream(message)
            if url is not None and url not in streams:
                # As a browser's live column does the moment it is drawn.
                current.reached("columns drawn")
                streams[url] = asyncio.create_task(
                    _follow(session, client, url, current, first_text)
                )
            position = _answer_position(session, message)
            if position is not None:
                current.reached("columns drawn")
                first_text.setdefault(position, time.perf_counter() - pressed)
        elif session.full_run_finished(message):
            if not started:
                raise RunNotStartedError(f"pressing Run for {prompt_marker} started nothing")
            current.reached("page drawn")
            if streams:
                current.waiting_for = f"the end of {len(streams)} event stream(s)"
                await asyncio.gather(*streams.values())
                streams.clear()
                current.reached("streams ended")
                current.waiting_for = "the page after the streams ended"
                # The run a live column asks for at the end, as the browser sends it.
                await session.run_of(session.component_ids(LIVE_COLUMN)[0])
                current.reached("final page")
            if _all_done(session):
                break
            current.waiting_for = f"another page run: not every column done ({_shown(session)})"
    report.run_s.append(time.perf_counter() - pressed)
    report.stages.append(current.stages)
    report.ui_ttft_s += first_text.values()
    report.first_text_at[prompt_marker] = (
        pressed,
        {MODELS[position]: pressed + at for position, at in first_text.items()},
    )
    answers = _answers(session)
    report.errors += [
        f"{prompt_marker}: column {i} shows {text[:80]!r}"
        for i, text in sorted(answers.items())
        if prompt_marker not in text
    ]
    if len(answers) != len(MODELS):
        report.errors.append(f"{prompt_marker}: {len(answers)} answers shown")


def _live_stream(message: ForwardMsg) -> str | None:
    """The event-stream URL of the live column ``message`` draws (ui/live_column.py)."""
    element = message.delta.new_element
    if element.WhichOneof("type") != "bidi_component":
        return None
    component = element.bidi_component
    # Other components share the page (the scroll on Run): only live columns carry a stream.
    if component.component_name != LIVE_COLUMN:
        return None
    url: str = json.loads(component.json)["url"]
    return url


async def _follow(
    session: StreamlitSession,
    client: httpx.AsyncClient,
    url: str,
    current: Round,
    first_text: dict[int, float],
) -> None:
    """Read one run's stream to its end as its live columns do; note each first text."""
    async with client.stream("GET", url) as response:
        response.raise_for_status()
        current.reached("stream open")
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            current.reached("first event")
            session.seen.update(m.group(0) for m in MARKER_BYTES.finditer(line.encode()))
            for event in json.loads(line[6:]):  # a message is a list of events
                current.events[event["k"]] += 1
                if event["k"] == "delta":
                    first_text.setdefault(event["i"], time.perf_counter() - current.pressed)


def _shown_comparison(session: StreamlitSession) -> str | None:
    return parse_qs(session.query_string).get(SHARE_PARAM, [None])[0]


def _answer_position(session: StreamlitSession, message: ForwardMsg) -> int | None:
    """The column whose answer text ``message`` draws (``None``: not an answer)."""
    element = message.delta.new_element
    if element.WhichOneof("type") != "markdown" or element.markdown.body == WAITING_TEXT:
        return None
    box = ANSWER_BOX.search(session.block_id_above(tuple(message.metadata.delta_path)))
    return int(box.group(1)) if box else None


def _answers(session: StreamlitSession) -> dict[int, str]:
    """Every column's answer text as the page shows it now."""
    answers = {}
    for path, element in session.elements():
        box = ANSWER_BOX.search(session.block_id_above(path))
        if box and element.WhichOneof("type") == "markdown":
            answers[int(box.group(1))] = element.markdown.body
    return answers


def _shown(session: StreamlitSession) -> str:
    """What the page shows of the run: its live columns and elements with a status."""
    kinds = [element.WhichOneof("type") for _, element in session.elements()]
    buttons = [e.button.label for _, e in session.elements() if e.WhichOneof("type") == "button"]
    return (
        f"{kinds.count('bidi_component')} components, buttons {sorted(set(buttons))}, "
        f"query {session.query_string!r}"
    )


def _all_done(session: StreamlitSession) -> bool:
    # A finished column offers Re-run (pages/compare.py), a running one does not.
    try:
        for position in range(len(MODELS)):
            session.widget_id(f"compare.rerun.{position}")
    except LookupError:
        return False
    return True


async def _run(
    url: str, emails: list[str], duration_s: float, timeout_s: float, think_s: float
) -> LoadRun:
    start = StartLine(len(emails), duration_s, think_s)
    reports = await asyncio.gather(*(_user(url, e, start, timeout_s) for e in emails))
    return LoadRun(list(reports), start.opened_at, time.monotonic())


def run_ws_load(
    url: str, users: int, *, duration_s: float, timeout_s: float = 90.0, think_s: float = 0.0
) -> LoadRun:
    """``users`` users (see :func:`~tests.e2e.load.user_emails`), each a WebSocket session,
    running comparisons of the six :data:`~tests.e2e.load.MODELS`; once every user has the
    page open they start together, and no new round starts ``duration_s`` after that.
    ``timeout_s`` bounds each round and each silence; ``think_s``: the average pause
    between a user's rounds (none: Run again the moment a round ends)."""
    return run_in_own_loop(_run(url, user_emails(users), duration_s, timeout_s, think_s))
