"""Pure Server-Sent-Events formatting: one JSON payload in, the exact bytes on the wire out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

DONE = "[DONE]"
KEEPALIVE = ": keep-alive"


def dumps(payload: dict[str, Any]) -> str:
    """Compact JSON with raw UTF-8 (so multi-byte characters really are multi-byte)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def split_json_lines(payload: dict[str, Any]) -> list[str]:
    """The payload's JSON in two lines, cut after the first member (still valid once joined)."""
    members = [dumps({key: value})[1:-1] for key, value in payload.items()]
    if len(members) < 2:
        return ["{", f"{''.join(members)}}}"]
    return ["{" + members[0] + ",", ",".join(members[1:]) + "}"]


@dataclass(frozen=True)
class SSEFormat:
    """How events are written: line ending, optional ``event:``/``id:`` fields, split data."""

    line_ending: str = "\n"
    event_field: bool = False
    id_field: bool = False
    multiline_data: bool = False

    def event(self, payload: dict[str, Any] | str, event_id: int | None = None) -> bytes:
        """One event; a ``str`` payload (``[DONE]``) is sent as-is on a single data line."""
        lines: list[str] = []
        if isinstance(payload, str):
            data_lines = [payload]
        else:
            if self.event_field and "type" in payload:
                lines.append(f"event: {payload['type']}")
            data_lines = split_json_lines(payload) if self.multiline_data else [dumps(payload)]
        if self.id_field and event_id is not None:
            lines.append(f"id: {event_id}")
        lines.extend(f"data: {line}" for line in data_lines)
        return (self.line_ending.join(lines) + self.line_ending * 2).encode("utf-8")

    def comment(self, text: str = KEEPALIVE) -> bytes:
        """A comment line (``: keep-alive``), which SSE clients must ignore."""
        return (text + self.line_ending).encode("utf-8")
