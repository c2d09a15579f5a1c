"""Who is using this session: nobody in particular locally, a signed-in user when hosted.

``app.py`` calls :func:`require_principal` once per script run, before any page: in hosted
mode it signs the user in (OIDC through ``st.login``, or the trusted proxy's header) or
stops the page with a sign-in screen. Pages then read :func:`current_principal`, which
sends a hosted page run that skipped ``app.py`` back through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn
from urllib.parse import urlsplit

import streamlit as st

from playground.errors import PlaygroundError, user_message
from playground.principal import Principal
from playground.safe_text import escape_markdown
from playground.services import hosted, runtime
from ui.connection import connection_from_state

PRINCIPAL_KEY = "auth.principal"
VIEW_KEY = "auth.view"
"""Session state: the signed-in user's :class:`~playground.services.hosted.PageView`, read
once per page run by :func:`require_principal` (the connection and the sidebar reuse it)."""
REROUTED_KEY = "auth.rerouted"
ROUTING_PATH = "signing-in"


def require_principal() -> Principal | None:
    """The signed-in principal (hosted), or ``None`` (local); stops the page if not signed in."""
    settings = runtime.get_settings()
    if not settings.hosted:
        return None
    try:
        if settings.auth_mode == "oidc":
            if not st.user.is_logged_in:
                _sign_in_screen()
            identity = hosted.oidc_identity(st.user.to_dict())
        else:
            identity = hosted.proxy_identity(dict(st.context.headers), _peer_address())
        view = hosted.page_view(identity)
    except PlaygroundError as exc:
        st.session_state.pop(PRINCIPAL_KEY, None)
        st.session_state.pop(VIEW_KEY, None)
        message = user_message(exc)
        stop_with(lambda: st.error(message, icon=":material/lock:"))
    st.session_state[PRINCIPAL_KEY] = view.principal
    st.session_state[VIEW_KEY] = view
    return view.principal


def forget_connection() -> None:
    """Read the connection again on its next use (the user's own key was saved or removed)."""
    st.session_state.pop(VIEW_KEY, None)


def _page_view(principal: Principal) -> hosted.PageView | None:
    """This session's page view, if it is ``principal``'s (read by this page run's
    ``app.py``, or by the last one for a callback that runs before it)."""
    view = st.session_state.get(VIEW_KEY)
    if isinstance(view, hosted.PageView) and view.principal == principal:
        return view
    return None


def current_principal() -> Principal | None:
    """The principal :func:`require_principal` resolved for this session (``None`` locally).

    Hosted, a session without one is a page run that skipped ``app.py``: it is rerun through
    ``app.py`` (see :func:`_reroute`), so a page never runs for nobody.
    """
    principal = st.session_state.get(PRINCIPAL_KEY)
    if isinstance(principal, Principal):
        return principal
    if runtime.get_settings().hosted:
        _reroute()
    return None


def _reroute() -> NoReturn:
    """Rerun this page through ``app.py``, which signs the user in.

    With a ``pages/`` directory beside ``app.py``, Streamlit runs the page script a URL
    names directly, skipping ``app.py``, until a session of the process has called
    ``st.navigation``: after a restart, a browser reconnecting to ``/evaluate`` would use
    the page as nobody (the local user, who sees everything). Calling ``st.navigation``
    ends that mode for the process; the page keeps its URL path, which is its identity.
    """
    if st.session_state.get(REROUTED_KEY):
        # Still skipped after a rerun: stop rather than loop, or show the page to nobody.
        stop_with(lambda: st.error("Open the app's home page to sign in.", icon=":material/lock:"))
    st.session_state[REROUTED_KEY] = True
    url_path = urlsplit(st.context.url or "").path.rstrip("/").rpartition("/")[2]
    pages = [st.Page(_nothing, title="Signing in", url_path=ROUTING_PATH, default=True)]
    if url_path not in ("", ROUTING_PATH):
        pages.append(st.Page(_nothing, title="Signing in", url_path=url_path))
    st.navigation(pages, position="hidden")
    st.rerun()


def _nothing() -> None:
    """A page that is never run: :func:`_reroute` only names pages, then reruns."""


def session_connection() -> runtime.Connection:
    """The connection this session runs with: the server's keys when hosted, else the
    Settings page's choices over the environment."""
    principal = current_principal()
    if principal is None:
        return connection_from_state(st.session_state)
    view = _page_view(principal)
    if view is not None:
        return view.connection
    try:
        return hosted.connection_for(principal)
    except PlaygroundError as exc:
        st.error(user_message(exc))
        st.stop()
        raise


def sidebar_account(principal: Principal) -> None:
    """The signed-in user, role and today's spend against their budget, and Sign out."""
    view = _page_view(principal)
    limits, spend = (view.limits, view.spend) if view else hosted.limits_and_spend(principal)
    st.markdown(f"**Signed in:** {escape_markdown(principal.display_name)} · {principal.role}")
    budget = limits.daily_budget_tokens
    if budget:
        st.progress(
            min(1.0, spend.today_tokens / budget),
            text=f"Today: {spend.today_tokens:,} of {budget:,} billing tokens",
        )
    else:
        st.caption(f"Today: {spend.today_tokens:,} billing tokens (no daily budget)")
    if runtime.get_settings().auth_mode == "oidc":
        st.button("Sign out", on_click=st.logout, icon=":material/logout:")


def _sign_in_screen() -> None:
    def draw() -> None:
        st.title("Elumenta Playground")
        st.write("This is your team's hosted playground. Sign in to continue.")
        st.button("Sign in", type="primary", on_click=st.login, icon=":material/login:")

    stop_with(draw)


def stop_with(draw: Callable[[], object], title: str = "Sign in") -> NoReturn:
    """Show only ``draw`` as the app's one page (sign-in, or an error) and end the run."""

    def body() -> None:
        draw()

    # Without st.navigation Streamlit would list pages/ and run them unguarded.
    page = st.Page(body, title=title, url_path=title.lower().replace(" ", "-"))
    st.navigation([page], position="hidden").run()
    st.stop()
    raise AssertionError("st.stop() ends the script run")


def _peer_address() -> str | None:
    # Streamlit reports a loopback peer as None; any other peer comes back as its address.
    return st.context.ip_address or "127.0.0.1"
