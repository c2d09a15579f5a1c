"""Load: 20 signed-in users at once, each running six-model comparisons in Chromium.

Checks what must hold under load (no errors, no lost or half-written rows, no answer of
one user in another's page or history); the timing and CPU/memory figures are printed by
``benchmarks/bench_load.py``, which runs the same driver for longer.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from playground.store.models import Comparison, Result
from tests.e2e.hosted import HostedApp
from tests.e2e.load import MODELS, run_load
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.timeout(900)]

USERS = 20
ROUNDS = 2


def test_twenty_users_run_comparisons_at_once_without_errors_losses_or_leaks(
    hosted_app: HostedApp, fake: FakeServerProcess
) -> None:
    # One team key for everyone: give the account room for every request of the test.
    fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
    fake.script("*", {"ttft_ms": 100, "delay_ms": 15})
    reports = run_load(hosted_app.url, USERS, rounds=ROUNDS, duration_s=600, timeout_s=240).reports

    assert [r.errors for r in reports] == [[] for _ in reports]
    assert [r.foreign_markers_seen for r in reports] == [[] for _ in reports]
    assert all(len(r.ui_ttft_s) == ROUNDS for r in reports)

    with hosted_app.store.session() as session:
        rows = session.execute(
            sa.select(Comparison.owner, Comparison.prompt_text, Result.model, Result.status)
            .join(Result, Result.comparison_id == Comparison.id)
            .where(Comparison.owner.like("%@load.test"))
        ).all()
    for report in reports:
        own = [r for r in rows if r.owner == report.email]
        assert len(own) == ROUNDS * len(MODELS), report.email
        assert {r.status for r in own} == {"completed"}
        # Every marker this user typed is in their own comparisons and nobody else's.
        for marker in report.markers:
            owners = {r.owner for r in rows if marker in r.prompt_text}
            assert owners == {report.email}, marker
    streamed = [r for r in fake.requests() if r["path"].endswith("/generate/stream")]
    assert len(streamed) == USERS * ROUNDS * len(MODELS)
