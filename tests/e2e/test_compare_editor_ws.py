"""The Compare editor is a fragment: a click in it while six columns stream reruns the editor
only, and Run still draws the new columns with a full page run.

A WebSocket session speaking Streamlit's protocol (``ws_client.py``) sends each click as the
browser does (a fragment run when a fragment drew the button) and sees every message the
app answers with, which a browser test cannot count.
"""

from __future__ import annotations

import pytest
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from playground.presenters import compare_state
from tests.e2e.load import run_in_own_loop
from tests.e2e.load_ws import model_labels
from tests.e2e.ws_client import StreamlitSession
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

LIVE = "live_column"


async def elements_of_click(session: StreamlitSession, label: str) -> list[str]:
    """Click the button ``label``; the kinds of the elements the app sends until that run
    (or the full run it asked for) has finished."""
    await session.click(session.button_id(label))
    kinds = []
    while True:
        message = await session.receive()
        if message.WhichOneof("type") == "delta":
            element = message.delta.WhichOneof("type")
            if element == "new_element":
                kinds.append(kind_of(message.delta.new_element))
        if message.WhichOneof("type") == "script_finished" and message.script_finished in (
            ForwardMsg.FINISHED_SUCCESSFULLY,
            ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY,
        ):
            return kinds


def kind_of(element: Element) -> str:
    """The element's type, or the component's name for a component (``live_column``…)."""
    kind = str(element.WhichOneof("type"))
    if kind == "bidi_component":
        return str(element.bidi_component.component_name).rsplit(".", 1)[-1]
    return kind


def live_columns(session: StreamlitSession) -> int:
    return sum(1 for _, element in session.elements() if kind_of(element) == LIVE)


async def edit_while_streaming(url: str) -> None:
    async with StreamlitSession(url, timeout_s=60) as session:
        await session.run_script()
        session.set_widget(session.widget_id(compare_state.PROMPT), string_value="Hello")
        await elements_of_click(session, "Run")
        assert any("Pick at least one model." in e for e in session.errors)  # in the editor

        session.set_widget(
            session.widget_id(compare_state.MODELS), string_array_value=model_labels()
        )
        drawn = await elements_of_click(session, "Run")
        assert drawn.count(LIVE) == 6  # Run's full page run drew the columns
        assert live_columns(session) == 6

        added = await elements_of_click(session, "Add user turn")
        assert LIVE not in added
        # The editor only: none of the grid, and no more than the editor holds.
        assert len(added) < len(drawn) - 6, added
        assert live_columns(session) == 6  # still on the page, not redrawn
        assert any(".turn." in node.widget_id for node in session.page.values())

        stopped = await elements_of_click(session, "Stop all")
        assert LIVE not in stopped  # a full page run draws the stopped answers


def test_an_editor_click_while_six_columns_stream_reruns_only_the_editor(
    app_url: str, fake: FakeServerProcess
) -> None:
    fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
    words = " ".join(f"word{n}" for n in range(2000))
    fake.script("*", {"text": words, "ttft_ms": 50, "delay_ms": 200})
    run_in_own_loop(edit_while_streaming(app_url))
