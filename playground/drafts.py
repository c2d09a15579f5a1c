"""Unsent drafts kept per browser tab, so a reload (a new Streamlit session) finds them.

A tab carries a random draft token in its URL (``?draft=…``); the page's editable values are
kept in this process under (owner, token). Only the owner who saved a draft reads it back:
in hosted mode a link with someone else's token finds nothing. Drafts live in memory, as the
Streamlit sessions do (the load balancer keeps a browser on one process): a restart forgets
them, and the store keeps the most recently saved ones only.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

DRAFT_PARAM = "draft"
MAX_DRAFTS = 2000
# The longest value kept: a pasted dataset larger than this is not worth holding per tab.
MAX_VALUE_CHARS = 200_000
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

Plain = str | int | float | bool | None | list[Any]


def new_token() -> str:
    """A fresh, unguessable draft token."""
    return secrets.token_urlsafe(18)


def valid_token(value: str | None) -> bool:
    """Whether ``value`` has the form of a draft token (anything else in the URL is ignored)."""
    return value is not None and bool(_TOKEN.match(value))


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | float):
        return True
    if isinstance(value, str):
        return len(value) <= MAX_VALUE_CHARS
    if isinstance(value, list | tuple):
        return all(_plain(item) for item in value)
    return False


def draft_values(state: Mapping[Any, Any], patterns: Iterable[re.Pattern[str]]) -> dict[str, Plain]:
    """The entries of ``state`` whose key matches one of ``patterns`` and whose value is
    plain data (text, numbers, lists of them); copies, not references."""
    # Every page run saves its draft: one regex for all patterns, not one per pattern.
    matches = _any_of(tuple(patterns)).fullmatch
    return {
        key: list(value) if isinstance(value, list | tuple) else value
        for key, value in state.items()
        if isinstance(key, str) and matches(key) and _plain(value)
    }


@functools.lru_cache(maxsize=8)
def _any_of(patterns: tuple[re.Pattern[str], ...]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns))


class DraftStore:
    """Drafts by (owner, token), the most recently saved :data:`MAX_DRAFTS` of them."""

    def __init__(self, capacity: int = MAX_DRAFTS) -> None:
        self._capacity = capacity
        self._drafts: OrderedDict[tuple[str, str], dict[str, Plain]] = OrderedDict()
        self._lock = threading.Lock()

    def save(self, owner: str, token: str, values: dict[str, Plain]) -> None:
        """Keep ``values`` as the draft of ``token`` for ``owner`` (replacing an older one)."""
        with self._lock:
            self._drafts[(owner, token)] = dict(values)
            self._drafts.move_to_end((owner, token))
            while len(self._drafts) > self._capacity:
                self._drafts.popitem(last=False)

    def load(self, owner: str, token: str) -> dict[str, Plain] | None:
        """The draft ``owner`` saved under ``token``, or ``None`` (never another owner's)."""
        with self._lock:
            values = self._drafts.get((owner, token))
            return None if values is None else dict(values)


DRAFTS = DraftStore()
