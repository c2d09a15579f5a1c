"""The wake-up patch (``ui/loop_wakeups.py``): a burst of a session's script messages wakes
the event loop once, handled in order, and applies to the Streamlit the app runs on.

Its effect under load is measured by ``benchmarks/bench_load.py``; every browser test of
the app runs with it (``serve.py`` applies it).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from streamlit.runtime.app_session import AppSession
from streamlit.runtime.runtime import Runtime

from ui.loop_wakeups import wake_loop_once_per_burst


class _CountingLoop:
    """A running event loop on its own thread, counting wake-ups from other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.wakeups = 0
        original = self.loop.call_soon_threadsafe

        def counted(callback: Callable[..., Any], *args: Any) -> asyncio.Handle:
            self.wakeups += 1
            return original(callback, *args)

        self.loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, callback: Callable[[], Any]) -> Any:
        """``callback()`` on the loop's thread; its value."""
        done = asyncio.run_coroutine_threadsafe(_call(callback), self.loop)
        self.wakeups -= 1  # the test's own call, not one the app would make
        return done.result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


async def _call(callback: Callable[[], Any]) -> Any:
    return callback()


@pytest.fixture
def loop() -> Iterator[_CountingLoop]:
    wake_loop_once_per_burst()
    running = _CountingLoop()
    yield running
    running.close()


class _Session:
    """What ``AppSession._call_soon_on_event_loop`` reads of a session, with that method."""

    def __init__(self, loop: _CountingLoop) -> None:
        self._event_loop = loop.loop

    def _call_soon_on_event_loop(self, callback: Callable[[], None]) -> None:
        AppSession._call_soon_on_event_loop(self, callback)  # type: ignore[arg-type]


def _session(loop: _CountingLoop) -> _Session:
    return _Session(loop)


def test_the_patch_wraps_streamlits_own_methods_once() -> None:
    wake_loop_once_per_burst()
    wake_loop_once_per_burst()  # once per process, whoever calls it again
    for method in (AppSession._call_soon_on_event_loop, Runtime._enqueued_some_message):
        inner = getattr(method, "__wrapped__", None)
        assert inner is not None, method
        assert not hasattr(inner, "__wrapped__"), method


def test_a_burst_of_script_events_wakes_the_loop_once_in_order(loop: _CountingLoop) -> None:
    session = _session(loop)
    handled: list[int] = []
    hold = threading.Event()
    # The loop is busy while the script thread (this one) produces a burst of messages.
    loop.loop.call_soon_threadsafe(hold.wait, 10)
    before = loop.wakeups
    for n in range(100):
        session._call_soon_on_event_loop(lambda n=n: handled.append(n))
    hold.set()
    loop.run(lambda: None)
    assert handled == list(range(100))
    assert loop.wakeups - before == 1
    # The next burst wakes it again.
    session._call_soon_on_event_loop(lambda: handled.append(100))
    loop.run(lambda: None)
    assert handled[-1] == 100
    assert loop.wakeups - before == 2


def test_events_produced_while_a_burst_is_handled_are_handled_next(
    loop: _CountingLoop,
) -> None:
    session = _session(loop)
    handled: list[str] = []

    def first() -> None:
        handled.append("first")
        # Another message arrives while the burst is handled: it waits for its own turn.
        session._call_soon_on_event_loop(lambda: handled.append("later"))
        assert handled == ["first"]

    # Both are queued while the loop is busy, so they make one burst.
    hold = threading.Event()
    loop.loop.call_soon_threadsafe(hold.wait, 10)
    session._call_soon_on_event_loop(first)
    session._call_soon_on_event_loop(lambda: handled.append("second"))
    hold.set()
    loop.run(lambda: None)
    loop.run(lambda: None)
    assert handled == ["first", "second", "later"]


def test_a_failing_callback_does_not_stop_the_ones_after_it(loop: _CountingLoop) -> None:
    session = _session(loop)
    handled: list[int] = []

    def broken() -> None:
        raise RuntimeError("a broken handler")

    hold = threading.Event()
    loop.loop.call_soon_threadsafe(hold.wait, 10)
    session._call_soon_on_event_loop(broken)
    session._call_soon_on_event_loop(lambda: handled.append(1))
    hold.set()
    loop.run(lambda: None)
    assert handled == [1]


def test_the_send_signal_is_set_directly_on_the_loop_and_woken_from_elsewhere(
    loop: _CountingLoop,
) -> None:
    need_send_data = loop.run(asyncio.Event)
    objs = SimpleNamespace(eventloop=loop.loop, need_send_data=need_send_data)
    runtime = SimpleNamespace(_get_async_objs=lambda: objs)

    def enqueued() -> None:
        Runtime._enqueued_some_message(runtime)  # type: ignore[arg-type]

    before = loop.wakeups
    loop.run(enqueued)
    assert need_send_data.is_set()
    assert loop.wakeups == before  # no wake-up of the loop by itself

    loop.run(need_send_data.clear)
    enqueued()  # from another thread: the loop is woken
    loop.run(lambda: None)
    assert need_send_data.is_set()
    assert loop.wakeups == before + 1
