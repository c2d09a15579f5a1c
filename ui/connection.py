"""The session's connection choices (the Settings page's widgets) and its cached balance."""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from playground.errors import AuthenticationError, PlaygroundError, user_message
from playground.presenters.compare import balance_after_run
from playground.providers.base import Balance
from playground.results import ModelResult
from playground.services import runtime
from playground.services.compare import ColumnRef

PROVIDER_CHOICE_KEY = "settings.provider"
BASE_URL_KEY = "settings.base_url"
API_KEY_KEY = "settings.api_key"
OPENAI_BASE_URL_KEY = "settings.openai_base_url"
OPENAI_API_KEY_KEY = "settings.openai_api_key"
OPENAI_MODELS_KEY = "settings.openai_models"
BALANCE_STATE_KEY = "compare.balance"
BALANCE_TTL_S = 60.0
# The runs this session started, with the connection they were sent with (newest last).
OWN_RUNS_KEY = "compare.own_runs"
MAX_OWN_RUNS = 50


def connection_from_state(state: Mapping[Any, Any]) -> runtime.Connection:
    """The session's connection: the Settings page's choices in ``state`` over the
    environment's (:func:`~playground.services.runtime.connection_from`)."""

    def text(key: str) -> str:
        return str(state.get(key) or "")

    return runtime.connection_from(
        state.get(PROVIDER_CHOICE_KEY) or "auto",
        text(BASE_URL_KEY),
        text(API_KEY_KEY),
        text(OPENAI_BASE_URL_KEY),
        text(OPENAI_API_KEY_KEY),
        text(OPENAI_MODELS_KEY),
    )


def cached_balance(
    state: MutableMapping[Any, Any], connection: runtime.Connection
) -> tuple[Balance | None, str | None]:
    """The balance (or why it could not be read), fetched at most once a minute per session.

    Pop :data:`BALANCE_STATE_KEY` from ``state`` after a run to read the new balance.
    """
    cached = state.get(BALANCE_STATE_KEY)
    if cached is not None:
        fingerprint, fetched_at, balance, error = cached
        if fingerprint == connection.fingerprint and time.monotonic() - fetched_at < BALANCE_TTL_S:
            return balance, error
    try:
        balance, error = runtime.fetch_balance(connection), None
    except PlaygroundError as exc:
        balance, error = None, user_message(exc)
        if isinstance(exc, AuthenticationError) and "Settings" not in error:
            error += " Check the API key in Settings."
    state[BALANCE_STATE_KEY] = (connection.fingerprint, time.monotonic(), balance, error)
    return balance, error


def note_own_run(
    state: MutableMapping[Any, Any], run_id: str, connection: runtime.Connection
) -> None:
    """Remember that this session started run ``run_id`` with ``connection``: once it has
    finished, what its answers report may stand for the balance (:func:`balance_after`)."""
    runs = dict(state.get(OWN_RUNS_KEY) or {})
    runs[run_id] = connection.fingerprint
    while len(runs) > MAX_OWN_RUNS:
        runs.pop(next(iter(runs)))
    state[OWN_RUNS_KEY] = runs


def balance_after(
    state: MutableMapping[Any, Any],
    connection: runtime.Connection,
    columns: Sequence[ColumnRef],
    results: Sequence[ModelResult],
) -> None:
    """The session's balance once the runs behind ``columns`` have finished with
    ``results``: the figures their answers reported when this session sent every one of
    them with ``connection`` (no request to the provider on the way to the finished page),
    else read again at its next use.

    A comparison opened by link or from History is someone else's run, or an old one: its
    answers' figures never stand for this session's balance.
    """
    cached = state.get(BALANCE_STATE_KEY)
    own = state.get(OWN_RUNS_KEY) or {}
    after = None
    if (
        cached is not None
        and cached[0] == connection.fingerprint
        and cached[2] is not None
        and all(own.get(column.run_id) == connection.fingerprint for column in columns)
    ):
        after = balance_after_run(cached[2], connection.provider, results)
    if after is None or cached is None:
        state.pop(BALANCE_STATE_KEY, None)
    else:
        # When it was read stays: the provider is asked again a minute after that.
        state[BALANCE_STATE_KEY] = (cached[0], cached[1], after, None)
