"""The offline demo provider: simulated, clearly labelled answers with realistic timing.

It makes no network call and costs nothing, so the app works with no API key. Answers
are deterministic for a given model, conversation and parameters, and every answer
starts with a banner saying it is simulated.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import textwrap
from collections.abc import AsyncGenerator

from playground.catalog import Catalog, ModelInfo
from playground.errors import NotFoundError
from playground.providers.base import (
    Balance,
    ContentDelta,
    Generation,
    GenerationRequest,
    ProviderEvent,
    StreamFinished,
    StreamStarted,
)

DEMO_STARTING_BALANCE = 1000

_OPENINGS = (
    "Here is a structured take on it.",
    "Short answer first, then the details.",
    "Let me break this down step by step.",
    "There are a few angles worth considering.",
)
_POINTS = (
    "State the goal in one sentence before anything else.",
    "List the constraints explicitly: budget, latency, and quality bar.",
    "Prefer the simplest option that meets every constraint.",
    "Measure before and after, on the same inputs, in one run.",
    "Write down what would change your mind.",
    "Check edge cases: empty input, very long input, mixed languages.",
    "Keep an example of a good answer to compare against.",
    "Cheaper models are often good enough for extraction and routing.",
    "Bigger models pay off on multi-step reasoning and long documents.",
    "Ask for a specific output format to make answers comparable.",
)
_CLOSINGS = (
    "In short: define success, then compare models against it.",
    "That should be a solid starting point.",
    "Happy to go deeper on any of these points.",
)


def demo_answer(model: ModelInfo, request: GenerationRequest) -> str:
    """The simulated answer for ``request``: same inputs, same text."""
    seed = hashlib.sha256(request.request_hash("demo").encode()).digest()
    rng = random.Random(seed)
    question = request.messages[-1].content.strip().replace("\n", " ")
    question = textwrap.shorten(question, width=90, placeholder="…")
    n_points = 3 + min(4, model.token_cost) + rng.randrange(2)
    points = rng.sample(_POINTS, k=min(n_points, len(_POINTS)))
    body = "\n".join(f"{i}. {p}" for i, p in enumerate(points, start=1))
    return (
        f"*Demo mode: simulated answer from {model.name}; no API call was made.*\n\n"
        f"You asked: “{question}”\n\n{rng.choice(_OPENINGS)}\n\n{body}\n\n{rng.choice(_CLOSINGS)}"
    )


def _chunks(text: str, size: int) -> list[str]:
    words = text.split(" ")
    out: list[str] = []
    for start in range(0, len(words), size):
        piece = " ".join(words[start : start + size])
        out.append(piece if start + size >= len(words) else piece + " ")
    return out


class DemoProvider:
    """Simulates every catalog model offline; ``time_scale`` < 1 speeds it up (tests)."""

    name = "demo"
    label = "Demo (offline, simulated)"

    def __init__(self, catalog: Catalog, *, time_scale: float = 1.0) -> None:
        self._catalog = catalog
        self._time_scale = time_scale
        self._balance = DEMO_STARTING_BALANCE
        self._counter = 0

    def models(self) -> list[ModelInfo]:
        """Every catalog model, simulated."""
        return list(self._catalog)

    def _model(self, slug: str) -> ModelInfo:
        model = self._catalog.get(slug)
        if model is None:
            raise NotFoundError(f"Unknown model {slug!r}.", status_code=404)
        return model

    def _charge(self, model: ModelInfo) -> tuple[str, int]:
        self._counter += 1
        self._balance = max(0, self._balance - model.token_cost)
        return f"demo_{self._counter:06d}", self._balance

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderEvent, None]:
        """Stream the simulated answer at the model's demo TTFT and characters per second."""
        model = self._model(request.model)
        text = demo_answer(model, request)
        yield StreamStarted()
        await asyncio.sleep(model.demo.ttft_ms / 1000 * self._time_scale)
        for piece in _chunks(text, 3):
            yield ContentDelta(piece)
            await asyncio.sleep(len(piece) / model.demo.chars_per_s * self._time_scale)
        generation_id, balance = self._charge(model)
        yield StreamFinished(
            tokens_used=model.token_cost, balance_remaining=balance, generation_id=generation_id
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        """The whole simulated answer after the simulated total time."""
        model = self._model(request.model)
        text = demo_answer(model, request)
        seconds = model.demo.ttft_ms / 1000 + len(text) / model.demo.chars_per_s
        await asyncio.sleep(seconds * self._time_scale)
        generation_id, balance = self._charge(model)
        return Generation(text, model.token_cost, balance, generation_id)

    async def balance(self) -> Balance:
        """A simulated balance that goes down as demo answers are generated."""
        return Balance(token_balance=self._balance, plan="Demo")

    async def aclose(self) -> None:
        """Nothing to release."""
