"""A fake Elumenta API server for tests and benchmarks (the real one is unreachable here).

``FakeElumenta`` serves the Elumenta API (``/api/v2``), an OpenAI-compatible API
(``/openai/v1``) and HTTP control endpoints (``/_fake``) on a real local socket;
``ModelScript`` describes how one model answers (text, timing, wire format, failures).
"""

from tests.fake_elumenta.scripts import ModelScript
from tests.fake_elumenta.server import FakeElumenta
from tests.fake_elumenta.state import DEFAULT_API_KEY, DEFAULT_SCRIPT, FakeModel, RecordedRequest

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_SCRIPT",
    "FakeElumenta",
    "FakeModel",
    "ModelScript",
    "RecordedRequest",
]
