"""A click in the Compare editor just before a run's live columns end still counts.

"Add user turn" asks for a run of the editor's fragment, with the button's press in it.
When a run's streams end, its live columns ask for the run that draws it finished. If that
were a full page run, Streamlit (``runner.fastReruns``, its default) would stop the script
runner just started for the click before it had read its request, and the press went with
it: the browser sends a press once (about one click in a hundred under load, and in
``bench_ui.py``'s clicks while six columns stream). The live columns are drawn in a
fragment, so what they ask for is a fragment run, which Streamlit joins with the click's;
that fragment then reruns the page from inside.

The race is narrow in real use. Here the app process makes every new script runner wait a
moment before it reads its request (a ``sitecustomize`` on its ``PYTHONPATH``), so the
columns' request always comes in while the click's waits. The client sends each request
as the browser does (``StreamlitSession.click`` and ``run_of``: with the fragment that drew
the widget).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from playground.presenters import compare_state
from tests.e2e.app_process import hooked_app_url
from tests.e2e.load import run_in_own_loop
from tests.e2e.load_ws import LIVE_COLUMN, model_labels
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
    with hooked_app_url(fake_server, tmp_path_factory.mktemp("slow-start"), SLOW_START) as url:
        yield url


def turns(session: StreamlitSession) -> int:
    """The earlier turns the page shows (their text boxes)."""
    return sum(
        1
        for _, element in session.elements()
        if element.WhichOneof("type") == "text_area" and ".turn." in element.text_area.id
    )


def stream_urls(session: StreamlitSession) -> set[str]:
    """The event streams the page's live columns follow."""
    return {
        json.loads(element.bidi_component.json)["url"]
        for _, element in session.elements()
        if element.WhichOneof("type") == "bidi_component"
        and element.bidi_component.component_name == LIVE_COLUMN
    }


async def read_to_end(app_url: str, paths: set[str]) -> None:
    """Follow each stream until the app ends it, as the live columns do."""
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as client:

        async def follow(path: str) -> None:
            async with client.stream("GET", path) as response:
                response.raise_for_status()
                async for _ in response.aiter_bytes():
                    pass

        await asyncio.gather(*(follow(path) for path in paths))


async def click_as_the_run_ends(url: str) -> list[int]:
    """Three rounds: Run, read the streams to their end, then press "Add user turn" and
    send the live columns' end-of-run request straight after; the turns shown after each."""
    shown = []
    async with StreamlitSession(url, timeout_s=60) as session:
        await session.run_script()
        session.set_widget(session.widget_id(compare_state.PROMPT), string_value="Hello")
        session.set_widget(
            session.widget_id(compare_state.MODELS), string_array_value=model_labels()[:2]
        )
        for _ in range(3):
            await session.click(session.button_id("Run"))
            while not (
                session.full_run_finished(await session.receive())
                and session.component_ids(LIVE_COLUMN)
            ):
                pass
            await read_to_end(url, stream_urls(session))
            await session.click(session.button_id("Add user turn"))
            await session.run_of(session.component_ids(LIVE_COLUMN)[0])
            assert not session.component_ids(LIVE_COLUMN), "the page shows the finished run"
            shown.append(turns(session))
    return shown


def test_a_click_just_before_the_live_columns_end_still_adds_its_turn(
    slow_start_app_url: str, fake: FakeServerProcess
) -> None:
    fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
    # Answers that outlast the page run drawing their columns, even on a busy machine (each
    # script runner here starts half a second late): a run already finished when the page
    # is drawn shows no live columns to follow.
    fake.script("*", {"text": "A short answer.", "ttft_ms": 1500, "delay_ms": 5})
    assert run_in_own_loop(click_as_the_run_ends(slow_start_app_url)) == [1, 2, 3]
