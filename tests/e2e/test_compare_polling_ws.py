"""Where the live route is off, the Compare page polls a running comparison (a fragment its
timer reruns), and once the run is done one full page run draws the finished columns and
ends the polling. That page run must reach the browser in full, also when a polling tick
comes in just as it finishes.

Streamlit accepts such a tick while the page run is under way (the polled fragment is
still registered) and, finding the script runner stopped once the run ended, starts a new
one; it used to drop the messages of the old runner it had not handled yet. The browser
then got the start of the finished page (which stops its polling timer) but not its end,
and the columns showed Stop for good (``ui/runner_handover.py``).

The race is narrow in real use (the server's event loop has to lose the CPU between the
two checks). Here the app process makes every tick that finds the polled fragment wait a
moment on the event loop (a ``sitecustomize`` on its ``PYTHONPATH``), so ticks keep
straddling the ends of script runs. A WebSocket session speaking Streamlit's protocol
(``ws_client.py``) plays the browser and its polling timer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from playground.presenters import compare_state
from tests.e2e.app_process import hooked_app_url
from tests.e2e.load import run_in_own_loop
from tests.e2e.load_ws import model_labels
from tests.e2e.ws_client import StreamlitSession
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

MODELS = 2
ROUNDS = 3
TICK_WAIT_S = 0.4
"""How long a polling tick that finds its fragment holds the app's event loop."""
HANG_S = 60.0
"""No message from the app for this long: the page hangs."""

SLOW_TICKS = f"""
import time

from streamlit.runtime.app_session import AppSession

_has_fragment = AppSession.has_fragment


def has_fragment(self, fragment_id):
    found = _has_fragment(self, fragment_id)
    if found:
        # The event loop loses the CPU between this check and the rerun request: the
        # script run under way may end meanwhile.
        time.sleep({TICK_WAIT_S})
    return found


AppSession.has_fragment = has_fragment
"""


@pytest.fixture(scope="module")
def slow_ticks_app_url(
    fake_server: FakeServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app with the live route off (running columns are polled) and slow ticks."""
    workdir = tmp_path_factory.mktemp("slow-ticks")
    with hooked_app_url(fake_server, workdir, SLOW_TICKS, PLAYGROUND_LIVE_ROUTE="false") as url:
        yield url


def finished(session: StreamlitSession) -> bool:
    """Whether the page shows every column finished (each offers Re-run)."""
    try:
        for position in range(MODELS):
            session.widget_id(f"compare.rerun.{position}")
    except LookupError:
        return False
    return True


def buttons(session: StreamlitSession) -> list[str]:
    return [e.button.label for _, e in session.elements() if e.WhichOneof("type") == "button"]


async def run_until_finished(session: StreamlitSession) -> bool:
    """Press Run and follow the run (the session's timer polls it) until a full page run
    shows it finished; whether the columns were polled on the way."""
    await session.click(session.button_id("Run"))
    polled = False
    while True:
        message = await session.receive()  # TimeoutError after HANG_S of silence
        polled = polled or message.WhichOneof("type") == "auto_rerun"
        if session.full_run_finished(message) and finished(session):
            return polled


async def poll_finished_runs(url: str) -> None:
    async with StreamlitSession(url, timeout_s=HANG_S) as session:
        await session.run_script()
        session.set_widget(
            session.widget_id(compare_state.MODELS), string_array_value=model_labels()[:MODELS]
        )
        for round_index in range(ROUNDS):
            session.set_widget(
                session.widget_id(compare_state.PROMPT), string_value=f"Round {round_index}"
            )
            await session.run_script()
            assert await run_until_finished(session), "the running columns were not polled"
            assert "Stop" not in buttons(session)


def test_the_finished_page_reaches_a_polling_browser_when_a_tick_ends_with_its_run(
    slow_ticks_app_url: str, fake: FakeServerProcess
) -> None:
    fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
    fake.script("*", {"text": "one two three four five six", "ttft_ms": 50, "delay_ms": 100})
    run_in_own_loop(poll_finished_runs(slow_ticks_app_url))
