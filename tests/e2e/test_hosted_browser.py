"""Hosted team mode in Chromium: two signed-in users, a viewer and a budget, on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from playground.access.identity import PROXY_SECRET_HEADER
from playground.store import share_comparison
from tests.e2e.app_driver import RUN_BUTTON, column, pick_models, run_prompt
from tests.e2e.hosted import (
    ADMIN,
    IDENTITY_HEADER,
    PROXY_SECRET,
    HostedApp,
    hosted_app_process,
    page_as,
)
from tests.e2e.load import model_requests
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

MEMBER = "ben@example.org"
VIEWER = "vic@example.org"
NANO = "GPT-5 Nano · Starter · 1 token"
SECRET_WORD = "zebraquartz"


def run_comparison(page: Page, prompt: str) -> int:
    """Run ``prompt`` on GPT-5 Nano; the new comparison's id from the share link."""
    expect(page.get_by_role("heading", name="Compare models")).to_be_visible()
    pick_models(page, [NANO])
    run_prompt(page, prompt)
    expect(column(page, 0).get_by_text("Done", exact=True)).to_be_visible()
    return int(parse_qs(urlsplit(page.url).query)["comparison"][0])


def test_without_the_proxy_header_nobody_is_signed_in(
    chromium: Browser, hosted_app: HostedApp
) -> None:
    page = page_as(chromium, None, hosted_app.url)
    try:
        expect(page.get_by_text("The proxy did not say who you are")).to_be_visible()
        expect(page.get_by_role("heading", name="Compare models")).to_have_count(0)
    finally:
        page.context.close()


@pytest.mark.parametrize(
    "secret", [None, "", "guessed-secret", PROXY_SECRET[:-1]], ids=["none", "empty", "wrong", "cut"]
)
def test_a_forged_identity_header_without_the_proxy_secret_signs_nobody_in(
    chromium: Browser, hosted_app: HostedApp, secret: str | None
) -> None:
    # Any process on the app's host reaches 127.0.0.1:<port>, a trusted peer address.
    headers = {IDENTITY_HEADER: ADMIN} | ({} if secret is None else {PROXY_SECRET_HEADER: secret})
    page = page_as(chromium, None, hosted_app.url, headers=headers)
    try:
        expect(page.get_by_text("did not come through the server's reverse proxy")).to_be_visible()
        expect(page.get_by_role("heading", name="Compare models")).to_have_count(0)
        expect(page.get_by_text("Signed in:")).to_have_count(0)
    finally:
        page.context.close()


def test_with_the_proxy_secret_the_header_signs_in(
    chromium: Browser, hosted_app: HostedApp
) -> None:
    page = page_as(chromium, ADMIN, hosted_app.url)
    try:
        expect(page.get_by_text("Signed in: ana · admin")).to_be_visible()
    finally:
        page.context.close()


@pytest.mark.parametrize(
    ("email", "path", "shown"),
    [
        (None, "evaluate", "The proxy did not say who you are"),
        (MEMBER, "history", "Signed in: ben · member"),
    ],
)
def test_a_link_to_a_page_of_a_just_started_app_process_still_signs_in(
    chromium: Browser,
    fake_server: FakeServerProcess,
    tmp_path: Path,
    email: str | None,
    path: str,
    shown: str,
) -> None:
    # Until a session has run app.py, Streamlit runs pages/ scripts directly (no sign-in):
    # what a browser reconnecting after a restart gets, so this link is the first visit.
    with hosted_app_process(fake_server, tmp_path) as app:
        page = page_as(chromium, email, f"{app.url}/{path}")
        try:
            expect(page.get_by_text(shown)).to_be_visible()
            heading = page.get_by_role("heading", name=path.title(), exact=True)
            expect(heading).to_have_count(1 if email else 0)
            expect(page.get_by_text("Page not found")).to_have_count(0)
            expect(page.get_by_role("link", name="admin")).to_have_count(0)  # pages/ listing
        finally:
            page.context.close()


def test_a_private_comparison_is_invisible_to_another_user_until_shared(
    chromium: Browser, hosted_app: HostedApp, fake: FakeServerProcess, artifacts: Path
) -> None:
    fake.script("gpt-5-nano", {"text": f"The secret word is {SECRET_WORD}.", "ttft_ms": 10})
    ana = page_as(chromium, ADMIN, hosted_app.url)
    ben = page_as(chromium, MEMBER, hosted_app.url)
    try:
        expect(ana.get_by_text("Signed in: ana · admin")).to_be_visible()
        comparison_id = run_comparison(ana, f"Say {SECRET_WORD}")

        # By list and search: Ben (who has run nothing yet) sees none of Ana's history.
        ben.goto(f"{hosted_app.url}/history")
        expect(ben.get_by_role("heading", name="History", exact=True)).to_be_visible()
        expect(ben.get_by_text("Signed in: ben · member")).to_be_visible()
        expect(ben.get_by_text("No comparisons yet.")).to_be_visible()
        ben.get_by_role("textbox", name="Search").fill(SECRET_WORD)
        ben.keyboard.press("Enter")
        expect(ben.get_by_text("Nothing matches these filters.")).to_be_visible()
        # The same search finds it for Ana: the check above could have failed.
        ana.goto(f"{hosted_app.url}/history")
        ana.get_by_role("textbox", name="Search").fill(SECRET_WORD)
        ana.keyboard.press("Enter")
        expect(ana.get_by_text("· 1 entry")).to_be_visible()

        # By direct id and by a guessed share token.
        for query in (f"comparison={comparison_id}", f"comparison={comparison_id}&token=abc"):
            ben.goto(f"{hosted_app.url}/?{query}")
            expect(ben.get_by_text("is not available")).to_be_visible()
            expect(ben.get_by_text(SECRET_WORD)).to_have_count(0)

        # Ana creates a share link: with its token Ben can open it, read-only.
        with hosted_app.store.session() as session, session.begin():
            token = share_comparison(
                session,
                comparison_id,
                hosted_app.user(ADMIN),
                visibility="private",
                link=True,
            )
        ben.goto(f"{hosted_app.url}/?comparison={comparison_id}&token={token}")
        expect(column(ben, 0)).to_contain_text(SECRET_WORD)
        ben.screenshot(path=artifacts / "hosted-shared-link.png")
    finally:
        ana.context.close()
        ben.context.close()


def test_a_viewer_cannot_run(chromium: Browser, hosted_app: HostedApp) -> None:
    hosted_app.user(VIEWER)
    hosted_app.admin_sets(VIEWER, role="viewer")
    page = page_as(chromium, VIEWER, hosted_app.url)
    try:
        expect(page.get_by_text("Signed in: vic · viewer")).to_be_visible()
        expect(page.get_by_text("Your role is viewer")).to_be_visible()
        expect(page.get_by_role("button", name=RUN_BUTTON)).to_be_disabled()
    finally:
        page.context.close()


def test_a_daily_budget_stops_spending_at_the_limit(
    chromium: Browser, hosted_app: HostedApp, fake: FakeServerProcess
) -> None:
    fake.script("gpt-5-nano", {"text": "A short answer.", "ttft_ms": 10})
    hosted_app.user(MEMBER)
    hosted_app.admin_sets(MEMBER, daily=hosted_app.spent_today(MEMBER) + 1)
    page = page_as(chromium, MEMBER, hosted_app.url)
    try:
        run_comparison(page, "First question")
        # Only model requests cost money; the balance is re-read after a run in the
        # background, at a moment the test does not control.
        generated_before = len(model_requests(fake))
        run_prompt(page, "Second question")
        expect(page.get_by_text("Your daily budget is")).to_be_visible()
        assert len(model_requests(fake)) == generated_before, "nothing may be sent over the budget"
    finally:
        page.context.close()
