"""The handover patch (``ui/runner_handover.py``) applies to the Streamlit the app runs on.

What it does for a browser is shown end to end in ``tests/e2e/test_compare_polling_ws.py``;
this check runs without a browser, so a Streamlit upgrade that renames the session methods
it wraps is caught by the fast suite rather than by a page that hangs.
"""

from __future__ import annotations

from streamlit.proto.WidgetStates_pb2 import WidgetStates
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

from ui.runner_handover import joined, keep_finished_runs


def test_the_session_keeps_a_stopped_runners_events_once_patched() -> None:
    originals = (
        AppSession._create_scriptrunner,
        AppSession._handle_scriptrunner_event_on_event_loop,
        AppSession.request_script_stop,
        AppSession.request_rerun,
    )
    keep_finished_runs()
    keep_finished_runs()  # once per process, whoever calls it again

    patched = (
        AppSession._create_scriptrunner,
        AppSession._handle_scriptrunner_event_on_event_loop,
        AppSession.request_script_stop,
        AppSession.request_rerun,
    )
    for method in patched:
        # Wrapped exactly once, around Streamlit's own method.
        inner = getattr(method, "__wrapped__", None)
        assert inner is not None, method
        assert not hasattr(inner, "__wrapped__"), method
    if not any(hasattr(m, "__wrapped__") for m in originals):  # first patch in this process
        assert [p.__wrapped__ for p in patched] == list(originals)


def _states(**values: object) -> WidgetStates:
    states = WidgetStates()
    for widget_id, value in values.items():
        state = states.widgets.add()
        state.id = widget_id
        if isinstance(value, bool):
            state.trigger_value = value
        else:
            state.string_value = str(value)
    return states


def _values(data: RerunData) -> dict[str, object]:
    assert data.widget_states is not None
    return {
        w.id: getattr(w, w.WhichOneof("value") or "trigger_value")
        for w in data.widget_states.widgets
    }


def test_a_joined_request_keeps_the_earlier_press_and_the_later_values() -> None:
    # A fragment click (the press, then the browser clears it) and a full run right after.
    click = RerunData(widget_states=_states(add_turn=True, prompt="old"), fragment_id="editor")
    full_run = RerunData(widget_states=_states(add_turn=False, prompt="new"))

    run = joined(click, full_run)

    assert _values(run) == {"add_turn": True, "prompt": "new"}
    assert run.fragment_id is None and run.fragment_id_queue == []  # the whole page runs


def test_a_joined_request_without_a_press_is_the_later_one() -> None:
    run = joined(
        RerunData(widget_states=_states(prompt="old")),
        RerunData(widget_states=_states(prompt="new"), page_name="History"),
    )
    assert _values(run) == {"prompt": "new"}
    assert run.page_name == "History"
