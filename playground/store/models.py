"""The history schema as SQLAlchemy ORM classes (the migrations are the source of truth).

One ``Comparison`` per press of Run; one ``Result`` per target model. JSON columns are
named ``*_json`` and timestamps ``*_utc`` (always timezone-aware UTC in Python). No column
ever holds an API key.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

if TYPE_CHECKING:
    # Imported where usage timings are read or written: numpy takes ~0.1 s to import, and
    # most commands (an eval's start-up included) never touch them.
    import numpy as np

    CountsArray = np.ndarray
else:
    CountsArray = Any  # what the mapping resolves ``Mapped[CountsArray]`` to at run time


class JsonType(sa.types.TypeDecorator[Any]):
    """A JSON document: ``JSON`` on SQLite, ``JSONB`` on PostgreSQL.

    Chosen per dialect when a connection needs it, so a process on SQLite (an eval's
    start-up) never loads SQLAlchemy's PostgreSQL dialect (~25 ms of imports)."""

    impl = sa.JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(sa.JSON())


OPEN_STATUSES: tuple[str, ...] = ("pending", "running")
FINISHED_STATUSES: tuple[str, ...] = ("completed", "partial", "failed", "cancelled", "interrupted")
VISIBILITIES: tuple[str, ...] = ("private", "workspace")


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back as an aware UTC ``datetime``.

    SQLite keeps naive ISO text (which sorts chronologically); PostgreSQL a ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the history schema."""


class Shared:
    """Columns of every owned object (migration 0004): its workspace and who there may see it.

    ``visibility`` is ``private`` (the owner only) or ``workspace`` (every member).
    """

    # No foreign key (see migration 0004): deleting a workspace clears this in code.
    workspace_id: Mapped[int | None] = mapped_column(sa.Integer)
    visibility: Mapped[str] = mapped_column(sa.String(16), server_default="private")


# The condition of the partial indexes that hold batch comparisons alone. Migration 0014
# makes them partial on PostgreSQL too; a ``postgresql_where`` here would load
# SQLAlchemy's PostgreSQL dialect in every process (as for ``ix_results_balance``).
_BATCH_COMPARISONS_ONLY: dict[str, Any] = {"sqlite_where": sa.text("batch_id IS NOT NULL")}


class Comparison(Shared, Base):
    """One press of Run: the prompt, shared params and metadata; targets live in results."""

    __tablename__ = "comparisons"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    title: Mapped[str] = mapped_column(sa.String(500))
    system_prompt: Mapped[str] = mapped_column(sa.Text)
    messages_json: Mapped[list[dict[str, str]]] = mapped_column(JsonType)
    params_json: Mapped[dict[str, Any]] = mapped_column(JsonType)
    note: Mapped[str] = mapped_column(sa.Text)
    use_cache: Mapped[bool] = mapped_column(sa.Boolean)
    # The system prompt and messages as one text: what full-text search indexes.
    prompt_text: Mapped[str] = mapped_column(sa.Text)
    # Equal for comparisons of the same prompt: groups the "same prompt, other models" table.
    prompt_hash: Mapped[str] = mapped_column(sa.String(64))
    deleted_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The unguessable part of a share link (hosted mode): an id alone never opens a comparison.
    share_token: Mapped[str | None] = mapped_column(sa.String(64))
    # The evaluation batch that ran it (migration 0014), NULL for a press of Run. No
    # foreign key, as for workspace_id: batches are never deleted, and SQLite would have
    # to copy this table to add one.
    batch_id: Mapped[int | None] = mapped_column(sa.Integer)

    tags: Mapped[list[ComparisonTag]] = relationship(
        back_populates="comparison",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ComparisonTag.tag",
    )
    results: Mapped[list[Result]] = relationship(
        back_populates="comparison",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(Result.position, Result.id)",
    )

    __table_args__ = (
        sa.Index("ix_comparisons_created_utc", "created_utc"),
        sa.Index("ix_comparisons_owner_created_utc", "owner", "created_utc"),
        sa.Index("ix_comparisons_prompt_hash", "prompt_hash"),
        sa.Index("ix_comparisons_deleted_utc", "deleted_utc"),
        sa.Index("ix_comparisons_workspace", "workspace_id"),
        sa.Index("ix_comparisons_share_token", "share_token", unique=True),
        # Which of some comparisons a batch ran, one index probe each (History's walk and
        # count), and a batch's comparisons; both hold batch comparisons only.
        sa.Index("ix_comparisons_batched", "id", "batch_id", **_BATCH_COMPARISONS_ONLY),
        sa.Index("ix_comparisons_batch_id", "batch_id", "id", **_BATCH_COMPARISONS_ONLY),
    )


class ComparisonTag(Base):
    """A tag on a comparison (a set: one row per distinct tag)."""

    __tablename__ = "comparison_tags"

    comparison_id: Mapped[int] = mapped_column(
        sa.ForeignKey("comparisons.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(sa.String(100), primary_key=True)

    comparison: Mapped[Comparison] = relationship(back_populates="tags")

    __table_args__ = (sa.Index("ix_comparison_tags_tag", "tag", "comparison_id"),)


class Result(Base):
    """One target model's answer within a comparison, written as it happens."""

    __tablename__ = "results"

    id: Mapped[int] = mapped_column(primary_key=True)
    comparison_id: Mapped[int] = mapped_column(sa.ForeignKey("comparisons.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(sa.Integer)
    provider: Mapped[str] = mapped_column(sa.String(64))
    model: Mapped[str] = mapped_column(sa.String(200))
    target_params_json: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    params_json: Mapped[dict[str, Any]] = mapped_column(JsonType)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))
    content: Mapped[str] = mapped_column(sa.Text)
    chars: Mapped[int] = mapped_column(sa.Integer)
    chars_per_s: Mapped[float | None] = mapped_column(sa.Float)
    generation_id: Mapped[str | None] = mapped_column(sa.String(100))
    tokens_used: Mapped[int | None] = mapped_column(sa.Integer)
    balance_remaining: Mapped[int | None] = mapped_column(sa.Integer)
    price_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    ttft_ms: Mapped[float | None] = mapped_column(sa.Float)
    error_code: Mapped[str | None] = mapped_column(sa.String(64))
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    cached: Mapped[bool] = mapped_column(sa.Boolean)
    # Cut at max_tokens (0008): complete as sent, but not the whole answer.
    truncated: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false(), default=False)
    # host:pid:token of the process writing the row; crash recovery asks if it still lives.
    writer: Mapped[str | None] = mapped_column(sa.String(200))
    created_utc: Mapped[datetime] = mapped_column(UtcDateTime)
    started_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_utc: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_utc: Mapped[datetime] = mapped_column(UtcDateTime)

    comparison: Mapped[Comparison] = relationship(back_populates="results")

    __table_args__ = (
        sa.Index("ix_results_comparison_id", "comparison_id", "position"),
        # Time-ordered, holding comparison_id (0011): the History walk and its count read
        # the index alone.
        sa.Index(
            "ix_results_model_status_created",
            "model",
            "status",
            "created_utc",
            "id",
            "comparison_id",
        ),
        sa.Index("ix_results_model_created", "model", "created_utc", "id", "comparison_id"),
        sa.Index("ix_results_status_created", "status", "created_utc", "id", "comparison_id"),
        sa.Index("ix_results_created", "created_utc", "id", "comparison_id"),
        sa.Index("ix_results_request_hash", "request_hash"),
        # The balance chart's lookups: each provider's last balance of a day (0012). The
        # migration makes it partial on PostgreSQL too; a ``postgresql_where`` here would
        # load SQLAlchemy's PostgreSQL dialect in every process, on SQLite as well (~25 ms
        # of an eval's start-up), and nothing builds this table from these models there.
        sa.Index(
            "ix_results_balance",
            "provider",
            "created_utc",
            "id",
            sqlite_where=sa.text("balance_remaining IS NOT NULL"),
        ),
        # Covering index for the dashboard: aggregates read it instead of the wide rows.
        sa.Index(
            "ix_results_stats",
            "cached",
            "model",
            "provider",
            "status",
            "created_utc",
            "tokens_used",
            "chars",
            "latency_ms",
            "ttft_ms",
            "chars_per_s",
        ),
    )


class UsageRollup(Base):
    """Finished results added up per UTC day, model, provider, owner, sharing and status.

    Kept in the same transaction as every write that finishes, changes or removes a result
    (:mod:`playground.store.rollups`), so the Costs page reads these few rows instead of
    every result. ``owner`` is ``''`` for rows without one; ``shared_workspace`` is the
    workspace that may see them (``0``: private), so hosted visibility applies per row.
    """

    __tablename__ = "usage_rollups"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    shared_workspace: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    cached: Mapped[bool] = mapped_column(sa.Boolean, primary_key=True)
    results: Mapped[int] = mapped_column(sa.BigInteger)
    tokens_spent: Mapped[int] = mapped_column(sa.BigInteger)
    output_chars: Mapped[int] = mapped_column(sa.BigInteger)
    latency_n: Mapped[int] = mapped_column(sa.BigInteger)
    latency_sum: Mapped[float] = mapped_column(sa.Float)
    ttft_n: Mapped[int] = mapped_column(sa.BigInteger)
    ttft_sum: Mapped[float] = mapped_column(sa.Float)
    speed_n: Mapped[int] = mapped_column(sa.BigInteger)
    speed_sum: Mapped[float] = mapped_column(sa.Float)


class BinCounts(sa.types.TypeDecorator["CountsArray"]):
    """An array of counts (int64) per timing bin: a BLOB of little-endian int64 on SQLite,
    ``BIGINT[]`` on PostgreSQL; read back as a numpy array."""

    impl = sa.LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return dialect.type_descriptor(ARRAY(sa.BigInteger))
        return dialect.type_descriptor(sa.LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        import numpy as np

        counts = np.asarray(value, dtype="<i8")
        return counts.tolist() if dialect.name == "postgresql" else counts.tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> np.ndarray | None:
        if value is None:
            return None
        import numpy as np

        if isinstance(value, bytes | memoryview):
            return np.frombuffer(value, dtype="<i8")
        return np.asarray(value, dtype=np.int64)


class UsageTiming(Base):
    """How many of a rollup bucket's results fell in each log-spaced bin of a timing.

    ``measure`` is ``latency_ms`` or ``ttft_ms``; ``counts[k]`` is how many values fell in
    bin ``low + k``, i.e. in ``[GAMMA**(low+k), GAMMA**(low+k+1))`` ms (see
    :mod:`playground.store.rollups`). One row per bucket and measure (migration 0010),
    twice: ``period`` ``day`` for the bucket's day, and ``month`` adding up its calendar
    month (``day`` is then the month's first), so a long period reads a row per month.
    """

    __tablename__ = "usage_timings"

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    shared_workspace: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    cached: Mapped[bool] = mapped_column(sa.Boolean, primary_key=True)
    measure: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    period: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    low: Mapped[int] = mapped_column(sa.Integer)
    counts: Mapped[CountsArray] = mapped_column(BinCounts)
