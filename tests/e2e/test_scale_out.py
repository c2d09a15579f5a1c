"""Scale-out on loopback: two app processes and two queue workers on one PostgreSQL database.

A member starts a batch in Chromium through app process 1; the workers run it while app
process 1 is restarted and the member watches it on app process 2. At the end every cell
has exactly one answer, owned by the member; the fake Elumenta was asked (and charged)
exactly once per cell; the member's spend is the cells' tokens; both workers ran some.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Locator, Page, expect

from playground.catalog import load_catalog
from playground.datasets import parse_dataset
from playground.store import Store, open_store
from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.eval_repository import save_dataset, save_template_version
from playground.store.models import Comparison, Result
from playground.templates import PromptTemplate
from playground.workers.dispatch import QueuedBatch
from tests.e2e.app_driver import pick_options
from tests.e2e.app_process import AppProcess
from tests.e2e.hosted import (
    HostedApp,
    assert_no_traceback,
    hosted_environment,
    hosted_settings,
    page_as,
)
from tests.fake_elumenta.process import FakeServerProcess
from tests.store_fixtures import postgres_base_url
from tests.worker_fixtures import (
    HEARTBEAT_S,
    STALE_AFTER_S,
    WorkerProcess,
    pid_of,
    started_together,
    throwaway_database,
)

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

MEMBER = "ben@example.org"
MODELS = ("gpt-5-nano", "gpt-5", "claude-sonnet-4.5")  # 1, 2 and 4 billing tokens
TEMPLATE = "capitals"
VERSIONS = (
    PromptTemplate("You are terse.", "What is the capital of {{ country }}?"),
    PromptTemplate("You are a geographer.", "Name the capital city of {{ country }}."),
)
COUNTRIES = ("France", "Italy", "Spain", "Chile", "Kenya", "Japan", "Peru", "Norway")
CELLS = len(COUNTRIES) * len(VERSIONS) * len(MODELS)
WORKER_CONCURRENCY = 2
ANSWER = "The capital, briefly."
# 2 workers × 2 answers in flight × 2.5 s: the batch would take 30 s, enough to outlast the
# restart on a loaded machine; once that has been watched, the rest is answered at once.
SLOW_ANSWER_MS = 2500


@dataclass
class TeamServer:
    """Two app processes and two workers sharing one database (which ``hosted`` acts on)."""

    app1: AppProcess
    app2: AppProcess
    workers: tuple[WorkerProcess, WorkerProcess]
    hosted: HostedApp

    @property
    def store(self) -> Store:
        """The shared database."""
        return self.hosted.store


@pytest.fixture
def team_server(fake: FakeServerProcess, tmp_path: Path) -> Iterator[TeamServer]:
    """Two hosted app processes (batches on workers) and two workers on a new database.

    On exit, fails if any of them logged a traceback.
    """
    fake.set_state(balance=10**6, quota_hour=None, quota_day=None)
    fake.script("*", {"ttft_ms": SLOW_ANSWER_MS, "text": ANSWER})
    with throwaway_database(postgres_base_url(), "test_scale_out") as url:
        env = hosted_environment(
            fake,
            tmp_path,
            url,
            PLAYGROUND_BATCH_EXECUTION="worker",
            PLAYGROUND_BATCH_HEARTBEAT_S=str(HEARTBEAT_S),
            PLAYGROUND_BATCH_STALE_AFTER_S=str(STALE_AFTER_S),
        )
        app1, app2 = (AppProcess(env, tmp_path / f"app{n}.log") for n in (1, 2))
        workers = tuple(
            WorkerProcess(
                url,
                fake,
                tmp_path,
                concurrency=WORKER_CONCURRENCY,
                log_path=tmp_path / f"worker{n}.log",
            )
            for n in (1, 2)
        )
        with started_together(app1, app2, *workers):  # they migrate the new database at once
            store = open_store(url)
            try:
                yield TeamServer(
                    app1, app2, workers, HostedApp(app1.url, store, hosted_settings(url), app1)
                )
            finally:
                store.close()
        for app in (app1, app2):
            assert_no_traceback(app)
        for n in (1, 2):
            log = (tmp_path / f"worker{n}.log").read_text(errors="replace")
            assert "Traceback" not in log, log[-5000:]


def seed_inputs(server: TeamServer) -> None:
    """The member's template (two versions) and dataset, as saved on the Evaluate page."""
    server.hosted.user(MEMBER)
    rows = parse_dataset("country\n" + "\n".join(COUNTRIES) + "\n")
    with server.store.session() as session, session.begin():
        for version in VERSIONS:
            save_template_version(session, TEMPLATE, version, owner=MEMBER)
        save_dataset(session, "countries", rows, owner=MEMBER)


def evaluate_page(chromium: Browser, app: AppProcess) -> Page:
    """The member's Evaluate page on ``app``, on its Run batch tab."""
    page = page_as(chromium, MEMBER, f"{app.url}/evaluate")
    expect(page.get_by_text("Signed in: ben · member")).to_be_visible()
    page.get_by_role("tab", name="Run batch").click()
    return page


def progress_bar(page: Page) -> Locator:
    """The batch progress bar on the Run batch tab."""
    return page.get_by_role("tabpanel", name="Run batch").get_by_test_id("stProgress")


def done_count(page: Page, batch_id: int) -> int:
    """How many cells the page's progress bar says are done (fails if it shows none)."""
    pattern = re.compile(rf"Batch #{batch_id} (\w+): (\d+)/{CELLS} done")
    expect(progress_bar(page)).to_contain_text(pattern)
    found = pattern.search(progress_bar(page).inner_text())
    assert found is not None
    return int(found.group(2))


def wait_for_progress(page: Page, batch_id: int, beyond: int, timeout_s: float = 20.0) -> int:
    """Wait until the page shows more than ``beyond`` cells done; the count then."""
    deadline = time.monotonic() + timeout_s
    while (done := done_count(page, batch_id)) <= beyond:
        assert time.monotonic() < deadline, f"the page stayed at {done}/{CELLS} done"
        page.wait_for_timeout(250)
    return done


def test_a_batch_completes_on_the_workers_while_the_app_that_started_it_restarts(
    chromium: Browser, team_server: TeamServer, fake: FakeServerProcess
) -> None:
    seed_inputs(team_server)
    balance_before = fake.account()["balance"]
    with ExitStack() as browser_sessions:
        # Started in the browser through app process 1, by the member.
        starter = evaluate_page(chromium, team_server.app1)
        browser_sessions.callback(starter.context.close)
        pick_options(starter, "Template versions", [f"{TEMPLATE} v1", f"{TEMPLATE} v2"])
        pick_options(starter, "Models", [load_catalog().name_of(m) for m in MODELS])
        expect(starter.get_by_text(f"{CELLS} requests")).to_be_visible()
        starter.get_by_role("button", name="Start batch").click()
        expect(progress_bar(starter)).to_contain_text("running")
        with team_server.store.session() as session, session.begin():
            (batch_id,) = session.scalars(sa.select(BatchRow.id)).all()
        batch = QueuedBatch(team_server.store, team_server.hosted.settings, batch_id)
        shown_before = wait_for_progress(starter, batch_id, beyond=0)

        # App process 1 goes down and comes back while the workers carry on.
        assert batch.progress().status == "running"
        with ThreadPoolExecutor(1) as pool:
            restarted = pool.submit(team_server.app1.restart)
            # Meanwhile the member opens app process 2 and sees the batch advance there.
            watcher = evaluate_page(chromium, team_server.app2)
            browser_sessions.callback(watcher.context.close)
            first = done_count(watcher, batch_id)
            wait_for_progress(watcher, batch_id, beyond=first)
            restarted.result()
        at_restart = batch.progress()
        assert at_restart.status == "running", at_restart
        # The restarted process shows it to the page that started it (a new session there):
        # more done than before the stop and than then, so not what the page kept drawn.
        wait_for_progress(
            starter, batch_id, beyond=max(shown_before, at_restart.done - 1), timeout_s=30
        )
        assert batch.progress().status == "running"  # all of the above while it ran

        fake.script("*", {"text": ANSWER})
        final = batch.wait(60)
        assert (final.status, final.completed, final.failed) == ("completed", CELLS, 0)
        for page in (starter, watcher):
            expect(progress_bar(page)).to_contain_text(
                f"Batch #{batch_id} completed: {CELLS}/{CELLS} done"
            )

    cells = _cells(team_server.store, batch_id)
    results = _member_results(team_server.store)
    # One stored, completed answer per cell, all the member's: nothing lost, nothing twice.
    assert len(cells) == CELLS and {c.status for c in cells} == {"completed"}
    assert sorted(r.id for r in results) == sorted(c.result_id for c in cells)
    assert {r.status for r in results} == {"completed"}
    assert not any(r.cached for r in results)
    # The fake was asked once per cell, and charged exactly what the cells say.
    asked = _asked(fake)
    assert asked == Counter({prompt: 1 for prompt in _expected_prompts()}), asked
    billed = sum(r.tokens_used or 0 for r in results)
    catalog = load_catalog()
    assert billed == len(COUNTRIES) * len(VERSIONS) * sum(catalog.cost_of(m) or 0 for m in MODELS)
    assert balance_before - fake.account()["balance"] == billed
    assert team_server.hosted.spent_today(MEMBER) == billed
    # Both workers ran some of this one batch, and only they wrote its answers.
    workers = {w.pid for w in team_server.workers}
    by_worker = Counter(pid_of(c.claimed_by) for c in cells)
    assert set(by_worker) == workers, by_worker
    assert {pid_of(r.writer) for r in results} <= workers


def _cells(store: Store, batch_id: int) -> list[BatchCellRow]:
    with store.session() as session, session.begin():
        return list(
            session.scalars(sa.select(BatchCellRow).where(BatchCellRow.batch_id == batch_id))
        )


def _member_results(store: Store) -> list[Result]:
    """Every stored answer (the database is this test's alone) that the member owns."""
    with store.session() as session, session.begin():
        every = list(session.scalars(sa.select(Result)))
        owned = session.scalars(
            sa.select(Result)
            .join(Comparison, Comparison.id == Result.comparison_id)
            .where(Comparison.owner == MEMBER)
        ).all()
    assert len(owned) == len(every), "an answer not owned by the member"
    return every


def _expected_prompts() -> list[tuple[str, str, str]]:
    return [
        (model, version.system, version.user.replace("{{ country }}", country))
        for version in VERSIONS
        for country in COUNTRIES
        for model in MODELS
    ]


def _asked(fake: FakeServerProcess) -> Counter[tuple[str, str, str]]:
    """Generation requests the fake received, by (model, system prompt, user prompt)."""
    asked: Counter[tuple[str, str, str]] = Counter()
    for request in fake.requests():
        if "/generate" in request["path"]:
            messages = request["json"]["messages"]
            system = next((m["content"] for m in messages if m["role"] == "system"), "")
            asked[(request["json"]["model"], system, messages[-1]["content"])] += 1
    return asked
