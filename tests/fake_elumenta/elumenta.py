"""The Elumenta API endpoints (``/api/v2``): access checks, both request shapes, scripted answers.

Checks run in this order: 401 (key) → 403 (plan) → 400 (body, model, messages) → 404 (model)
→ 422 (field ranges) → 429 (quota; a generate call counts once it gets past here) →
scripted failure → 402 (balance) → answer. Only completed answers are charged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fake_elumenta.errors import elumenta_error, rate_limited, scripted_error
from tests.fake_elumenta.scripts import ModelScript
from tests.fake_elumenta.state import PLANS_WITH_API, FakeModel, FakeState, GenerationRecord
from tests.fake_elumenta.stream import Ending, NoAnswer, ScriptedStream, timeline, wait_whole_answer

ROLES = ("system", "user", "assistant")


def fake_state(request: Request) -> FakeState:
    """The :class:`FakeState` the app was built around."""
    state: FakeState = request.app.state.fake
    return state


def received_at(request: Request) -> float:
    """``time.perf_counter()`` when the request arrived (stamped by the middleware)."""
    stamp: float = request.scope["state"]["received_at"]
    return stamp


async def read_json(request: Request) -> Any:
    """The body as JSON; a malformed body is a 400 ``bad_request``."""
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise elumenta_error(400, "bad_request", f"The body is not valid JSON: {exc}") from exc


def check_access(request: Request, state: FakeState) -> None:
    """401 unless the header is exactly ``Bearer <configured nb_ key>``; 403 without API plan."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or not token.startswith("nb_") or token != state.api_key:
        raise elumenta_error(401, "not_authenticated")
    if state.key_expired:
        raise elumenta_error(401, "token_expired")
    if state.plan not in PLANS_WITH_API:
        raise elumenta_error(403, "insufficient_plan", details={"plan": state.plan})


@dataclass(frozen=True)
class ParsedGeneration:
    """A generate request normalised from either documented shape."""

    model: str
    messages: list[Any]
    temperature: Any
    max_tokens: Any
    request_shape: str

    @property
    def prompt(self) -> str:
        """The last user message (what the default answer echoes)."""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return str(message.get("content", ""))
        return ""


def parse_generation(body: Any) -> ParsedGeneration:
    """Read shape A (``messages``…) or shape B (``prompt``/``params``); 400 when unusable."""
    if not isinstance(body, dict):
        raise elumenta_error(400, "bad_request", "The body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise elumenta_error(400, "bad_request", "'model' is required.", {"field": "model"})
    if "prompt" in body or "params" in body:
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise elumenta_error(400, "bad_request", "'params' must be an object.")
        messages = list(params.get("messages") or [])
        if params.get("system_prompt"):
            messages.insert(0, {"role": "system", "content": params["system_prompt"]})
        if body.get("prompt"):
            messages.append({"role": "user", "content": body["prompt"]})
        parsed = ParsedGeneration(
            model, messages, params.get("temperature"), params.get("max_tokens"), "B"
        )
    else:
        raw_messages = body.get("messages")
        parsed = ParsedGeneration(
            model,
            raw_messages if isinstance(raw_messages, list) else [],
            body.get("temperature"),
            body.get("max_tokens"),
            "A",
        )
    if not any(isinstance(m, dict) and str(m.get("content", "")).strip() for m in parsed.messages):
        raise elumenta_error(
            400, "bad_request", "'messages' is missing or empty.", {"field": "messages"}
        )
    return parsed


def validate_fields(parsed: ParsedGeneration) -> None:
    """422 ``validation_error`` for a bad message, temperature outside 0..2, max_tokens < 1."""
    for index, message in enumerate(parsed.messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise elumenta_error(
                422,
                "validation_error",
                "Each message needs a role (system, user, assistant) and a string content.",
                {"field": f"messages[{index}]"},
            )
    temperature = parsed.temperature
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise elumenta_error(
            422,
            "validation_error",
            "temperature must be a number between 0 and 2.",
            {"field": "temperature", "value": temperature, "min": 0, "max": 2},
        )
    max_tokens = parsed.max_tokens
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise elumenta_error(
            422,
            "validation_error",
            "max_tokens must be an integer >= 1.",
            {"field": "max_tokens", "value": max_tokens, "min": 1},
        )


def known_model(state: FakeState, slug: str) -> FakeModel:
    """The model, or 404 ``not_found``."""
    model = state.models.get(slug)
    if model is None:
        raise elumenta_error(404, "not_found", f"Model '{slug}' not found.", {"model": slug})
    return model


@dataclass
class ElumentaEvents:
    """The Elumenta stream's payloads for one generation (charges on ``end``)."""

    state: FakeState
    record: GenerationRecord
    model: FakeModel
    script: ModelScript
    content: str
    received_at: float

    def start(self) -> dict[str, Any]:
        """``generation_start`` with the generation id and model."""
        return {"type": "generation_start", "id": self.record.id, "model": self.model.slug}

    def delta(self, text: str) -> dict[str, Any]:
        """``content_delta``."""
        return {"type": "content_delta", "delta": text}

    def end(self) -> dict[str, Any]:
        """Charge the model's price; ``generation_end`` in the script's shape."""
        elapsed_ms = round((time.perf_counter() - self.received_at) * 1000)
        self.state.complete(self.record, self.content, self.model.token_cost, elapsed_ms)
        if self.script.shape == "B":
            return {
                "type": "generation_end",
                "id": self.record.id,
                "tokens_spent": self.model.token_cost,
                "balance_remaining": self.state.balance,
                "processing_ms": elapsed_ms,
            }
        return {
            "type": "generation_end",
            "id": self.record.id,
            "tokens_used": self.model.token_cost,
            "balance_remaining": self.state.balance,
        }

    def error(self) -> dict[str, Any]:
        """An in-band ``error`` event (``provider_error``)."""
        message = self.script.error_message or "The upstream model failed mid-answer."
        return {"type": "error", "error": "provider_error", "message": message}

    def fail(self) -> None:
        """Mark the generation failed (not charged)."""
        self.record.status = "failed"


async def _generate(request: Request, *, stream: bool) -> Response:
    state = fake_state(request)
    check_access(request, state)
    parsed = parse_generation(await read_json(request))
    model = known_model(state, parsed.model)
    validate_fields(parsed)
    if stream and not model.supports_streaming:
        raise elumenta_error(400, "bad_request", f"Model '{model.slug}' cannot stream.")
    if not state.consume_quota():
        raise rate_limited(state, state.quota_retry_after_s)
    script = state.request_script(model.slug)
    failure = state.next_failure(model.slug)
    if failure is not None:
        raise scripted_error(state, script, *failure)
    if state.balance < model.token_cost:
        raise elumenta_error(
            402,
            "insufficient_tokens",
            f"This model costs {model.token_cost} tokens; the balance is {state.balance}.",
            {"required": model.token_cost, "balance": state.balance},
        )
    content = script.answer_text(model.name, model.slug, parsed.prompt)
    deltas = script.split(content)
    record = state.new_generation(model.slug, script.shape)
    started = received_at(request)
    events = ElumentaEvents(state, record, model, script, content, started)
    if stream:
        return ScriptedStream(timeline(script, deltas, started, events), script)
    ending = await wait_whole_answer(script, len(deltas), started)
    if ending is Ending.ERROR:
        events.fail()
        raise elumenta_error(500, "provider_error", script.error_message)
    if ending is not Ending.COMPLETE:
        events.fail()
        return NoAnswer(ending, reset=script.drop_with_reset)
    events.end()
    return JSONResponse(record.to_dict())


async def generate(request: Request) -> Response:
    """``POST /generate``: the whole answer as JSON."""
    return await _generate(request, stream=False)


async def generate_stream(request: Request) -> Response:
    """``POST /generate/stream``: the answer as Server-Sent Events (whatever ``stream`` says)."""
    return await _generate(request, stream=True)


async def generation_status(request: Request) -> Response:
    """``GET /generate/{id}``: an earlier generation, or 404."""
    state = fake_state(request)
    check_access(request, state)
    generation_id = request.path_params["generation_id"]
    record = state.generations.get(generation_id)
    if record is None:
        raise elumenta_error(404, "not_found", f"Generation '{generation_id}' not found.")
    return JSONResponse(record.to_dict())


async def balance(request: Request) -> Response:
    """``GET /balance``."""
    state = fake_state(request)
    check_access(request, state)
    return JSONResponse(
        {
            "token_balance": state.balance,
            "plan": state.plan,
            "plan_expires_at": state.plan_expires_at,
        }
    )


async def model_details(request: Request) -> Response:
    """``GET /models/{slug}``."""
    state = fake_state(request)
    check_access(request, state)
    return JSONResponse(known_model(state, request.path_params["slug"]).to_dict())


routes = [
    Route("/generate", generate, methods=["POST"]),
    Route("/generate/stream", generate_stream, methods=["POST"]),
    Route("/generate/{generation_id}", generation_status, methods=["GET"]),
    Route("/balance", balance, methods=["GET"]),
    Route("/models/{slug}", model_details, methods=["GET"]),
]
