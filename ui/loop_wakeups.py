"""Wake the server's event loop once per burst of a session's script messages, not once per
message.

Streamlit (1.67) hands every message a script run produces (each element, each delta) to
the event loop with ``call_soon_threadsafe``, and the loop, having queued it for the
browser, wakes its own flush task the same way. Each of those calls writes a byte to the
loop's wake-up socket: a system call during which the thread lets go of the GIL. While
answers stream, another thread takes the GIL at that moment and may keep it for the
interpreter's whole switch interval (5 ms), so a page run of a hundred elements waited
for the GIL a hundred times, and every page run and click got slower the more users
streamed.

:func:`wake_loop_once_per_burst` patches two places:

- a session's script-runner events wait in one first-in, first-out list per session;
  only the first of a burst schedules the loop callback that handles them, in order (at
  most the events present when it starts; the rest in a callback of their own, so one busy
  session cannot hold the loop);
- the runtime's "messages to send" signal is set directly when it is raised on the event
  loop itself, where it was scheduled through the wake-up socket.

Events are handled in the order they were produced, as before; one can only be handled
sooner than it would have been (together with the earlier ones of its burst).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import threading
from collections.abc import Callable

from streamlit.runtime.app_session import AppSession
from streamlit.runtime.runtime import Runtime

_LOGGER = logging.getLogger(__name__)
_PATCHED = "_playground_wakes_once_per_burst"
_QUEUE = "_playground_loop_queue"


class _LoopQueue:
    """A session's callbacks waiting for the event loop, and whether a drain is due."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.callbacks: collections.deque[Callable[[], None]] = collections.deque()
        self.scheduled = False


def wake_loop_once_per_burst() -> None:
    """Patch Streamlit's ``AppSession`` and ``Runtime`` once per process (see the module's
    docstring)."""
    if getattr(AppSession, _PATCHED, False):
        return
    call_soon = getattr(AppSession, "_call_soon_on_event_loop", None)
    enqueued = getattr(Runtime, "_enqueued_some_message", None)
    if call_soon is None or enqueued is None or not hasattr(Runtime, "_get_async_objs"):
        # Another Streamlit: nothing to patch (tests/test_loop_wakeups.py fails then).
        _LOGGER.warning("Streamlit changed: each script message wakes the event loop")
        return
    AppSession._call_soon_on_event_loop = _queued(call_soon)  # type: ignore[method-assign]
    Runtime._enqueued_some_message = _direct_on_loop(enqueued)  # type: ignore[method-assign,assignment]
    setattr(AppSession, _PATCHED, True)


def _queued(call_soon: Callable[[AppSession, Callable[[], None]], None]) -> Callable[..., None]:
    @functools.wraps(call_soon)
    def call_soon_on_event_loop(self: AppSession, callback: Callable[[], None]) -> None:
        queue: _LoopQueue | None = self.__dict__.get(_QUEUE)
        if queue is None:
            # First use is on the loop thread or the session's first script thread, before
            # any other thread can call: setdefault settles a race regardless.
            queue = self.__dict__.setdefault(_QUEUE, _LoopQueue())
        with queue.lock:
            queue.callbacks.append(callback)
            if queue.scheduled:
                return
            queue.scheduled = True
        try:
            call_soon(self, functools.partial(_drain, queue))
        except BaseException:
            with queue.lock:
                queue.scheduled = False
            raise

    return call_soon_on_event_loop


def _drain(queue: _LoopQueue) -> None:
    """Run the callbacks queued when this started, in order; schedule the rest."""
    with queue.lock:
        ready = list(queue.callbacks)
        queue.callbacks.clear()
    for callback in ready:
        try:
            callback()
        except Exception:  # as the loop would: log it and go on with the next
            _LOGGER.exception("Session event callback failed")
    with queue.lock:
        if not queue.callbacks:
            queue.scheduled = False
            return
    # Produced meanwhile: their own turn, after what else the loop has ready.
    asyncio.get_running_loop().call_soon(_drain, queue)


def _direct_on_loop(enqueued: Callable[[Runtime], None]) -> Callable[[Runtime], None]:
    @functools.wraps(enqueued)
    def enqueued_some_message(self: Runtime) -> None:
        objs = self._get_async_objs()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is objs.eventloop:
            objs.need_send_data.set()
        else:
            enqueued(self)

    return enqueued_some_message
