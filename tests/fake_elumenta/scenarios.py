"""Named sets of scripts for an out-of-process fake (``--scenario``, ``POST /_fake/scenario``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

from tests.fake_elumenta.scripts import ModelScript
from tests.fake_elumenta.state import CATALOG_PATH, DEFAULT_SCRIPT, FakeState

#: Average characters per word-sized delta, to turn a chars/s speed into a delay per delta.
_CHARS_PER_DELTA = 6.0


def _default(state: FakeState) -> None:
    """No scripts: every model gives the default markdown answer (50 ms TTFT, 10 ms/delta)."""


def _demo(state: FakeState) -> None:
    """Each model streams at the speed of its catalog ``demo`` profile (TTFT and chars/s)."""
    doc = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    for raw in doc["models"]:
        demo = raw.get("demo") or {}
        chars_per_s = float(demo.get("chars_per_s", 300.0))
        state.script(
            raw["slug"],
            ModelScript(
                ttft_ms=float(demo.get("ttft_ms", 400.0)),
                delay_ms=1000.0 * _CHARS_PER_DELTA / chars_per_s,
            ),
        )


def _flaky(state: FakeState) -> None:
    """A few models misbehave once or mid-stream, the rest answer normally."""
    normal = DEFAULT_SCRIPT
    state.script("gpt-5", replace(normal, fail_first=[(500, "provider_error")]))
    state.script(
        "claude-opus-4.5",
        replace(normal, fail_first=[(429, "rate_limit_exceeded")], retry_after_s=1.0),
    )
    state.script("deepseek-r1", replace(normal, drop_after_deltas=5))
    state.script("gemini-3-pro", replace(normal, error_event_after=3))
    state.script("gpt-5.2-pro", replace(normal, status=503))


SCENARIOS: dict[str, Callable[[FakeState], None]] = {
    "default": _default,
    "demo": _demo,
    "flaky": _flaky,
}


def apply_scenario(state: FakeState, name: str) -> None:
    """Add the scripts of scenario ``name`` (no reset); unknown names raise ``ValueError``."""
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    scenario(state)
