"""Live events of a run: the ordered feed, the per-run tokens, and the route over real HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from playground import config
from playground.live_feed import EventFeed, StreamGrants
from playground.presenters import live_stream
from playground.principal import Principal
from playground.providers.base import Message
from playground.results import CompareRequest, ModelTarget
from playground.runner import ColumnRef, RunHandle
from playground.services import compare, runtime
from playground.store import get_comparison, share_comparison
from tests.e2e.hosted import PROXY_SECRET, proxy_headers
from tests.fake_elumenta.process import served_in_thread
from ui.live_route import live_routes

MODELS = ("gpt-5-nano", "claude-haiku-4.5", "gemini-2.5-flash")


def start_run(owner: str | None = None, time_scale: str = "0.01") -> RunHandle:
    request = CompareRequest(
        messages=(Message("user", "Tell me about streams"),),
        targets=tuple(ModelTarget("demo", m) for m in MODELS),
    )
    connection = runtime.connection_from()
    return runtime.get_runner().start(
        replace(request, owner=owner), runtime.get_providers(connection)
    )


def texts(events: list[dict[str, object]]) -> dict[int, str]:
    """Each column's text in a sequence of events as the browser gets them."""
    out: dict[int, str] = {}
    for event in events:
        if event["k"] == "delta":
            index = int(str(event["i"]))
            out[index] = out.get(index, "") + str(event["t"])
    return out


def test_feed_replays_a_run_in_order_and_resumes_from_any_event(app_env: Path) -> None:
    handle = start_run()
    snapshot = handle.wait(30)
    events, ended = handle.feed.read()
    assert ended and events[-1].kind == "done"
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    as_json = [live_stream.event_json(e) for e in events]
    assert texts(as_json) == {r.index: r.content for r in snapshot.results}
    finished = [e for e in as_json if e["k"] == "finished"]
    assert sorted(int(str(e["i"])) for e in finished) == [0, 1, 2]
    assert all(e["status"] == "completed" and e["metrics"] for e in finished)
    assert {e["i"] for e in as_json if e["k"] == "ttft"} == {0, 1, 2}
    # Resuming after any id gives exactly the rest: nothing doubled, nothing lost.
    middle = len(events) // 2
    rest, _ = handle.feed.read(middle)
    assert events[:middle] + rest == events


def test_when_the_done_event_goes_out_the_page_already_sees_every_answer_final(
    app_env: Path,
) -> None:
    # The live column asks for one rerun when it reads ``done``; that rerun must draw the
    # run finished (answers stored, Re-run offered), or the page would wait for nothing.
    request = CompareRequest(
        messages=(Message("user", "Tell me about streams"),),
        targets=tuple(ModelTarget("demo", m) for m in MODELS),
    )
    handle = compare.start_compare(request, runtime.connection_from())
    columns = [ColumnRef(handle.run_id, i) for i in range(len(MODELS))]
    seen_at_done: list[object] = []

    def on_event() -> None:  # on the runner's thread, right after each event is added
        if handle.feed.ended and not seen_at_done:
            state = compare.column_results(columns)
            assert state is not None
            results, done = state
            with runtime.get_store().session() as session:
                stored = get_comparison(session, handle.comparison_id)
            assert stored is not None
            seen_at_done.append(
                (done, [r.status for r in results], [r.status for r in stored.results])
            )

    handle.feed.subscribe(on_event)
    assert not handle.feed.ended, "the run ended before the test could watch it"
    deadline = time.monotonic() + 30
    while not seen_at_done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen_at_done == [(True, ["completed"] * 3, ["completed"] * 3)]


def test_feed_wakes_subscribers_and_ignores_events_after_done() -> None:
    feed = EventFeed()
    woken: list[int] = []
    unsubscribe = feed.subscribe(lambda: woken.append(1))
    feed.publish("delta", 0, "a")
    unsubscribe()
    feed.publish("done")
    feed.publish("delta", 0, "late")
    events, ended = feed.read()
    assert woken == [1] and ended and [e.kind for e in events] == ["delta", "done"]
    feed.release()
    assert feed.read() == ([], True)


def test_grant_opens_only_its_run_for_its_user_until_the_grace_period_ends() -> None:
    grants = StreamGrants(grace_s=30)
    feed, other_feed = EventFeed(), EventFeed()
    token = grants.issue("run-a", "ana@example.org")
    other = grants.issue("run-b", "ana@example.org")
    assert grants.check("run-a", token, "ana@example.org", feed)
    assert not grants.check("run-a", None, "ana@example.org", feed)
    assert not grants.check("run-a", "", "ana@example.org", feed)
    assert not grants.check("run-a", token + "x", "ana@example.org", feed)
    assert not grants.check("run-a", other, "ana@example.org", feed)
    assert not grants.check("run-b", token, "ana@example.org", other_feed)
    assert not grants.check("run-a", token, "bob@example.org", feed)
    assert not grants.check("run-a", token, None, feed)
    assert not grants.check("run-a", token, "ana@example.org", None)
    feed.publish("done")
    assert grants.check("run-a", token, "ana@example.org", feed)  # a reload right at the end
    assert feed.ended_at is not None
    feed.ended_at -= 31  # the run ended longer ago than the grace period (no 30 s sleep)
    assert not grants.check("run-a", token, "ana@example.org", feed)


@pytest.fixture
def route_url(app_env: Path) -> Iterator[str]:
    """The app's own routes served by uvicorn on a free port (real HTTP)."""
    with served_in_thread(Starlette(routes=live_routes())) as url:
        yield url


def sse_events(response: httpx.Response) -> list[tuple[int, dict[str, object]]]:
    """Every event of an SSE response with the id of the message it came in."""
    assert response.status_code == 200
    events, event_id = [], 0
    for line in response.text.splitlines():
        if line.startswith("id: "):
            event_id = int(line[4:])
        elif line.startswith("data: "):
            events += [(event_id, event) for event in json.loads(line[6:])]
    return events


def test_route_streams_a_run_to_its_token_and_resumes_after_last_event_id(
    route_url: str,
) -> None:
    handle = start_run()
    path = live_stream.grant_stream(handle.run_id)
    assert path is not None
    url, token = (route_url + path).split("?token=")
    with httpx.Client(timeout=30) as client:
        whole = client.get(url, params={"token": token})
        assert whole.headers["content-type"].startswith("text/event-stream")
        assert whole.headers["x-accel-buffering"] == "no"
        events = sse_events(whole)
        assert events[-1][1]["k"] == "done"
        answers = {r.index: r.content for r in handle.snapshot().results}
        assert texts([e for _, e in events]) == answers
        # A reconnect names the last event it has (header or query) and gets the rest only.
        feed, _ = handle.feed.read()
        cut = len(feed) // 3
        before = [live_stream.event_json(e) for e in feed[:cut]]
        for headers, params in (
            ({"Last-Event-ID": str(cut)}, {}),
            ({}, {"last_event_id": str(cut)}),
        ):
            rest = client.get(url, headers={"X-Stream-Token": token, **headers}, params=params)
            assert texts(before + [e for _, e in sse_events(rest)]) == answers


def test_route_refuses_missing_wrong_and_other_runs_tokens_like_an_unknown_run(
    route_url: str,
) -> None:
    handle, other = start_run(), start_run()
    path = live_stream.grant_stream(other.run_id)
    assert path is not None
    token = path.split("?token=")[1]
    url = route_url + live_stream.events_path(handle.run_id)
    with httpx.Client(timeout=30) as client:
        refused = [
            client.get(url),
            client.get(url, params={"token": "not-a-token"}),
            client.get(url, params={"token": token}),
            client.get(route_url + live_stream.events_path("0" * 32), params={"token": token}),
        ]
    assert [r.status_code for r in refused] == [404] * 4
    assert len({r.text for r in refused}) == 1


def test_hosted_route_serves_a_run_only_to_the_user_it_was_granted_to(
    route_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_AUTH", "proxy")
    monkeypatch.setenv("PLAYGROUND_PROXY_SECRET", PROXY_SECRET)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")
    config.get_settings.cache_clear()
    ana = Principal(user_id=1, subject="ana@example.org", display_name="Ana", role="member")
    handle = start_run(owner=ana.subject)
    path = live_stream.grant_stream(handle.run_id, ana)
    assert path is not None
    url, token = (route_url + path).split("?token=")
    with httpx.Client(timeout=30) as client:
        as_ana = client.get(url, params={"token": token}, headers=proxy_headers(ana.subject))
        as_bob = client.get(url, params={"token": token}, headers=proxy_headers("bob@example.org"))
        as_nobody = client.get(url, params={"token": token}, headers=proxy_headers(None))
    assert sse_events(as_ana)[-1][1]["k"] == "done"
    assert as_bob.status_code == 404 and as_nobody.status_code == 404


def test_a_live_run_is_granted_to_its_owner_and_share_link_holders_only(app_env: Path) -> None:
    """The same rule as opening the comparison: the owner, or whoever holds its share token."""
    ana = Principal(user_id=1, subject="ana@example.org", display_name="Ana", role="member")
    bob = Principal(user_id=2, subject="bob@example.org", display_name="Bob", role="member")
    request = CompareRequest(
        messages=(Message("user", "Tell me a long story"),),
        targets=(ModelTarget("demo", MODELS[0]),),
        owner=ana.subject,
    )
    connection = runtime.connection_from()
    handle = runtime.get_runner().start(
        request, runtime.get_providers(connection), recorder=runtime.get_recorder(ana.subject)
    )
    shared = str(handle.comparison_id)
    with runtime.get_store().session() as session, session.begin():
        link = share_comparison(session, int(shared), ana, visibility="private", link=True)
    assert live_stream.grant_stream(handle.run_id, ana) is not None
    assert live_stream.grant_stream(handle.run_id, bob) is None
    assert live_stream.grant_stream(shared, bob) is None
    assert live_stream.grant_stream(shared, bob, "not-the-link") is None
    path = live_stream.grant_stream(shared, bob, link)
    assert path is not None and path.startswith(live_stream.events_path(handle.run_id))
    token = path.split("?token=")[1]
    assert live_stream.open_feed(handle.run_id, token, bob.subject) is handle.feed
    assert live_stream.open_feed(handle.run_id, token, ana.subject) is None
    handle.wait(30)
