"""Load (issue 6): 20 signed-in users run six-model comparisons at once for a bounded time.

Each user is a WebSocket session speaking Streamlit's own protocol (``load_ws.py``), not a
Chromium tab, so the 2-core CI machine spends its time on the app. At the end: no user saw
an error, every Run press is one stored comparison of the user's with six completed
answers, the fake server was asked exactly six times per comparison, and no user's marker
reached anyone else (neither their pages nor their history). The UI's time to first token
and the app's CPU and memory are printed (``pytest -s``); ``benchmarks/bench_load.py``
reports the same figures for longer runs.
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from playground.config import Settings
from playground.store.models import Comparison
from tests.e2e.app_process import AppProcess
from tests.e2e.hosted import HostedApp
from tests.e2e.load import (
    MARKER,
    MODELS,
    USERS_DOMAIN,
    ProcessWatcher,
    describe_load,
    first_text_path,
    foreign_markers,
    model_requests,
    recorded_ttft_ms,
)
from tests.e2e.load_ws import run_ws_load
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

USERS = 20
ROUNDS_FOR_S = 10.0  # no user starts a comparison later than this after all are in
# How much longer than the app's model read timeout a round may take: a model stream that
# goes silent upstream must end as the answer error the app stores and shows (after its
# read timeout), not as this harness's own round timeout that names no cause.
ROUND_MARGIN_S = 30.0


def app_read_timeout_s(app: AppProcess) -> float:
    """The model read timeout (seconds) ``app`` runs with: its environment's
    ``PLAYGROUND_READ_TIMEOUT_S``, else the setting's default."""
    configured = app.env.get("PLAYGROUND_READ_TIMEOUT_S")
    if configured:
        return float(configured)
    default = Settings.model_fields["read_timeout_s"].default
    assert isinstance(default, float)
    return default


def test_twenty_users_compare_at_once_without_errors_lost_rows_or_leaks(
    hosted_app: HostedApp, fake: FakeServerProcess
) -> None:
    fake.set_state(balance=10**9, quota_hour=None, quota_day=None)
    fake.script("*", {"ttft_ms": 100, "delay_ms": 15})
    assert hosted_app.process.pid is not None
    round_timeout_s = app_read_timeout_s(hosted_app.process) + ROUND_MARGIN_S
    with ProcessWatcher(hosted_app.process.pid) as watcher:
        load = run_ws_load(
            hosted_app.url, USERS, duration_s=ROUNDS_FOR_S, timeout_s=round_timeout_s
        )
    requests = model_requests(fake)
    runner_ttft_ms = recorded_ttft_ms(hosted_app.store)
    path_line = first_text_path(load.reports, requests)
    print(
        "\n" + describe_load(load, watcher, requests=len(requests), runner_ttft_ms=runner_ttft_ms),
        path_line,
        sep="\n",
    )
    # Every first text the users saw is matched to its request's times at the fake.
    assert path_line is not None
    assert f"per answer, {sum(len(r.ui_ttft_s) for r in load.reports)} answers)" in path_line

    errors = [(r.email, e) for r in load.reports for e in r.errors]
    assert errors == [], _explain(hosted_app, errors)
    assert [(r.email, m) for r in load.reports for m in r.foreign_markers_seen] == []
    assert all(r.run_s for r in load.reports), "every user finished a comparison"

    stored = _stored_comparisons(hosted_app)
    for report in load.reports:
        comparisons = stored.pop(report.email, [])
        # One stored comparison per Run press: none lost, none doubled.
        assert sorted(c.prompt_text.split()[0] for c in comparisons) == sorted(report.markers)
        for comparison in comparisons:
            marker = comparison.prompt_text.split()[0]
            results = sorted(comparison.results, key=lambda r: r.position)
            assert [r.model for r in results] == list(MODELS), marker
            assert [r.status for r in results] == ["completed"] * len(MODELS), marker
            assert all(marker in r.content for r in results), marker
            texts = " ".join([comparison.prompt_text, *(r.content for r in results)])
            assert foreign_markers(texts, report.email) == [], marker
    assert stored == {}, "comparisons of nobody in the load"

    asked: defaultdict[str, list[str]] = defaultdict(list)
    for request in requests:
        found = MARKER.search(request["body"])
        assert found is not None, request["body"][:300]
        asked[found.group(0)].append(request["json"]["model"])
    pressed = [m for r in load.reports for m in r.markers]
    assert {m: sorted(models) for m, models in asked.items()} == {
        m: sorted(MODELS) for m in pressed
    }


def _explain(app: HostedApp, errors: list[tuple[str, str]]) -> str:
    """What the app stored of each failed round, and the end of its log: where a round that
    timed out stopped (a model still running, or every answer stored and the page not told)."""
    failed = {m.group(0) for _, error in errors if (m := MARKER.search(error))}
    lines = []
    for owner, comparisons in _stored_comparisons(app).items():
        for comparison in comparisons:
            if comparison.prompt_text.split()[0] in failed:
                statuses = [(r.position, r.status, r.error_code) for r in comparison.results]
                lines.append(f"stored {owner} {comparison.prompt_text.split()[0]}: {statuses}")
    log = app.process.log_path.read_text(errors="replace").splitlines()[-30:]
    return "\n".join([*lines, "app log (end):", *log])


def _stored_comparisons(app: HostedApp) -> dict[str, list[Comparison]]:
    """Every load user's stored comparisons (with their results), by owner."""
    by_owner: dict[str, list[Comparison]] = defaultdict(list)
    query = (
        sa.select(Comparison)
        .where(Comparison.owner.endswith(USERS_DOMAIN))
        .options(selectinload(Comparison.results))
    )
    with app.store.session() as session:
        for comparison in session.scalars(query):
            by_owner[comparison.owner or ""].append(comparison)
    return dict(by_owner)
