"""OIDC sign-in in Chromium: ``st.login`` against a real OpenID provider, then sign-out.

The provider is oidc-provider-mock as its own process: its authorization page asks for a
subject and issues an ID token with that user's claims. The app reads its ``[auth]``
section from a temporary ``secrets.toml`` (``STREAMLIT_SECRETS_FILES``), so the repo's
``.streamlit/`` is left alone.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Self

import pytest
from playwright.sync_api import Browser, Page, expect

from playground.access.users import list_users
from playground.store import open_store
from tests.e2e.app_driver import column, pick_models, run_prompt
from tests.e2e.app_process import ROOT, AppProcess, app_environment
from tests.fake_elumenta.process import FakeServerProcess, ServiceProcess, wait_http

pytestmark = pytest.mark.browser

# The app's first script runs import its modules: slow on a busy machine.
FIRST_RENDER_MS = 60_000
ADMIN = {"sub": "ana", "email": "ana@example.org", "name": "Ana"}
MEMBER = {"sub": "ben", "email": "ben@example.org", "name": "Ben"}


class OidcProviderProcess(ServiceProcess):
    """``python -m oidc_provider_mock`` on a free port, knowing these users' claims."""

    def __init__(self, users: Sequence[dict[str, str]], log_path: Path) -> None:
        super().__init__()
        self.users = users
        self.log_path = log_path
        self.issuer = f"http://127.0.0.1:{self.port}"

    @property
    def metadata_url(self) -> str:
        """The discovery document Streamlit's Authlib client reads."""
        return f"{self.issuer}/.well-known/openid-configuration"

    def start(self) -> Self:
        """Start the provider and wait until it serves its discovery document."""
        cmd = [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port)]
        for claims in self.users:
            cmd += ["--user-claims", json.dumps(claims)]
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_http(self.metadata_url, self._process)
        return self


def auth_secrets(provider: OidcProviderProcess, app_port: int) -> str:
    """The ``[auth]`` section of ``secrets.toml`` for ``st.login`` against ``provider``."""
    return (
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_urlsafe(32)}"\n'
        'client_id = "elumenta-playground-e2e"\n'
        f'client_secret = "{secrets.token_urlsafe(16)}"\n'
        f'server_metadata_url = "{provider.metadata_url}"\n'
    )


class OidcApp:
    """The app in OIDC sign-in mode, its provider and its history database."""

    def __init__(self, url: str, provider: OidcProviderProcess, database_url: str) -> None:
        self.url = url
        self.provider = provider
        self.database_url = database_url

    def subjects(self) -> set[str]:
        """The subjects of every user the app has signed in so far."""
        store = open_store(self.database_url)
        try:
            with store.session() as session, session.begin():
                return {user.subject for user in list_users(session)}
        finally:
            store.close()


@pytest.fixture(scope="module")
def oidc_app(
    fake_server: FakeServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OidcApp]:
    """``streamlit run app.py`` with ``PLAYGROUND_AUTH=oidc`` and the mock provider."""
    data_dir = tmp_path_factory.mktemp("oidc-data")
    secrets_path = data_dir / "secrets.toml"
    extra = {
        "PLAYGROUND_AUTH": "oidc",
        "PLAYGROUND_ADMIN_EMAILS": ADMIN["email"],
        "PLAYGROUND_SECRET_KEY": secrets.token_urlsafe(32),
        "STREAMLIT_SECRETS_FILES": str(secrets_path),
    }
    with OidcProviderProcess([ADMIN, MEMBER], data_dir / "oidc.log") as provider:
        app = AppProcess(app_environment(fake_server, data_dir, **extra), data_dir / "app.log")
        secrets_path.write_text(auth_secrets(provider, app.port))
        try:
            app.start()
        except RuntimeError as exc:
            pytest.fail(str(exc))
        try:
            yield OidcApp(app.url, provider, f"sqlite:///{data_dir / 'history.sqlite3'}")
        finally:
            app.stop()
            assert "Traceback" not in app.log_tail(10**9), app.log_tail(5000)


@pytest.fixture
def tab(chromium: Browser) -> Iterator[Page]:
    """A new browser context (no cookies, its own session)."""
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def expect_sign_in_screen(page: Page) -> None:
    """Only the sign-in screen: its button, and none of the app's pages."""
    expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=FIRST_RENDER_MS)
    expect(page.get_by_text("Sign in to continue.")).to_be_visible()
    expect(page.get_by_role("heading", name="Compare models")).to_have_count(0)
    expect(page.get_by_role("link", name="History")).to_have_count(0)


def sign_in_as(page: Page, oidc_app: OidcApp, sub: str) -> None:
    """Open the app, press Sign in and authorize as ``sub`` on the provider's page."""
    page.goto(oidc_app.url)
    expect_sign_in_screen(page)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{oidc_app.provider.issuer}/oauth2/authorize?**")
    page.get_by_placeholder("sub").fill(sub)
    page.get_by_role("button", name="Authorize", exact=True).click()
    page.wait_for_url(f"{oidc_app.url}/**")
    compare = page.get_by_role("heading", name="Compare models")
    expect(compare).to_be_visible(timeout=FIRST_RENDER_MS)


def test_an_admin_signs_in_sees_the_admin_page_and_signs_out(
    tab: Page, oidc_app: OidcApp, artifacts: Path
) -> None:
    sign_in_as(tab, oidc_app, ADMIN["sub"])
    expect(tab.get_by_text("Signed in: Ana · admin")).to_be_visible()
    expect(tab.get_by_role("link", name="Admin")).to_be_visible()
    tab.screenshot(path=artifacts / "oidc-signed-in-admin.png")
    # The user row is keyed by the e-mail claim, not the provider's opaque subject.
    assert ADMIN["email"] in oidc_app.subjects()

    tab.get_by_role("button", name="Sign out").click()
    # Streamlit ends the session at the provider too, which asks for a confirmation.
    tab.wait_for_url(f"{oidc_app.provider.issuer}/oauth2/end_session?**")
    tab.get_by_role("button", name="End session").click()
    tab.wait_for_url(f"{oidc_app.url}/**")
    expect_sign_in_screen(tab)
    # The auth cookie is gone: a fresh load does not sign Ana back in.
    tab.reload()
    expect_sign_in_screen(tab)


def test_a_member_does_not_see_the_admin_page(tab: Page, oidc_app: OidcApp) -> None:
    sign_in_as(tab, oidc_app, MEMBER["sub"])
    expect(tab.get_by_text("Signed in: Ben · member")).to_be_visible()
    expect(tab.get_by_role("link", name="Settings")).to_be_visible()
    expect(tab.get_by_role("link", name="Admin")).to_have_count(0)
    assert MEMBER["email"] in oidc_app.subjects()


def test_a_signed_in_member_follows_a_live_answer(
    tab: Page, oidc_app: OidcApp, fake: FakeServerProcess
) -> None:
    """The live route knows the member from Streamlit's sign-in cookie, as st.user does."""
    fake.script("*", {"text": " ".join(f"W{n:02d}" for n in range(30)), "delay_ms": 60})
    sign_in_as(tab, oidc_app, MEMBER["sub"])
    pick_models(tab, ["GPT-5 Nano · Starter · 1 token"])
    run_prompt(tab, "Count for the member")
    expect(column(tab, 0).locator(".live-answer")).to_contain_text("W03")
    expect(column(tab, 0).get_by_text("Done", exact=True)).to_be_visible()
    expect(column(tab, 0)).to_contain_text("W29")
