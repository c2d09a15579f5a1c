"""The History list's rows: what the list shows of each comparison, read in two statements.

A list row names the comparison's models with their status marks and cost, its title,
tags and last turn; it holds no answer text, parameters or timings, which only an opened
comparison shows. The statements are built once and read plain tuples, so a page of 20
comparisons costs a few dozen small tuples rather than every answer's full result.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from playground.results import ModelResult, answer_cost, total_cost
from playground.store.models import Comparison, ComparisonTag, Result


class AnswerMark(NamedTuple):
    """One answer as the list shows it: which model, how it ended, what it cost."""

    provider: str
    model: str
    status: str
    cached: bool
    truncated: bool
    cost: int | None
    """Billing tokens (see :func:`~playground.results.answer_cost`), ``None``: unknown."""


@dataclass(frozen=True)
class ComparisonRow:
    """A comparison as one row of the History list."""

    id: int
    created_at: datetime
    title: str
    prompt: str
    """The last turn's text ("" without turns)."""
    tags: tuple[str, ...]
    answers: tuple[AnswerMark, ...]
    """In position order."""
    texts: tuple[str, ...] = ()
    """While searching: the system prompt, every turn and every answer, where a search
    word may have matched; empty otherwise."""

    @property
    def cost(self) -> int | None:
        """Billing tokens the comparison cost; ``None`` when no answer's cost is known."""
        return total_cost(answer.cost for answer in self.answers)


def load_rows(session: Session, ids: Sequence[int]) -> dict[int, ComparisonRow]:
    """The list rows of the comparisons ``ids``, by id (ids that no comparison has are
    missing). The caller chose the ids under the viewer's visibility."""
    if not ids:
        return {}
    wanted = sorted(set(ids))
    postgres = session.get_bind().dialect.name == "postgresql"
    answers_of, comparisons_of = _row_statements(postgres)
    connection = session.connection()
    marks: dict[int, list[AnswerMark]] = {i: [] for i in wanted}
    for (
        comparison_id,
        provider,
        model,
        status,
        cached,
        truncated,
        used,
        price,
    ) in connection.execute(answers_of, {"ids": wanted}).all():
        cost = answer_cost(status, used, price)
        marks[comparison_id].append(AnswerMark(provider, model, status, cached, truncated, cost))
    return {
        comparison_id: ComparisonRow(
            id=comparison_id,
            created_at=created,
            title=title,
            prompt=prompt or "",
            tags=tuple((tag_list or []) if postgres else sorted(json.loads(tag_list))),
            answers=tuple(marks[comparison_id]),
        )
        for comparison_id, created, title, prompt, tag_list in connection.execute(
            comparisons_of, {"ids": wanted}
        ).all()
    }


def marks_of(answers: Iterable[ModelResult]) -> tuple[AnswerMark, ...]:
    """The list's marks of full answers."""
    return tuple(
        AnswerMark(
            a.provider,
            a.model,
            a.status,
            a.cached,
            a.truncated,
            answer_cost(a.status, a.tokens_used, a.price_tokens),
        )
        for a in answers
    )


@functools.cache
def _row_statements(
    postgres: bool,
) -> tuple[sa.Select[*tuple[Any, ...]], sa.Select[*tuple[Any, ...]]]:
    """The answers' marks (in comparison, position order) and the comparisons' shown
    columns with their tags, of the comparison ids ``ids``: built once."""
    comparisons, results = (cast(sa.Table, model.__table__) for model in (Comparison, Result))
    ids: sa.BindParameter[list[int]] = sa.bindparam("ids", expanding=True)
    r = results.c
    answers = (
        sa.select(
            r.comparison_id,
            r.provider,
            r.model,
            r.status,
            r.cached,
            r.truncated,
            r.tokens_used,
            r.price_tokens,
        )
        .where(r.comparison_id.in_(ids))
        .order_by(r.comparison_id, r.position, r.id)
    )
    c = comparisons.c
    shown = sa.select(
        c.id, c.created_utc, c.title, _last_turn(c.messages_json, postgres), tags_of(c.id, postgres)
    ).where(c.id.in_(ids))
    return answers, shown


def _last_turn(messages: ColumnElement[Any], postgres: bool) -> ColumnElement[str | None]:
    """The last message's text, picked out by the database (NULL without messages): a
    long conversation is not read back to show one line of it."""
    if postgres:
        last = messages.op("->")(sa.literal_column("-1")).op("->>", return_type=sa.Text)(
            sa.literal_column("'content'")
        )
        return cast(ColumnElement[str | None], last)
    return sa.func.json_extract(messages, "$[#-1].content", type_=sa.Text)


def tags_of(comparison_id: ColumnElement[int], postgres: bool) -> ColumnElement[Any]:
    """A comparison's tags gathered by the database: an array in tag order on PostgreSQL
    (NULL without tags), a JSON array text on SQLite (unordered)."""
    tags = cast(sa.Table, ComparisonTag.__table__)
    if postgres:
        from sqlalchemy.dialects import postgresql  # not loaded by processes on SQLite

        ordered = postgresql.aggregate_order_by(tags.c.tag, tags.c.tag)
        return (
            sa.select(sa.func.array_agg(ordered, type_=postgresql.ARRAY(sa.String)))
            .where(tags.c.comparison_id == comparison_id)
            .scalar_subquery()
        )
    # SQLite before 3.44 has no ORDER BY inside an aggregate: the caller sorts (UTF-8
    # byte order, SQLite's own, is code point order).
    return (
        sa.select(sa.func.json_group_array(tags.c.tag))
        .where(tags.c.comparison_id == comparison_id)
        .scalar_subquery()
    )
