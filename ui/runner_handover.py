"""Keep the messages of a script run that finished just as the next run was asked for.

Streamlit (1.67) runs a session's script runs on a ``ScriptRunner`` thread that exits once
it has nothing left to run. Its messages reach the session on the server's event loop, in
order, a little later. A rerun request that comes in between finds the runner stopped, and
the session starts a new runner; from then on it ignores every event of the old one, also
the ones it had not handled yet: the last messages of a run that finished normally never
reach the browser, and neither does its end (``script_finished``).

On Compare's polling path that request is a polling tick, which Streamlit still accepts
while the page run that ends the polling is under way: the browser received the start of
that page run (which stops its polling timer) but not its end, and the columns showed Stop
until the user did something. Any page could lose the end of a run this way.

:func:`keep_finished_runs` makes the session handle the rest of such a runner's events,
in their order (they were queued before any event of the new runner). A runner the session
stops itself because a newer full run supersedes the current one (``runner.fastReruns``),
or that the toolbar's Stop stopped, is not affected: its output stays dropped, as
Streamlit intends.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from streamlit.runtime.app_session import AppSession
from streamlit.runtime.scriptrunner import ScriptRunnerEvent

_LOGGER = logging.getLogger(__name__)
_RETIRED = "_playground_retired_runner"
"""The attribute of an AppSession holding the runner it replaced while that one was
stopped (its events are still handled)."""
_PATCHED = "_playground_keeps_finished_runs"
_STOP_ASKED = "_playground_stop_asked"
"""Set on a runner the session asked to stop (the toolbar's Stop): it may still be running
its script, and its late events must not mix into the next runner's run."""


def keep_finished_runs() -> None:
    """Patch Streamlit's ``AppSession`` once per process (see the module's docstring)."""
    if getattr(AppSession, _PATCHED, False):
        return
    create = getattr(AppSession, "_create_scriptrunner", None)
    handle = getattr(AppSession, "_handle_scriptrunner_event_on_event_loop", None)
    stop = getattr(AppSession, "request_script_stop", None)
    if create is None or handle is None or stop is None:
        # Another Streamlit: nothing to patch (tests/test_runner_handover.py fails then).
        _LOGGER.warning("Streamlit's AppSession changed: finished runs' messages may be lost")
        return
    AppSession._create_scriptrunner = _remember_stopped_runner(create)  # type: ignore[method-assign]
    AppSession._handle_scriptrunner_event_on_event_loop = _handle_retired_events(handle)  # type: ignore[method-assign]
    AppSession.request_script_stop = _note_stop_asked(stop)  # type: ignore[method-assign]
    setattr(AppSession, _PATCHED, True)


def _remember_stopped_runner(create: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(create)
    def create_scriptrunner(self: AppSession, *args: Any, **kwargs: Any) -> None:
        # The session still holds a runner only when that runner refused the rerun: it had
        # stopped (a superseded runner is let go before this is called). Only one that
        # stopped by itself, having run everything asked of it, has sent all its events
        # but its shutdown by now, all queued ahead of the new runner's.
        previous = self._scriptrunner
        create(self, *args, **kwargs)
        if (
            previous is not None
            and previous is not self._scriptrunner
            and not getattr(previous, _STOP_ASKED, False)
        ):
            setattr(self, _RETIRED, previous)

    return create_scriptrunner


def _note_stop_asked(stop: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(stop)
    def request_script_stop(self: AppSession, *args: Any, **kwargs: Any) -> None:
        if self._scriptrunner is not None:
            setattr(self._scriptrunner, _STOP_ASKED, True)
        stop(self, *args, **kwargs)

    return request_script_stop


def _handle_retired_events(handle: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(handle)
    def handle_event(
        self: AppSession, sender: Any, event: ScriptRunnerEvent, *args: Any, **kwargs: Any
    ) -> None:
        retired = getattr(self, _RETIRED, None)
        if sender is None or sender is not retired or sender is self._scriptrunner:
            handle(self, sender, event, *args, **kwargs)
            return
        if event == ScriptRunnerEvent.SHUTDOWN:
            # Its last event: the runner that replaced it is the session's, keep it so.
            setattr(self, _RETIRED, None)
            return
        current = self._scriptrunner
        self._scriptrunner = sender
        try:
            handle(self, sender, event, *args, **kwargs)
        finally:
            self._scriptrunner = current

    return handle_event
