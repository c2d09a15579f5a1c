"""The handover patch (``ui/runner_handover.py``) applies to the Streamlit the app runs on.

What it does for a browser is shown end to end in ``tests/e2e/test_compare_polling_ws.py``;
this check runs without a browser, so a Streamlit upgrade that renames the session methods
it wraps is caught by the fast suite rather than by a page that hangs.
"""

from __future__ import annotations

from streamlit.runtime.app_session import AppSession

from ui.runner_handover import keep_finished_runs


def test_the_session_keeps_a_stopped_runners_events_once_patched() -> None:
    originals = (
        AppSession._create_scriptrunner,
        AppSession._handle_scriptrunner_event_on_event_loop,
        AppSession.request_script_stop,
    )
    keep_finished_runs()
    keep_finished_runs()  # once per process, whoever calls it again

    patched = (
        AppSession._create_scriptrunner,
        AppSession._handle_scriptrunner_event_on_event_loop,
        AppSession.request_script_stop,
    )
    for method in patched:
        # Wrapped exactly once, around Streamlit's own method.
        inner = getattr(method, "__wrapped__", None)
        assert inner is not None, method
        assert not hasattr(inner, "__wrapped__"), method
    if not any(hasattr(m, "__wrapped__") for m in originals):  # first patch in this process
        assert [p.__wrapped__ for p in patched] == list(originals)
