"""The session's connection choices (the Settings page's widgets) and its cached balance."""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from playground.errors import AuthenticationError, PlaygroundError, user_message
from playground.providers.base import Balance
from playground.services import runtime

PROVIDER_CHOICE_KEY = "settings.provider"
BASE_URL_KEY = "settings.base_url"
API_KEY_KEY = "settings.api_key"
OPENAI_BASE_URL_KEY = "settings.openai_base_url"
OPENAI_API_KEY_KEY = "settings.openai_api_key"
OPENAI_MODELS_KEY = "settings.openai_models"
BALANCE_STATE_KEY = "compare.balance"
BALANCE_TTL_S = 60.0


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
