"""Live answers for the browser: who may follow a run, and its events as Server-Sent Events.

The Compare page asks :func:`grant_stream` for a token once the viewer may see a run (the
same check as opening it: owner, visibility, share token); the app's route
(``GET /_run/<run_id>/events``) opens the feed with :func:`open_feed` and writes
:func:`encode` of each batch of events. Anything refused looks like a run that does not
exist, so a token, a run id or a user cannot be probed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from playground.live_feed import EventFeed, FeedEvent, StreamGrants
from playground.presenters.compare import metrics, status_label
from playground.principal import Principal
from playground.results import ModelResult
from playground.runner import RunHandle
from playground.services import compare, runtime

ROUTE_PREFIX = "/_run/"
RETRY_MS = 1000
"""How long a browser waits before it reconnects a dropped stream."""

_grants = StreamGrants()


def events_path(run_id: str) -> str:
    """The route's path for one run's events (relative to the app's base URL)."""
    return f"{ROUTE_PREFIX}{run_id}/events"


def grant_stream(
    ref: str, viewer: Principal | None = None, share_token: str | None = None
) -> str | None:
    """The URL path (with a new token) of the live events of the run ``ref`` names (a run
    id or a shared comparison's id) for ``viewer``; ``None`` if they may not see the run or
    it is not live in this process (then the page polls, as before)."""
    view = compare.open_run(ref, viewer, share_token)
    if not isinstance(view, RunHandle):
        return None
    token = _grants.issue(view.run_id, viewer.subject if viewer is not None else None)
    return f"{events_path(view.run_id)}?token={token}"


def open_feed(run_id: str, token: str | None, subject: str | None) -> EventFeed | None:
    """The run's feed if ``token`` was granted for it to ``subject``; ``None`` otherwise
    (unknown run, wrong/missing/other user's token, run ended past the grace period)."""
    handle = runtime.get_runner().get(run_id)
    feed = handle.feed if handle is not None else None
    return feed if _grants.check(run_id, token, subject, feed) else None


def _status(result: ModelResult) -> dict[str, Any]:
    text, colour = status_label(result)
    return {"status": result.status, "label": text, "colour": colour}


def event_json(event: FeedEvent) -> dict[str, Any]:
    """What the browser's column needs of one event (``k`` names the kind, ``i`` the column)."""
    data: dict[str, Any] = {"k": event.kind, "i": event.index}
    if event.kind == "delta":
        data["t"] = event.value
    elif event.kind == "ttft":
        data["ms"] = round(event.value)
    elif event.kind in ("status", "finished"):
        result: ModelResult = event.value
        data.update(_status(result))
        if event.kind == "finished":
            data["metrics"] = [list(pair) for pair in metrics(result)]
    return data


def encode(events: Sequence[FeedEvent]) -> str:
    """``events`` as one Server-Sent Event: a JSON list of them, with adjacent text of the
    same column joined, and the id of the last one (what a reconnect resumes after)."""
    batch: list[dict[str, Any]] = []
    for event in events:
        data = event_json(event)
        last = batch[-1] if batch else None
        if last is not None and data["k"] == last["k"] == "delta" and data["i"] == last["i"]:
            last["t"] += data["t"]
        else:
            batch.append(data)
    return f"id: {events[-1].id}\ndata: {json.dumps(batch, separators=(',', ':'))}\n\n"
