"""The LLM-as-judge grader: one non-streamed call to a chosen model per graded answer."""

from __future__ import annotations

from playground.evaluation.assertions import Grader
from playground.providers.base import GenerationParams, GenerationRequest, Message, Provider


def make_grader(provider: Provider, model: str, *, temperature: float = 0.0) -> Grader:
    """A grader asking ``model`` through ``provider``; returns its reply and billing tokens."""

    async def grade(prompt: str) -> tuple[str, int | None]:
        request = GenerationRequest(
            model=model,
            messages=(Message("user", prompt),),
            params=GenerationParams(temperature=temperature),
        )
        generation = await provider.generate(request)
        return generation.content, generation.tokens_used

    return grade
