"""A click in a fragment followed at once by a full page run still counts.

The Compare editor is a fragment: "Add user turn" asks for a run of the editor alone, with
the button's press in it. When a run's last live column ends, the page asks for a full page
run. If the two arrive close together, the click must not get lost: with Streamlit's
``runner.fastReruns`` (its default) the full run's request stopped the script runner just
started for the click before that runner had read its request, and the click went with it
(the browser sends a press once). ``ui/runner_handover.py`` makes that unread request join
the full run's, which keeps the press.

The race is narrow in real use (a click within a few milliseconds of a run's end, seen in
about one in a hundred clicks under load). Here the app process makes every new script
runner wait a moment before it reads its request (a ``sitecustomize`` on its
``PYTHONPATH``), so the full run's request always comes in while the click's waits.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.app_process import AppProcess, app_environment
from tests.e2e.load import run_in_own_loop
from tests.e2e.ws_client import StreamlitSession
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

START_WAIT_S = 0.5
"""How long a new script runner waits before it reads the request it was started for."""

SLOW_START = f"""
import time

from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

_run_script_thread = ScriptRunner._run_script_thread


def run_script_thread(self, *args, **kwargs):
    # The runner's thread loses the CPU before it reads its request.
    time.sleep({START_WAIT_S})
    return _run_script_thread(self, *args, **kwargs)


ScriptRunner._run_script_thread = run_script_thread
"""


@pytest.fixture(scope="module")
def slow_start_app_url(
    fake_server: FakeServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    data_dir: Path = tmp_path_factory.mktemp("slow-start-data")
    hook = tmp_path_factory.mktemp("slow-start")
    (hook / "sitecustomize.py").write_text(textwrap.dedent(SLOW_START))
    env = app_environment(fake_server, data_dir, PYTHONPATH=str(hook))
    with AppProcess(env, data_dir / "streamlit.log") as app:
        yield app.url
        assert "Traceback" not in app.log_tail(10**9), app.log_tail(5000)


def turns(session: StreamlitSession) -> int:
    """The earlier turns the page shows (their delete buttons)."""
    return sum(
        1
        for _, element in session.elements()
        if element.WhichOneof("type") == "button" and "delete" in element.button.label
    )


async def click_then_full_run(url: str) -> list[int]:
    """Press "Add user turn", ask for a full page run straight after, three times; the
    turns shown after each."""
    shown = []
    async with StreamlitSession(url, timeout_s=60) as session:
        await session.run_script()
        for _ in range(3):
            await session.click(session.button_id("Add user turn"))
            # What a live column asks for when its stream ends: a full page run.
            await session.run_script()
            shown.append(turns(session))
    return shown


def test_a_click_just_before_a_full_page_run_still_adds_its_turn(
    slow_start_app_url: str,
) -> None:
    assert run_in_own_loop(click_then_full_run(slow_start_app_url)) == [1, 2, 3]
