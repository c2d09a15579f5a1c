"""An OpenAI-compatible endpoint (``/openai/v1``) driven by the same per-model scripts.

Known models are the catalog's plus any scripted name (OpenAI-compatible servers host
arbitrary models). No balance or quota applies here; ``fail_first``/``status`` answer
OpenAI-style error bodies. Streams start with a role-only delta, end with the
``finish_reason`` chunk (``"length"`` when ``max_tokens``, counted in deltas, cut the
answer) and, when ``stream_options.include_usage`` asks for it, a ``choices: []`` chunk
with the usage; ``keepalive_every`` adds ``: keep-alive`` comments.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_elumenta.elumenta import fake_state, received_at
from tests.fake_elumenta.errors import openai_error
from tests.fake_elumenta.scripts import ModelScript
from tests.fake_elumenta.state import FakeState
from tests.fake_elumenta.stream import Ending, NoAnswer, ScriptedStream, timeline, wait_whole_answer


def check_openai_key(request: Request, state: FakeState) -> None:
    """401 unless ``Authorization: Bearer <openai_api_key>`` (no check when no key is set)."""
    if state.openai_api_key is None:
        return
    if request.headers.get("authorization") != f"Bearer {state.openai_api_key}":
        raise openai_error(401, "invalid_api_key", "Incorrect API key provided.")


def openai_models(state: FakeState) -> list[str]:
    """Model ids served here: the catalog's, then scripted extras."""
    return list(dict.fromkeys([*state.models, *state.scripts]))


@dataclass
class OpenAIEvents:
    """``chat.completion.chunk`` payloads for one streamed answer."""

    model: str
    completion_id: str = field(default_factory=lambda: f"chatcmpl-{secrets.token_hex(8)}")
    created: int = field(default_factory=lambda: int(time.time()))
    script: ModelScript | None = None
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """One chunk carrying ``delta``."""
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def start(self) -> dict[str, Any]:
        """The role-only chunk, sent at once."""
        return self.chunk({"role": "assistant"})

    def delta(self, text: str) -> dict[str, Any]:
        """A content chunk."""
        return self.chunk({"content": text})

    def end(self) -> list[dict[str, Any]]:
        """The ``finish_reason`` chunk, then (when asked for) the usage in a chunk with
        ``choices: []``, as OpenAI sends it."""
        chunks = [self.chunk({}, self.finish_reason)]
        if self.usage is not None:
            chunks.append({**self.chunk({}), "choices": [], "usage": self.usage})
        return chunks

    def error(self) -> dict[str, Any]:
        """An in-band error object."""
        message = (self.script and self.script.error_message) or "The upstream model failed."
        return {"error": {"message": message, "type": "server_error", "code": "provider_error"}}

    def fail(self) -> None:
        """Nothing to record: this endpoint keeps no generations."""


def _usage(prompt: str, deltas: list[str]) -> dict[str, int]:
    """Token counts as the fake counts them: a word of the prompt, a delta of the answer."""
    prompt_tokens, completion_tokens = len(prompt.split()), len(deltas)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _cut_at_max_tokens(body: dict[str, Any], deltas: list[str]) -> tuple[list[str], str]:
    """The deltas sent and the ``finish_reason``: ``max_tokens`` deltas at most (one delta
    counts as one token), ``"length"`` when that cut the answer."""
    limit = body.get("max_tokens")
    if isinstance(limit, int) and 0 < limit < len(deltas):
        return deltas[:limit], "length"
    return deltas, "stop"


def _completion(model: str, prompt: str, deltas: list[str], finish_reason: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{secrets.token_hex(8)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(deltas)},
                "finish_reason": finish_reason,
            }
        ],
        "usage": _usage(prompt, deltas),
    }


def _parse(body: Any, state: FakeState) -> tuple[str, str, bool]:
    """``(model, last user prompt, stream)``; OpenAI-style 400/404 when unusable."""
    if not isinstance(body, dict):
        raise openai_error(400, "invalid_request", "The body must be a JSON object.")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise openai_error(400, "invalid_request", "'messages' must be a non-empty array.")
    if not isinstance(model, str) or model not in openai_models(state):
        raise openai_error(404, "model_not_found", f"The model '{model}' does not exist.")
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise openai_error(400, "invalid_request", "temperature must be between 0 and 2.")
    prompt = next(
        (
            str(m.get("content", ""))
            for m in reversed(messages)
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    return model, prompt, bool(body.get("stream"))


async def chat_completions(request: Request) -> Response:
    """``POST /chat/completions``: SSE chunks + ``[DONE]`` when streaming, else one completion."""
    state = fake_state(request)
    check_openai_key(request, state)
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise openai_error(400, "invalid_request", "The body is not valid JSON.") from exc
    model, prompt, stream = _parse(body, state)
    script = state.request_script(model)
    failure = state.next_failure(model)
    if failure is not None:
        status, code = failure
        retry_after = script.retry_after_s if status in (429, 503) else None
        message = script.error_message or f"Scripted failure {status} {code}."
        raise openai_error(status, code, message, retry_after)
    catalog_entry = state.models.get(model)
    content = script.answer_text(catalog_entry.name if catalog_entry else model, model, prompt)
    deltas, finish_reason = _cut_at_max_tokens(body, script.split(content))
    started = received_at(request)
    if stream:
        options = body.get("stream_options")
        wants_usage = isinstance(options, dict) and options.get("include_usage") is True
        usage = _usage(prompt, deltas) if wants_usage else None
        events = OpenAIEvents(model, script=script, finish_reason=finish_reason, usage=usage)
        return ScriptedStream(timeline(script, deltas, started, events), script)
    ending = await wait_whole_answer(script, len(deltas), started)
    if ending is Ending.ERROR:
        raise openai_error(500, "provider_error", script.error_message or "The model failed.")
    if ending is not Ending.COMPLETE:
        return NoAnswer(ending, reset=script.drop_with_reset)
    return JSONResponse(_completion(model, prompt, deltas, finish_reason))


async def list_models(request: Request) -> Response:
    """``GET /models`` in the OpenAI list format."""
    state = fake_state(request)
    check_openai_key(request, state)
    data = [
        {"id": model, "object": "model", "created": 0, "owned_by": "elumenta-fake"}
        for model in openai_models(state)
    ]
    return JSONResponse({"object": "list", "data": data})


routes = [
    Route("/chat/completions", chat_completions, methods=["POST"]),
    Route("/models", list_models, methods=["GET"]),
]
