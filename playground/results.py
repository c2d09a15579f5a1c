"""What a comparison is and what each model's result holds, plus the recorder interface.

The runner fills :class:`ModelResult` snapshots; a :class:`Recorder` (the history store)
persists them. Neither knows about the other's internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

from playground.errors import RateLimitInfo
from playground.providers.base import GenerationParams, GenerationRequest, Message

# A blind vote's outcome: answer "a" or "b" better, a tie, or both bad.
VoteOutcome = Literal["a", "b", "tie", "both_bad"]
ResultStatus = Literal[
    "pending", "running", "completed", "partial", "failed", "cancelled", "interrupted"
]
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"completed", "partial", "failed", "cancelled", "interrupted"}
)
BadgeColour = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray"]


@dataclass(frozen=True)
class StatusStyle:
    """How every page shows one status: its words, badge colour, table icon, chart colour."""

    label: str
    badge: BadgeColour
    icon: str
    """A plain symbol, not emoji: tables are drawn on a canvas, and fonts without emoji are
    common."""
    colour: str


STATUS_STYLES: dict[str, StatusStyle] = {
    "pending": StatusStyle("Waiting", "gray", "…", "#cbd5e1"),
    "running": StatusStyle("Streaming…", "blue", "…", "#3b82f6"),
    "completed": StatusStyle("Done", "green", "✓", "#16a34a"),
    "partial": StatusStyle("Partial answer", "orange", "◐", "#f59e0b"),
    "failed": StatusStyle("Failed", "red", "✗", "#dc2626"),
    "cancelled": StatusStyle("Stopped", "orange", "■", "#94a3b8"),
    "interrupted": StatusStyle("Interrupted", "orange", "⚠", "#a855f7"),
}
"""The one vocabulary of result statuses (Compare badges, History icons, Costs chart)."""


@dataclass(frozen=True)
class ModelTarget:
    """One column of a comparison: a provider's model, optionally with its own params."""

    provider: str
    model: str
    params: GenerationParams | None = None
    requests_before: int = 0
    """Requests an earlier try of this column already sent (see ``GenerationRequest``)."""


@dataclass(frozen=True)
class CompareRequest:
    """One press of Run: a prompt (system + conversation), shared params and the targets."""

    messages: tuple[Message, ...]
    targets: tuple[ModelTarget, ...]
    system_prompt: str = ""
    params: GenerationParams = field(default_factory=GenerationParams)
    title: str = ""
    tags: tuple[str, ...] = ()
    note: str = ""
    owner: str | None = None
    use_cache: bool = False

    def generation_request(self, index: int) -> GenerationRequest:
        """The request sent for target ``index`` (shared params merged with its overrides)."""
        target = self.targets[index]
        return GenerationRequest(
            model=target.model,
            messages=self.messages,
            system_prompt=self.system_prompt,
            params=self.params.merged(target.params),
            requests_before=target.requests_before,
        )


@dataclass(frozen=True)
class ModelResult:
    """A snapshot of one target's result; immutable so a UI thread can read it safely."""

    index: int
    provider: str
    model: str
    params: GenerationParams
    request_hash: str
    status: ResultStatus = "pending"
    content: str = ""
    generation_id: str | None = None
    tokens_used: int | None = None
    balance_remaining: int | None = None
    price_tokens: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error_code: str | None = None
    error_message: str | None = None
    retry_after: float | None = None
    rate_limit: RateLimitInfo | None = None
    truncated: bool = False
    """The model stopped at ``max_tokens``: the answer is complete as sent but cut short."""
    requests_sent: int = 1
    """Requests sent for this answer in all (its retry budget's use), earlier tries included."""
    cached: bool = False
    result_id: int | None = None

    @property
    def chars(self) -> int:
        """Length of the answer in characters."""
        return len(self.content)

    @property
    def chars_per_s(self) -> float | None:
        """Output speed after the first token: chars / (latency - TTFT), ``None`` if unknown."""
        if self.latency_ms is None or self.ttft_ms is None or not self.content:
            return None
        streaming_ms = self.latency_ms - self.ttft_ms
        if streaming_ms <= 0:
            return None
        return self.chars / (streaming_ms / 1000.0)

    @property
    def is_terminal(self) -> bool:
        """Whether this result will not change any more."""
        return self.status in TERMINAL_STATUSES

    def to_json_dict(self) -> dict[str, Any]:
        """The stable CLI/JSON form: ``model, status, content, tokens_used, ...``."""
        error = (
            {"code": self.error_code, "message": self.error_message}
            if self.error_code or self.error_message
            else None
        )
        return {
            "model": self.model,
            "status": self.status,
            "content": self.content,
            "tokens_used": self.tokens_used,
            "balance_remaining": self.balance_remaining,
            "latency_ms": _round(self.latency_ms),
            "ttft_ms": _round(self.ttft_ms),
            "generation_id": self.generation_id,
            "truncated": self.truncated,
            "error": error,
        }


def answer_cost(status: str, tokens_used: int | None, price_tokens: int | None) -> int | None:
    """Billing tokens an answer cost: what the API reported, else (if it completed) its price.

    An unfinished answer without a report is unknown: errors before the answer are not billed.
    """
    if tokens_used is not None:
        return tokens_used
    return price_tokens if status == "completed" else None


def total_cost(costs: Iterable[int | None]) -> int | None:
    """The sum of the known ``costs``; ``None`` when none is known."""
    known = [cost for cost in costs if cost is not None]
    return sum(known) if known else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@runtime_checkable
class StartsRunning(Protocol):
    """A recorder that can store a comparison with its models' rows already started."""

    @property
    def starts_together(self) -> bool:
        """Whether :meth:`start_running` may be used for this recorder."""
        ...

    def start_running(
        self, request: CompareRequest, started: Sequence[ModelResult]
    ) -> tuple[int, list[int]]:
        """Store the comparison and each target's row as ``started[i]`` (``running``) in one
        transaction; return the comparison id and the rows' ids in target order."""
        ...


@runtime_checkable
class StartsLookingUp(Protocol):
    """A recorder that, for a comparison with the response cache on, looks up every
    target's earlier answer and stores the comparison with the rows of the others already
    started, in one transaction."""

    def start_looking_up(
        self, request: CompareRequest, started: Sequence[ModelResult]
    ) -> tuple[int, list[int | None], list[ModelResult | None]]:
        """Store the comparison; return its id, then per target (in order) the row id of a
        target stored as ``started[i]`` (``running``: no cached answer, its request may go
        out) and the cached answer of the others (their rows are pending, written with
        the cached answer by ``record_started``)."""
        ...


class Recorder(Protocol):
    """Where the runner reports results; the history store implements it.

    Methods are called from the runner's writer thread, never concurrently for one runner,
    and a result's calls in order (start, flushes, final write); a start may overtake
    other results' queued writes. They must be quick (short transactions).
    """

    def start_comparison(self, request: CompareRequest) -> int:
        """Persist the comparison (prompt, params, targets) and return its id."""
        ...

    def find_cached(self, provider: str, request_hash: str) -> ModelResult | None:
        """A completed earlier result for the identical request, or ``None``."""
        ...

    def record_started(self, comparison_id: int, result: ModelResult) -> int:
        """Write the result row as ``running`` (or its final state if cached); return its id."""
        ...

    def record_progress(self, result: ModelResult) -> None:
        """Flush the partial text of a running result (``result.result_id`` is set)."""
        ...

    def record_finished(self, result: ModelResult) -> None:
        """Write the final status, content, metrics, tokens and balance."""
        ...
