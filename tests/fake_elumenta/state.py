"""The fake account and everything tests script or inspect: balance, quota, models, requests."""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fake_elumenta.scripts import ModelScript

CATALOG_PATH = Path(__file__).resolve().parents[2] / "playground" / "data" / "models.json"
PLANS_WITH_API = ("VIP", "Elite")
DEFAULT_API_KEY = "nb_test_key_123"
DEFAULT_PLAN_EXPIRES_AT = "2026-12-31T23:59:59Z"

#: What an unscripted model does: the default markdown answer, visibly streamed.
DEFAULT_SCRIPT = ModelScript(ttft_ms=50.0, delay_ms=10.0)


def utc_now_iso() -> str:
    """The current UTC time as ``2026-03-01T12:00:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it (header names are lower-case)."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: bytes
    received_at: float
    client: str = ""  # "host:port" of the connection it came on

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``GET /_fake/requests``."""
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "json": self.json,
            "body": self.body.decode("utf-8", "replace"),
            "received_at": self.received_at,
            "client": self.client,
        }


@dataclass
class FakeModel:
    """A model the fake knows, as ``GET /models/{slug}`` describes it."""

    slug: str
    name: str
    token_cost: int
    min_token_cost: int | None = None
    max_token_cost: int | None = None
    supports_streaming: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The ``GET /models/{slug}`` answer."""
        return asdict(self)


def load_models(path: Path = CATALOG_PATH) -> dict[str, FakeModel]:
    """The models (slug, name, price) of the project's catalog file."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {
        raw["slug"]: FakeModel(
            slug=raw["slug"],
            name=raw.get("name", raw["slug"]),
            token_cost=int(raw["token_cost"]),
            min_token_cost=raw.get("min_token_cost"),
            max_token_cost=raw.get("max_token_cost"),
            supports_streaming=bool(raw.get("supports_streaming", True)),
        )
        for raw in doc["models"]
    }


@dataclass
class GenerationRecord:
    """One generation, for ``GET /generate/{id}``; status moves processing → completed/failed."""

    id: str | int
    model: str
    shape: str
    status: str = "processing"
    content: str = ""
    tokens_used: int = 0
    balance_remaining: int | None = None
    created_at: str = field(default_factory=utc_now_iso)
    processing_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The generation in its script's response shape."""
        if self.shape == "B":
            return {
                "id": self.id,
                "status": self.status,
                "model": self.model,
                "result_text": self.content,
                "tokens_spent": self.tokens_used,
                "processing_ms": self.processing_ms,
                "balance_remaining": self.balance_remaining,
                "created_at": self.created_at,
            }
        return {
            "id": self.id,
            "status": self.status,
            "type": "text",
            "model": self.model,
            "content": self.content,
            "tokens_used": self.tokens_used,
            "balance_remaining": self.balance_remaining,
            "created_at": self.created_at,
        }


class FakeState:
    """Account, catalog, scripts and recorded requests of one fake server.

    Tests change the public attributes directly (``fake.balance = 1``); :meth:`reset`
    puts every one of them back to the constructor's values.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        balance: int = 1000,
        plan: str = "VIP",
        quota_hour: int | None = 100,
        quota_day: int | None = 1000,
        openai_api_key: str | None = None,
    ) -> None:
        self._initial: dict[str, Any] = {
            "api_key": api_key,
            "balance": balance,
            "plan": plan,
            "quota_hour": quota_hour,
            "quota_day": quota_day,
            "openai_api_key": openai_api_key,
        }
        self.requests: list[RecordedRequest] = []
        # When the fake finished answering a request (its last byte sent), by its index in
        # ``requests``: what shows whether requests overlapped.
        self.answered_at: dict[int, float] = {}
        # When its first answer text went out (a streamed answer's first content delta): the
        # fake's own time to first token, which a load benchmark tells apart from the app's.
        self.first_text_at: dict[int, float] = {}
        self.reset()

    def reset(self) -> None:
        """Forget scripts, requests and generations; restore balance, plan, quota and keys."""
        self.api_key: str = self._initial["api_key"]
        self.key_expired: bool = False
        self.balance: int = self._initial["balance"]
        self.plan: str = self._initial["plan"]
        self.plan_expires_at: str = DEFAULT_PLAN_EXPIRES_AT
        self.quota_hour: int | None = self._initial["quota_hour"]
        self.quota_day: int | None = self._initial["quota_day"]
        self.used_hour: int = 0
        self.used_day: int = 0
        self.quota_retry_after_s: float = 30.0
        # strftime format of X-RateLimit-Reset-Hour (the API's is ISO 8601 with "Z").
        self.reset_hour_format: str = "%Y-%m-%dT%H:%M:%SZ"
        self.openai_api_key: str | None = self._initial["openai_api_key"]
        self.models: dict[str, FakeModel] = load_models()
        # A copy, so a test that mutates it cannot leak into the next test.
        self.default_script: ModelScript = replace(DEFAULT_SCRIPT)
        self.scripts: dict[str, ModelScript] = {}
        self.calls: dict[str, int] = {}
        self.generations: dict[str, GenerationRecord] = {}
        self._next_int_id = 12345
        self.rng = random.Random(0)  # per-request times to first token (``ttft_max_ms``)
        self.requests.clear()
        self.answered_at.clear()
        self.first_text_at.clear()

    def script(self, model: str, script: ModelScript) -> None:
        """Make ``model`` answer as ``script`` (``"*"`` sets the default for unscripted models)."""
        if model == "*":
            self.default_script = script
        else:
            self.scripts[model] = script
            self.calls[model] = 0

    def script_for(self, model: str) -> ModelScript:
        """The script ``model`` follows."""
        return self.scripts.get(model, self.default_script)

    def request_script(self, model: str) -> ModelScript:
        """The script one request to ``model`` follows: its time to first token drawn
        from the script's range when it has one."""
        script = self.script_for(model)
        if script.ttft_max_ms is None:
            return script
        return replace(script, ttft_ms=self.rng.uniform(script.ttft_ms, script.ttft_max_ms))

    def next_failure(self, model: str) -> tuple[int, str] | None:
        """Count one call to ``model``; the ``(status, code)`` it must fail with, if any."""
        script = self.script_for(model)
        call = self.calls.get(model, 0)
        self.calls[model] = call + 1
        if call < len(script.fail_first):
            return script.fail_first[call]
        return script.always_fails

    @property
    def remaining_hour(self) -> int | None:
        """Requests left this hour (``None`` = unlimited)."""
        return None if self.quota_hour is None else max(0, self.quota_hour - self.used_hour)

    @property
    def remaining_day(self) -> int | None:
        """Requests left today (``None`` = unlimited)."""
        return None if self.quota_day is None else max(0, self.quota_day - self.used_day)

    def consume_quota(self) -> bool:
        """Count one generate request; ``False`` (nothing counted) when the quota is used up."""
        if self.remaining_hour == 0 or self.remaining_day == 0:
            return False
        self.used_hour += 1
        self.used_day += 1
        return True

    def rate_limit_headers(self) -> dict[str, str]:
        """The ``X-RateLimit-*`` headers for the current quota (none when unlimited)."""
        headers: dict[str, str] = {}
        if self.quota_hour is not None:
            headers["X-RateLimit-Limit-Hour"] = str(self.quota_hour)
            headers["X-RateLimit-Remaining-Hour"] = str(self.remaining_hour)
        if self.quota_day is not None:
            headers["X-RateLimit-Limit-Day"] = str(self.quota_day)
            headers["X-RateLimit-Remaining-Day"] = str(self.remaining_day)
        if headers:
            now = datetime.now(UTC)
            next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            headers["X-RateLimit-Reset-Hour"] = next_hour.strftime(self.reset_hour_format)
        return headers

    def new_generation(self, model: str, shape: str) -> GenerationRecord:
        """Register a generation in progress with a shape-appropriate id."""
        generation_id: str | int
        if shape == "B":
            generation_id = self._next_int_id
            self._next_int_id += 1
        else:
            generation_id = f"gen_{secrets.token_hex(6)}"
        record = GenerationRecord(id=generation_id, model=model, shape=shape)
        self.generations[str(generation_id)] = record
        return record

    def complete(self, record: GenerationRecord, content: str, cost: int, elapsed_ms: int) -> None:
        """Charge ``cost`` and mark ``record`` completed (only successful answers are charged)."""
        self.balance -= cost
        record.status = "completed"
        record.content = content
        record.tokens_used = cost
        record.balance_remaining = self.balance
        record.processing_ms = elapsed_ms

    def account_dict(self) -> dict[str, Any]:
        """The account settings for ``GET /_fake/state``."""
        return {
            "api_key": self.api_key,
            "key_expired": self.key_expired,
            "balance": self.balance,
            "plan": self.plan,
            "plan_expires_at": self.plan_expires_at,
            "quota_hour": self.quota_hour,
            "quota_day": self.quota_day,
            "used_hour": self.used_hour,
            "used_day": self.used_day,
            "quota_retry_after_s": self.quota_retry_after_s,
            "openai_api_key": self.openai_api_key,
        }

    def update_account(self, values: dict[str, Any]) -> None:
        """Set account settings from ``POST /_fake/state``; unknown names raise ``ValueError``."""
        unknown = sorted(set(values) - set(self.account_dict()))
        if unknown:
            raise ValueError(f"unknown account fields: {', '.join(unknown)}")
        for name, value in values.items():
            setattr(self, name, value)
