"""The app in hosted mode as a real process, for browser, load and multi-user tests.

Proxy sign-in mode behind no real proxy: each browser context sends the
``X-Forwarded-Email`` and ``X-Playground-Proxy-Secret`` headers a reverse proxy would add
(the app trusts 127.0.0.1 when the secret is right: :func:`proxy_headers`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page
from pydantic import SecretStr

from playground.access.identity import PROXY_SECRET_HEADER, Identity
from playground.access.spending import spend_of
from playground.access.users import set_limits, set_role, sign_in
from playground.config import Settings
from playground.principal import Principal
from playground.store import Store, open_store
from tests.e2e.app_process import AppProcess, app_environment
from tests.fake_elumenta.process import FakeServerProcess
from tests.store_fixtures import postgres_schema_url

ADMIN = "ana@example.org"
IDENTITY_HEADER = "X-Forwarded-Email"
# What the proxy and every app process of a test share (PLAYGROUND_PROXY_SECRET).
PROXY_SECRET = secrets.token_urlsafe(32)


def proxy_headers(email: str | None) -> dict[str, str]:
    """The headers the reverse proxy adds for ``email`` (``None``: a user it did not name)."""
    return {PROXY_SECRET_HEADER: PROXY_SECRET} | ({IDENTITY_HEADER: email} if email else {})


class HostedApp:
    """The hosted app's URL and database, and a way to act on users as the admin would."""

    def __init__(self, url: str, store: Store, settings: Settings, process: AppProcess) -> None:
        self.url = url
        self.store = store
        self.settings = settings
        self.process = process

    def user(self, email: str) -> Principal:
        """The principal of ``email`` (signing them in on first use, as the app would)."""
        name = email.split("@")[0]
        with self.store.session() as session, session.begin():
            return sign_in(session, Identity(email, email, name), self.settings)

    def admin_sets(self, email: str, *, role: str | None = None, daily: int | None = None) -> None:
        """What an admin does on the Admin page: change a role or a daily budget."""
        admin, target = self.user(ADMIN), self.user(email)
        with self.store.session() as session, session.begin():
            if role is not None:
                set_role(session, admin, target.user_id, role)
            if daily is not None:
                set_limits(
                    session,
                    admin,
                    target.user_id,
                    daily_budget_tokens=daily,
                    monthly_budget_tokens=None,
                    requests_per_minute=None,
                )

    def spent_today(self, email: str) -> int:
        """Billing tokens ``email`` spent today (earlier tests may have run as them)."""
        with self.store.session() as session, session.begin():
            return spend_of(session, email).today_tokens


def hosted_environment(
    fake_server: FakeServerProcess, data_dir: Path, database_url: str, **extra: str
) -> dict[str, str]:
    """A hosted app's environment (proxy sign-in, :data:`ADMIN` the first admin) on
    ``database_url``; every app process given the same one shares keys and cookies."""
    return app_environment(
        fake_server,
        data_dir,
        PLAYGROUND_AUTH="proxy",
        PLAYGROUND_PROXY_SECRET=PROXY_SECRET,
        FORWARDED_ALLOW_IPS="",
        PLAYGROUND_ADMIN_EMAILS=ADMIN,
        PLAYGROUND_DATABASE_URL=database_url,
        PLAYGROUND_SECRET_KEY=secrets.token_urlsafe(32),
        STREAMLIT_SERVER_COOKIE_SECRET=secrets.token_urlsafe(32),
        **extra,
    )


def hosted_settings(database_url: str) -> Settings:
    """The settings :func:`hosted_environment` gives the app, for acting on its database."""
    return Settings(
        auth_mode="proxy",
        proxy_secret=SecretStr(PROXY_SECRET),
        admin_emails=ADMIN,
        database_url=database_url,
    )


def assert_no_traceback(app: AppProcess) -> None:
    """Fail with the end of the app's log if it logged a traceback."""
    assert "Traceback" not in app.log_tail(10**9), app.log_tail(5000)


def page_as(
    chromium: Browser, email: str | None, url: str, headers: dict[str, str] | None = None
) -> Page:
    """A new browser session whose requests carry ``headers``: by default the proxy's
    (:func:`proxy_headers` for ``email``)."""
    headers = proxy_headers(email) if headers is None else headers
    context = chromium.new_context(
        viewport={"width": 1440, "height": 1000}, extra_http_headers=headers
    )
    page = context.new_page()
    page.goto(url)
    return page


@contextmanager
def hosted_app_process(
    fake_server: FakeServerProcess, data_dir: Path, **extra_env: str
) -> Iterator[HostedApp]:
    """``streamlit run app.py`` in proxy sign-in mode on a fresh PostgreSQL schema
    (``extra_env``: more settings, e.g. ``PLAYGROUND_REQUESTS_PER_MINUTE``).

    ``RuntimeError`` (with the app's log) if it does not start; on exit, an
    ``AssertionError`` if the app logged a traceback.
    """
    with postgres_schema_url("test_hosted") as database_url:
        env = hosted_environment(fake_server, data_dir, database_url, **extra_env)
        app = AppProcess(env, data_dir / "app.log")
        app.start()
        store = open_store(database_url)
        try:
            yield HostedApp(app.url, store, hosted_settings(database_url), app)
        finally:
            store.close()
            app.stop()
            assert_no_traceback(app)
