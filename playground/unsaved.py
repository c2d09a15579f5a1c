"""Answers this process holds that are not in the history database yet (what the banner reads).

A database outage only delays writes: finished answers wait in memory while the writes are
retried, and go to the spool file if the database stays away (``playground.store.outage``).
This process-wide tally lets a page say so, and stop saying so once they are written.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Unsaved:
    """A consistent reading of the tally."""

    database_down: bool
    waiting: int  # finished answers whose write is queued or being retried
    spooled: int  # answers this process put in the spool file, not yet replayed

    @property
    def kept(self) -> int:
        """Answers kept outside the database right now."""
        return self.waiting + self.spooled

    @property
    def alarming(self) -> bool:
        """Whether history is not being saved right now (the banner shows)."""
        return self.database_down or self.spooled > 0


class _Tally:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down = False
        self._waiting = 0
        self._spooled = 0

    def read(self) -> Unsaved:
        with self._lock:
            return Unsaved(self._down, self._waiting, self._spooled)

    def add_waiting(self, delta: int) -> None:
        with self._lock:
            self._waiting += delta

    def set_down(self, down: bool) -> None:
        with self._lock:
            self._down = down

    def add_spooled(self, delta: int) -> None:
        with self._lock:
            self._spooled = max(0, self._spooled + delta)

    def clear_spooled(self) -> None:
        with self._lock:
            self._spooled = 0


TALLY = _Tally()


def unsaved() -> Unsaved:
    """How many answers this process keeps outside the database, and whether it is away."""
    return TALLY.read()


def banner_text(state: Unsaved) -> str | None:
    """The warning a page shows while writes are waiting; ``None`` when all is written."""
    if not state.alarming:
        return None
    noun = "answer" if state.kept == 1 else "answers"
    return (
        f"History is not being saved right now — {state.kept} {noun} kept, "
        "will be written when the database returns."
    )
