"""The runner's history writes: one thread, starts first, queued writes committed together.

A model's request is sent only once its history row exists, so a start must not wait
behind other runs' partial-text flushes and final writes. The writer thread therefore
takes every queued start (and cache look-up) before anything else, and writes what is
queued in as few transactions as it can: recorders that offer ``write_together`` (the
history store) get all their queued calls in one transaction, so one commit serves many
models when many users run at once. A partial-text flush that a newer flush or the final
write of the same result already carries is dropped.

Calls for one result keep their order (start, flushes, final write): a start is awaited
before its flushes are queued, and flushes and final writes are never reordered.

Writes nobody waits for (flushes and final writes) wait up to :data:`GATHER_S` after the
first of them was queued, to be written together; a start queued meanwhile is written at
once, and closing the queue ends the wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from playground.results import Recorder

log = logging.getLogger(__name__)

#: Recorder calls a model's request waits for: they go before everything else queued.
URGENT = frozenset({"find_cached", "record_started"})
FLUSH = "record_progress"
FINAL = "record_finished"

GATHER_S = 0.005
"""How long the writer lets final writes and flushes gather before writing them. A final
write is queued the moment an answer ends, which is when the runner's loop sends the next
queued request: written at once, the writer's transaction (Python, holding the GIL) and
that send took turns. Measured in a batch (8 requests in flight, 50-250 ms each): the
time from an answer's end to the next request's arrival fell from 3.9 to 3.0 ms (median),
and several answers' final writes share a commit."""


@dataclass(eq=False)
class RecorderCall:
    """One recorder method call waiting for the writer thread; ``future`` gets its outcome."""

    recorder: Recorder
    method: str
    args: tuple[Any, ...]
    future: Future[Any] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def urgent(self) -> bool:
        """Whether a model's request waits for this call."""
        return self.method in URGENT

    def result_id(self) -> int | None:
        """The row a flush or final write updates (``None`` for other calls)."""
        if self.method in (FLUSH, FINAL):
            return self.args[0].result_id  # type: ignore[no-any-return]
        return None


class WriteQueue:
    """A writer thread running recorder calls as described in the module docstring."""

    def __init__(self, name: str = "playground-writer", *, gather_s: float = GATHER_S) -> None:
        self._gather_s = gather_s
        self._ready = threading.Condition()
        self._queue: list[RecorderCall] = []
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def submit(self, recorder: Recorder, method: str, *args: Any) -> Future[Any]:
        """Queue ``recorder.<method>(*args)``; the future gets what it returned or raised."""
        call = RecorderCall(recorder, method, args)
        with self._ready:
            if self._closed:
                raise RuntimeError("The history writer has been closed.")
            self._queue.append(call)
            self._ready.notify()
        return call.future

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then stop the thread."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout)

    def _urgent_or_closed(self) -> bool:
        """Whether the writer must write now: a call a request waits for is queued, or the
        queue is closing (condition held)."""
        return self._closed or any(call.urgent for call in self._queue)

    def _serve(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if not self._queue:
                    return
                if not self._urgent_or_closed():
                    due = self._queue[0].queued_at + self._gather_s
                    self._ready.wait_for(self._urgent_or_closed, due - time.monotonic())
                batch = take_batch(self._queue)
            try:
                write_batch(batch)
            except Exception as exc:  # no caller may wait forever for its write
                log.exception("The history writer failed")
                for call in batch:
                    if not call.future.done():
                        call.future.set_exception(exc)


def take_batch(queue: list[RecorderCall]) -> list[RecorderCall]:
    """Remove and return the next calls to write: every urgent one if any is queued, else
    everything queued (in queue order)."""
    urgent = [call for call in queue if call.urgent]
    batch = urgent or list(queue)
    taken = set(map(id, batch))
    queue[:] = [call for call in queue if id(call) not in taken]
    return batch


def write_batch(batch: Sequence[RecorderCall]) -> None:
    """Run ``batch``: superseded flushes dropped, the calls of recorders sharing a
    ``group_key`` written together, every other call on its own; settles every future."""
    calls = _without_superseded_flushes(batch)
    groups: dict[object, list[RecorderCall]] = {}
    alone: list[list[RecorderCall]] = []
    for call in calls:
        key = getattr(call.recorder, "group_key", None)
        if key is None:
            alone.append([call])
        else:
            groups.setdefault(key, []).append(call)
    for group in [*groups.values(), *alone]:
        if len(group) == 1:
            _settle(group[0], _run_alone(group[0]))
            continue
        try:
            outcomes = group[0].recorder.write_together(  # type: ignore[attr-defined]
                [(call.recorder, call.method, call.args) for call in group]
            )
        except Exception as exc:  # a broken recorder must not stop the writer thread
            log.exception("Could not write the history")
            outcomes = [exc] * len(group)
        for call, outcome in zip(group, outcomes, strict=True):
            _settle(call, outcome)


def _without_superseded_flushes(batch: Sequence[RecorderCall]) -> list[RecorderCall]:
    """``batch`` minus flushes whose row a later flush or final write in it rewrites
    (their futures are settled as written: the newer write carries their text)."""
    last: dict[int, RecorderCall] = {}
    for call in batch:
        row = call.result_id()
        if row is not None:
            last[row] = call
    kept = []
    for call in batch:
        row = call.result_id()
        if call.method == FLUSH and row is not None and last[row] is not call:
            call.future.set_result(None)
        else:
            kept.append(call)
    return kept


def _run_alone(call: RecorderCall) -> Any:
    try:
        return getattr(call.recorder, call.method)(*call.args)
    except Exception as exc:  # noqa: BLE001 - settled on its future: the caller reports it
        return exc


def _settle(call: RecorderCall, outcome: Any) -> None:
    if isinstance(outcome, BaseException):
        call.future.set_exception(outcome)
    else:
        call.future.set_result(outcome)
