"""ORM classes of the evaluation schema (migration 0002): templates, datasets, batches, ratings.

Results stay unchanged: a batch links to its history rows through ``batch_cells.result_id``,
so every batch answer is an ordinary comparison/result that History, Costs and the cache see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from playground.store.models import Base, JsonType, Shared, UtcDateTime

BATCH_STATUSES: tuple[str, ...] = (
    "pending",
    "running",
    "paused",
    "judging",  # the answers are in; an LLM judge grades them (0005)
    "completed",
    "cancelled",
    "budget_reached",
    "interrupted",
)
CELL_STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed", "cancelled")
RATING_KINDS: tuple[str, ...] = ("thumbs", "score", "note")
VOTE_WINNERS: tuple[str, ...] = ("a", "b", "tie", "both_bad")


class PromptTemplateRow(Shared, Base):
    """A named prompt template; its text lives in numbered versions."""

    __tablename__ = "prompt_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        sa.Index("ix_prompt_templates_owner_name", "owner", "name", unique=True),
        sa.Index("ix_prompt_templates_workspace", "workspace_id"),
    )


class TemplateVersionRow(Base):
    """One immutable version of a template: editing a template adds a version."""

    __tablename__ = "template_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(
        sa.ForeignKey("prompt_templates.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(sa.Integer)
    system_prompt: Mapped[str] = mapped_column(sa.Text)
    user_prompt: Mapped[str] = mapped_column(sa.Text)
    variables_json: Mapped[list[str]] = mapped_column(JsonType)
    note: Mapped[str] = mapped_column(sa.Text)
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        sa.Index("ix_template_versions_template_version", "template_id", "version", unique=True),
    )


class DatasetRow(Shared, Base):
    """A saved dataset: its columns and rows as JSON (bounded by the parser's limits)."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    columns_json: Mapped[list[str]] = mapped_column(JsonType)
    rows_json: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    row_count: Mapped[int] = mapped_column(sa.Integer)
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        sa.Index("ix_datasets_owner_created", "owner", "created_utc"),
        sa.Index("ix_datasets_workspace", "workspace_id"),
    )


class BatchRow(Shared, Base):
    """A batch run: template versions × dataset rows × models; its settings in ``spec_json``."""

    __tablename__ = "eval_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(500))
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    dataset_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("datasets.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(sa.String(16))
    spec_json: Mapped[dict[str, Any]] = mapped_column(JsonType)
    budget_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_utc: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # host:pid:token of the process running it (migration 0003), to recover a dead one's batch
    writer: Mapped[str | None] = mapped_column(sa.String(200))
    # Where it runs (migration 0005): "in_process" (one app process) or "worker" (the queue);
    # the heartbeat is renewed by whoever works on it, so a stale one means nobody does.
    execution: Mapped[str] = mapped_column(sa.String(16), server_default="in_process")
    heartbeat_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Why it has its status, when that needs saying (0006): e.g. the owner's budget paused it.
    status_message: Mapped[str | None] = mapped_column(sa.String(500))

    __table_args__ = (
        sa.Index("ix_eval_batches_owner_created", "owner", "created_utc"),
        sa.Index("ix_eval_batches_workspace", "workspace_id"),
    )


class BatchCellRow(Base):
    """One cell of a batch: (template version, dataset row, model) and its history result."""

    __tablename__ = "batch_cells"

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(sa.ForeignKey("eval_batches.id", ondelete="CASCADE"))
    template_version_id: Mapped[int] = mapped_column(sa.ForeignKey("template_versions.id"))
    row_index: Mapped[int] = mapped_column(sa.Integer)
    provider: Mapped[str] = mapped_column(sa.String(64))
    model: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int] = mapped_column(sa.Integer)
    result_id: Mapped[int | None] = mapped_column(sa.ForeignKey("results.id", ondelete="SET NULL"))
    passed: Mapped[bool | None] = mapped_column(sa.Boolean)
    assertions_json: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonType)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    updated_utc: Mapped[datetime] = mapped_column(UtcDateTime)
    # The process (host:pid:token/shard) that claimed it last, and its heartbeat (0005).
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200))
    heartbeat_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # What the LLM judge cost for this cell and when it graded it (0007): the owner's spend.
    judge_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    judged_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (
        sa.Index(
            "ix_batch_cells_identity",
            "batch_id",
            "template_version_id",
            "row_index",
            "provider",
            "model",
            unique=True,
        ),
        sa.Index("ix_batch_cells_batch_status", "batch_id", "status"),
        sa.Index("ix_batch_cells_result_id", "result_id"),
        sa.Index("ix_batch_cells_judged_utc", "judged_utc"),
    )


MATRIX_ORDER = (BatchCellRow.template_version_id, BatchCellRow.row_index, BatchCellRow.id)
"""A batch's cells in matrix order (version, row, then model as planned): the order they
are claimed, shown and exported in."""


class RatingRow(Base):
    """A human rating of one result: thumbs (±1), a 1–5 score or a note, with who rated."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(sa.ForeignKey("results.id", ondelete="CASCADE"))
    rater: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[float | None] = mapped_column(sa.Float)
    note: Mapped[str | None] = mapped_column(sa.Text)
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (sa.Index("ix_ratings_result_id", "result_id"),)


class PairwiseVoteRow(Base):
    """A blind A/B vote between two answers to the same input."""

    __tablename__ = "pairwise_votes"

    id: Mapped[int] = mapped_column(primary_key=True)
    result_a_id: Mapped[int] = mapped_column(sa.ForeignKey("results.id", ondelete="CASCADE"))
    result_b_id: Mapped[int] = mapped_column(sa.ForeignKey("results.id", ondelete="CASCADE"))
    winner: Mapped[str] = mapped_column(sa.String(16))
    rater: Mapped[str] = mapped_column(sa.String(200))
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        sa.Index("ix_pairwise_votes_result_a", "result_a_id"),
        sa.Index("ix_pairwise_votes_result_b", "result_b_id"),
    )
