"""The offline demo provider: simulated answers with realistic timing and no network.

It makes no network call and costs nothing, so the app works with no API key. Answers
are deterministic for a given model, conversation and parameters; what they say, and how
each model honours a requested form, is :mod:`playground.providers.demo_answers`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

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
from playground.providers.demo_answers import demo_answer

DEMO_STARTING_BALANCE = 1000


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

    def __init__(
        self,
        catalog: Catalog,
        *,
        time_scale: float = 1.0,
        spent: Callable[[], int] | None = None,
    ) -> None:
        """``spent`` reads the demo tokens the history has recorded: the balance is then
        :data:`DEMO_STARTING_BALANCE` minus those, the same in the app, the CLI and Costs,
        and across restarts. Without it the balance lives in this object only."""
        self._catalog = catalog
        self._time_scale = time_scale
        self._spent = spent
        self._balance = DEMO_STARTING_BALANCE
        self._counter = 0

    def _current_balance(self) -> int:
        if self._spent is None:
            return self._balance
        return max(0, DEMO_STARTING_BALANCE - self._spent())

    def models(self) -> list[ModelInfo]:
        """Every catalog model, simulated."""
        return list(self._catalog)

    def _model(self, slug: str) -> ModelInfo:
        model = self._catalog.get(slug)
        if model is None:
            raise NotFoundError(f"Unknown model {slug!r}.", status_code=404)
        return model

    async def _charge(self, model: ModelInfo) -> tuple[str, int]:
        self._counter += 1
        generation_id = f"demo_{self._counter:06d}"
        # Reading the history sums every demo answer it holds: off the event loop, so the
        # other columns' streams don't wait on it.
        current = await asyncio.to_thread(self._current_balance)
        # This answer is not recorded yet: its cost comes off what the history says.
        self._balance = max(0, current - model.token_cost)
        return generation_id, self._balance

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[ProviderEvent, None]:
        """Stream the simulated answer at the model's demo TTFT and characters per second."""
        model = self._model(request.model)
        text = demo_answer(request)
        yield StreamStarted()
        await asyncio.sleep(model.demo.ttft_ms / 1000 * self._time_scale)
        for piece in _chunks(text, 3):
            yield ContentDelta(piece)
            await asyncio.sleep(len(piece) / model.demo.chars_per_s * self._time_scale)
        generation_id, balance = await self._charge(model)
        yield StreamFinished(
            tokens_used=model.token_cost, balance_remaining=balance, generation_id=generation_id
        )

    async def generate(self, request: GenerationRequest) -> Generation:
        """The whole simulated answer after the simulated total time."""
        model = self._model(request.model)
        text = demo_answer(request)
        seconds = model.demo.ttft_ms / 1000 + len(text) / model.demo.chars_per_s
        await asyncio.sleep(seconds * self._time_scale)
        generation_id, balance = await self._charge(model)
        return Generation(text, model.token_cost, balance, generation_id)

    async def balance(self) -> Balance:
        """A simulated balance that goes down as demo answers are generated."""
        return Balance(token_balance=await asyncio.to_thread(self._current_balance), plan="Demo")

    async def aclose(self) -> None:
        """Nothing to release."""
