"""The history store's side of :class:`playground.results.Recorder`.

Every method is one short transaction, so concurrent runners (threads or processes) only
ever wait for each other for milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from playground.results import CompareRequest, ModelResult
from playground.safe_text import replace_nul
from playground.store.models import Comparison, ComparisonTag, Result
from playground.store.recovery import writer_id
from playground.store.repository import (
    find_cached_result,
    normalize_tags,
    prompt_hash,
    prompt_text,
)

CostLookup = Callable[[str], int | None]


class StoreRecorder:
    """Writes comparisons and results as they happen (implements ``Recorder``).

    ``catalog_cost_lookup(model)`` gives the billing price in force now (e.g.
    ``catalog.cost_of``); it is stored with each result so later price changes don't
    rewrite history. With ``owner`` set, cache hits come only from that owner's history.
    """

    def __init__(
        self,
        engine: Engine,
        catalog_cost_lookup: CostLookup | None = None,
        *,
        owner: str | None = None,
    ) -> None:
        self._engine = engine
        self._cost_of = catalog_cost_lookup or (lambda _model: None)
        self._owner = owner

    def start_comparison(self, request: CompareRequest) -> int:
        """Store the comparison and one ``pending`` row per target; return the comparison id."""
        now = datetime.now(UTC)
        comparison = Comparison(
            created_utc=now,
            owner=request.owner,
            title=request.title,
            system_prompt=request.system_prompt,
            messages_json=[{"role": m.role, "content": m.content} for m in request.messages],
            params_json=request.params.to_dict(),
            note=request.note,
            use_cache=request.use_cache,
            prompt_text=prompt_text(request.system_prompt, request.messages),
            prompt_hash=prompt_hash(request.system_prompt, request.messages),
            tags=[ComparisonTag(tag=t) for t in normalize_tags(request.tags)],
        )
        for index, target in enumerate(request.targets):
            generation = request.generation_request(index)
            comparison.results.append(
                Result(
                    position=index,
                    provider=target.provider,
                    model=target.model,
                    target_params_json=target.params.to_dict() if target.params else None,
                    params_json=generation.params.to_dict(),
                    request_hash=generation.request_hash(target.provider),
                    status="pending",
                    content="",
                    chars=0,
                    cached=False,
                    price_tokens=self._cost_of(target.model),
                    writer=writer_id(),
                    created_utc=now,
                    updated_utc=now,
                )
            )
        with Session(self._engine) as session, session.begin():
            session.add(comparison)
            session.flush()
            return comparison.id

    def find_cached(self, provider: str, request_hash: str) -> ModelResult | None:
        """A completed earlier answer to the identical request, marked ``cached``; or ``None``."""
        with Session(self._engine) as session, session.begin():
            return find_cached_result(session, provider, request_hash, owner=self._owner)

    def record_started(self, comparison_id: int, result: ModelResult) -> int:
        """Turn the target's pending row into ``result`` (a new row if none); return its id."""
        now = datetime.now(UTC)
        values = _snapshot_values(result, now)
        values["started_utc"] = result.started_at or now
        if result.is_terminal:
            values["finished_utc"] = result.finished_at or now
        if result.price_tokens is None and not result.cached:
            values["price_tokens"] = self._cost_of(result.model)
        values["writer"] = writer_id()
        with Session(self._engine) as session, session.begin():
            # Update first: the statement takes SQLite's write lock straight away.
            row_id = session.scalar(
                sa.update(Result)
                .where(
                    Result.comparison_id == comparison_id,
                    Result.position == result.index,
                    Result.status == "pending",
                )
                .values(values)
                .returning(Result.id)
                .execution_options(synchronize_session=False)
            )
            if row_id is None:
                row_id = session.execute(
                    sa.insert(Result)
                    .values(
                        comparison_id=comparison_id,
                        position=result.index,
                        target_params_json=None,
                        created_utc=now,
                        **values,
                    )
                    .returning(Result.id)
                ).scalar_one()
        return row_id

    def record_progress(self, result: ModelResult) -> None:
        """Flush the partial text and metrics known so far."""
        self._write(result)

    def record_finished(self, result: ModelResult) -> None:
        """Write the final status, content, metrics, tokens and balance."""
        self._write(result, finished=True)

    def _write(self, result: ModelResult, *, finished: bool = False) -> None:
        if result.result_id is None:
            raise ValueError("record_started() must run first: the result has no row id.")
        now = datetime.now(UTC)
        values = _snapshot_values(result, now)
        if finished:
            values["finished_utc"] = result.finished_at or now
        with Session(self._engine) as session, session.begin():
            session.execute(
                sa.update(Result)
                .where(Result.id == result.result_id)
                .values(values)
                .execution_options(synchronize_session=False)
            )


def _snapshot_values(result: ModelResult, now: datetime) -> dict[str, Any]:
    """The columns a snapshot of ``result`` determines."""
    values: dict[str, Any] = {
        "provider": result.provider,
        "model": result.model,
        "params_json": result.params.to_dict(),
        "request_hash": result.request_hash,
        "status": result.status,
        # PostgreSQL cannot store NUL; an answer is the model's text, so it is kept, not refused.
        "content": replace_nul(result.content),
        "chars": result.chars,
        "chars_per_s": result.chars_per_s,
        "generation_id": result.generation_id,
        "tokens_used": result.tokens_used,
        "balance_remaining": result.balance_remaining,
        "latency_ms": result.latency_ms,
        "ttft_ms": result.ttft_ms,
        "error_code": result.error_code,
        "error_message": None
        if result.error_message is None
        else replace_nul(result.error_message),
        "cached": result.cached,
        "updated_utc": now,
    }
    if result.price_tokens is not None:
        values["price_tokens"] = result.price_tokens
    if result.started_at is not None:
        values["started_utc"] = result.started_at
    return values
