"""The runner: one prompt on N models at once, on one background loop, any thread watching.

:mod:`~playground.runner.runs` holds the :class:`Runner`, its runs and their events;
:mod:`~playground.runner.write_queue` is its single history-writer thread (starts first,
queued writes committed together). Callers import from here.
"""

from playground.runner.runs import (
    NOT_RECORDED,
    NOT_SENT,
    ColumnRef,
    EventCallback,
    ModelDelta,
    ModelFinished,
    ModelStarted,
    RunEvent,
    RunHandle,
    Runner,
    RunSnapshot,
    SendCheck,
    unknown_provider_message,
    validate_compare,
)

__all__ = [
    "NOT_RECORDED",
    "NOT_SENT",
    "ColumnRef",
    "EventCallback",
    "ModelDelta",
    "ModelFinished",
    "ModelStarted",
    "RunEvent",
    "RunHandle",
    "RunSnapshot",
    "Runner",
    "SendCheck",
    "unknown_provider_message",
    "validate_compare",
]
