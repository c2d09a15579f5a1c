"""What every page that runs models needs first: the session's connection and providers."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.providers.base import Provider
from playground.services import runtime
from ui.auth import session_connection


def connection_and_providers() -> tuple[runtime.Connection, dict[str, Provider]]:
    """The session's connection and its providers; shows the error and stops the page if none."""
    connection = session_connection()
    try:
        return connection, runtime.get_providers(connection)
    except PlaygroundError as exc:
        st.error(user_message(exc))
        st.stop()
        raise  # st.stop() raises; this line only tells type checkers the function ends here
