"""Reading and writing the evaluation tables; functions take a session and never commit.

The caller owns the transaction: ``with store.session() as s, s.begin(): ...``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from playground.datasets import Dataset
from playground.errors import InvalidRequestError
from playground.principal import Principal, can_view, visible_to
from playground.store.eval_models import (
    MATRIX_ORDER,
    BatchCellRow,
    BatchRow,
    DatasetRow,
    PromptTemplateRow,
    TemplateVersionRow,
)
from playground.store.models import Result
from playground.templates import PromptTemplate, variables


@dataclass(frozen=True)
class TemplateVersion:
    """One saved version of a named template."""

    id: int
    name: str
    version: int
    template: PromptTemplate
    variables: tuple[str, ...]
    note: str
    created_at: datetime


@dataclass(frozen=True)
class CellKey:
    """What a batch cell is: which template version, dataset row and model."""

    template_version_id: int
    row_index: int
    provider: str
    model: str


@dataclass(frozen=True)
class CellState:
    """A batch cell as stored, with the figures of its result when it has one."""

    id: int
    key: CellKey
    status: str
    attempts: int
    result_id: int | None
    passed: bool | None
    assertions: tuple[dict[str, Any], ...]
    error_message: str | None
    content: str = ""
    latency_ms: float | None = None
    tokens_used: int | None = None
    cached: bool = False
    truncated: bool = False


def _version(row: TemplateVersionRow, name: str) -> TemplateVersion:
    return TemplateVersion(
        id=row.id,
        name=name,
        version=row.version,
        template=PromptTemplate(row.system_prompt, row.user_prompt),
        variables=tuple(row.variables_json),
        note=row.note,
        created_at=row.created_utc,
    )


def save_template_version(
    session: Session,
    name: str,
    template: PromptTemplate,
    *,
    note: str = "",
    owner: str | None = None,
) -> TemplateVersion:
    """Save ``template`` under ``name`` as a new version; unchanged text reuses the latest one.

    Raises :class:`InvalidRequestError` for an empty name, an empty user prompt (every
    request made from it would fail) or a template that does not parse.
    """
    name = name.strip()
    if not name:
        raise InvalidRequestError("Give the template a name.")
    if not template.user.strip():
        raise InvalidRequestError(
            "The user prompt is empty: every request made from this template would fail. "
            "Write the prompt (with {{ variables }} for the dataset's columns)."
        )
    names = sorted(variables(template))
    parent = session.scalar(
        sa.select(PromptTemplateRow).where(
            PromptTemplateRow.name == name, _owner_is(PromptTemplateRow.owner, owner)
        )
    )
    now = datetime.now(UTC)
    if parent is None:
        parent = PromptTemplateRow(name=name, owner=owner, created_utc=now)
        session.add(parent)
        session.flush()
    latest = session.scalar(
        sa.select(TemplateVersionRow)
        .where(TemplateVersionRow.template_id == parent.id)
        .order_by(TemplateVersionRow.version.desc())
        .limit(1)
    )
    if latest is not None and (latest.system_prompt, latest.user_prompt) == (
        template.system,
        template.user,
    ):
        return _version(latest, name)
    row = TemplateVersionRow(
        template_id=parent.id,
        version=(latest.version + 1) if latest else 1,
        system_prompt=template.system,
        user_prompt=template.user,
        variables_json=names,
        note=note,
        created_utc=now,
    )
    session.add(row)
    session.flush()
    return _version(row, name)


def template_versions(
    session: Session, name: str, owner: str | None = None
) -> list[TemplateVersion]:
    """Every version of the template called ``name``, newest first."""
    rows = session.execute(
        sa.select(TemplateVersionRow, PromptTemplateRow.name)
        .join(PromptTemplateRow, PromptTemplateRow.id == TemplateVersionRow.template_id)
        .where(PromptTemplateRow.name == name, _owner_is(PromptTemplateRow.owner, owner))
        .order_by(TemplateVersionRow.version.desc())
    )
    return [_version(row, row_name) for row, row_name in rows]


def list_templates(
    session: Session, owner: str | None = None, *, viewer: Principal | None = None
) -> list[tuple[str, str | None]]:
    """``(name, owner)`` of every template in scope, by name then owner.

    In scope: ``owner``'s templates, or with a ``viewer`` (hosted mode) every template
    they may see (two people's templates can share a name).
    """
    query = sa.select(PromptTemplateRow.name, PromptTemplateRow.owner).where(
        _scope(PromptTemplateRow, owner, viewer)
    )
    order = query.order_by(PromptTemplateRow.name, PromptTemplateRow.owner)
    return [(name, row_owner) for name, row_owner in session.execute(order)]


def list_template_names(session: Session, owner: str | None = None) -> list[str]:
    """The names of every saved template, alphabetically."""
    query = sa.select(PromptTemplateRow.name).where(_owner_is(PromptTemplateRow.owner, owner))
    return list(session.scalars(query.order_by(PromptTemplateRow.name)))


def get_template_version(
    session: Session, version_id: int, *, viewer: Principal | None = None
) -> TemplateVersion | None:
    """The template version with this id (e.g. to load it into Compare), or ``None``.

    With a ``viewer`` (hosted mode) also ``None`` unless they may see its template.
    """
    found = session.execute(
        sa.select(TemplateVersionRow, PromptTemplateRow.name)
        .join(PromptTemplateRow, PromptTemplateRow.id == TemplateVersionRow.template_id)
        .where(TemplateVersionRow.id == version_id, visible_to(PromptTemplateRow, viewer))
    ).first()
    return None if found is None else _version(found[0], found[1])


def _owner_is(column: Any, owner: str | None) -> Any:
    return column.is_(None) if owner is None else column == owner


def _scope(model: Any, owner: str | None, viewer: Principal | None) -> Any:
    """Rows a listing shows: what ``viewer`` may see (hosted), else ``owner``'s own."""
    return visible_to(model, viewer) if viewer is not None else _owner_is(model.owner, owner)


def save_dataset(session: Session, name: str, dataset: Dataset, owner: str | None = None) -> int:
    """Store ``dataset`` under ``name``; returns its id."""
    row = DatasetRow(
        name=name.strip() or "dataset",
        owner=owner,
        columns_json=list(dataset.columns),
        rows_json=[dict(r) for r in dataset.rows],
        row_count=len(dataset.rows),
        created_utc=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row.id


def get_dataset(
    session: Session, dataset_id: int, *, viewer: Principal | None = None
) -> tuple[str, Dataset] | None:
    """A saved dataset's name and content, or ``None`` (also when ``viewer`` may not see it)."""
    row = session.get(DatasetRow, dataset_id)
    if row is None or not can_view(row, viewer):
        return None
    return row.name, Dataset(tuple(row.columns_json), tuple(row.rows_json))


def list_datasets(
    session: Session, owner: str | None = None, *, viewer: Principal | None = None
) -> list[tuple[int, str, int]]:
    """``(id, name, row count)`` of every saved dataset, newest first.

    With a ``viewer`` (hosted mode): every dataset they may see, whoever owns it.
    """
    query = sa.select(DatasetRow.id, DatasetRow.name, DatasetRow.row_count).where(
        _scope(DatasetRow, owner, viewer)
    )
    return [(i, n, c) for i, n, c in session.execute(query.order_by(DatasetRow.id.desc()))]


def create_batch(
    session: Session,
    *,
    title: str,
    spec: dict[str, Any],
    cells: Iterable[CellKey],
    dataset_id: int | None = None,
    budget_tokens: int | None = None,
    owner: str | None = None,
) -> int:
    """Store a batch and one ``pending`` row per cell; returns the batch id."""
    now = datetime.now(UTC)
    batch = BatchRow(
        title=title,
        owner=owner,
        dataset_id=dataset_id,
        status="pending",
        spec_json=spec,
        budget_tokens=budget_tokens,
        created_utc=now,
        updated_utc=now,
    )
    session.add(batch)
    session.flush()
    # Into the table, not through the ORM's bulk insert: a 2,000-cell plan is on an eval's
    # way to its first request, and the ORM's bookkeeping per row took most of its time.
    session.execute(
        sa.insert(cast(sa.Table, BatchCellRow.__table__)),
        [
            {
                "batch_id": batch.id,
                "template_version_id": c.template_version_id,
                "row_index": c.row_index,
                "provider": c.provider,
                "model": c.model,
                "status": "pending",
                "attempts": 0,
                "updated_utc": now,
            }
            for c in cells
        ],
    )
    return batch.id


def get_batch(
    session: Session, batch_id: int, *, viewer: Principal | None = None
) -> BatchRow | None:
    """The batch row (status, spec, budget), or ``None`` (also when ``viewer`` may not see it)."""
    batch = session.get(BatchRow, batch_id)
    return batch if batch is not None and can_view(batch, viewer) else None


def set_batch_status(
    session: Session,
    batch_id: int,
    status: str,
    *,
    writer: str | None = None,
    execution: str | None = None,
    message: str | None = None,
) -> None:
    """Change a batch's status (and its finish time for a final one).

    ``writer`` (``host:pid:token``) claims the batch for the process that runs it now;
    ``execution`` (``in_process`` or ``worker``) records where it runs from now on, and
    its heartbeat starts afresh. ``message`` says why, for whoever shows the batch (every
    status change replaces it; ``None`` clears it).
    """
    values = _status_values(status, message)
    if writer is not None:
        values["writer"] = writer
    if execution is not None:
        values.update(execution=execution, heartbeat_utc=values["updated_utc"])
    session.execute(sa.update(BatchRow).where(BatchRow.id == batch_id).values(values))


def transition_batch(
    session: Session,
    batch_id: int,
    status: str,
    *,
    only_from: Sequence[str],
    where: Sequence[sa.ColumnElement[bool]] = (),
    message: str | None = None,
) -> bool:
    """Change a batch's status only if it is one of ``only_from`` now (and ``where`` holds).

    Returns whether it changed. The check and the change are one statement, so of several
    processes racing for the same transition exactly one wins. ``message``: as for
    :func:`set_batch_status`.
    """
    changed = session.execute(
        sa.update(BatchRow)
        .where(BatchRow.id == batch_id, BatchRow.status.in_(only_from), *where)
        .values(_status_values(status, message))
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(changed, "rowcount", 0))


def _status_values(status: str, message: str | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    finished = now if status in ("completed", "cancelled") else None
    return {
        "status": status,
        "status_message": message,
        "updated_utc": now,
        "finished_utc": finished,
    }


def set_batch_budget(session: Session, batch_id: int, budget_tokens: int | None) -> None:
    """Change the budget cap of a batch (``None``: no cap); a resumed job uses the new one."""
    session.execute(
        sa.update(BatchRow)
        .where(BatchRow.id == batch_id)
        .values(budget_tokens=budget_tokens, updated_utc=datetime.now(UTC))
    )


def models_to_do(session: Session, batch_id: int) -> list[str]:
    """The model of each cell of a batch that is not completed: one entry per request a
    run of it will make, for its estimate. A single column, not :func:`batch_cells`: the
    estimate is on an eval's way to its first request."""
    query = sa.select(BatchCellRow.model).where(
        BatchCellRow.batch_id == batch_id, BatchCellRow.status != "completed"
    )
    return list(session.scalars(query))


def batch_cells(session: Session, batch_id: int, *, with_content: bool = True) -> list[CellState]:
    """Every cell of a batch in matrix order, with its result's figures and answer text.

    ``with_content=False`` leaves every ``content`` empty: the matrix, pass rates and
    progress need only the marks and figures, not 2,000 answers' text.
    """
    # Columns, not ORM objects: a 2,000-cell batch loads several times faster.
    query = (
        sa.select(
            BatchCellRow.id,
            BatchCellRow.template_version_id,
            BatchCellRow.row_index,
            BatchCellRow.provider,
            BatchCellRow.model,
            BatchCellRow.status,
            BatchCellRow.attempts,
            BatchCellRow.result_id,
            BatchCellRow.passed,
            BatchCellRow.assertions_json,
            BatchCellRow.error_message,
            Result.content if with_content else sa.null(),
            Result.latency_ms,
            Result.tokens_used,
            Result.cached,
            Result.truncated,
        )
        .outerjoin(Result, Result.id == BatchCellRow.result_id)
        .where(BatchCellRow.batch_id == batch_id)
        .order_by(*MATRIX_ORDER)
    )
    return [
        CellState(
            id=cell_id,
            key=CellKey(version_id, row_index, provider, model),
            status=status,
            attempts=attempts,
            result_id=result_id,
            passed=passed,
            assertions=tuple(assertions or ()),
            error_message=error_message,
            content=content or "",
            latency_ms=latency_ms,
            tokens_used=tokens_used,
            cached=bool(cached),
            truncated=bool(truncated),
        )
        for (
            cell_id,
            version_id,
            row_index,
            provider,
            model,
            status,
            attempts,
            result_id,
            passed,
            assertions,
            error_message,
            content,
            latency_ms,
            tokens_used,
            cached,
            truncated,
        ) in session.execute(query)
    ]


def update_cells(session: Session, cell_ids: Sequence[int], **values: Any) -> None:
    """Set ``values`` (status, result_id, passed, assertions_json…) on these cells."""
    if not cell_ids:
        return
    values["updated_utc"] = datetime.now(UTC)
    session.execute(sa.update(BatchCellRow).where(BatchCellRow.id.in_(cell_ids)).values(values))


def mark_running(session: Session, cell_ids: Sequence[int], attempts: int) -> None:
    """Mark these cells ``running``, their request sent for the ``attempts``-th time (what
    :func:`update_cells` would do, with a statement built once: a batch marks every row)."""
    if cell_ids:
        params = {"cell_ids": list(cell_ids), "new_attempts": attempts}
        session.execute(_MARK_RUNNING, {**params, "now": datetime.now(UTC)})


_CELLS = cast(sa.Table, BatchCellRow.__table__)
_MARK_RUNNING = (
    sa.update(_CELLS)
    .where(_CELLS.c.id.in_(sa.bindparam("cell_ids", expanding=True)))
    .values(
        status="running", attempts=sa.bindparam("new_attempts"), updated_utc=sa.bindparam("now")
    )
)


def list_batches(
    session: Session, owner: str | None = None, *, viewer: Principal | None = None
) -> list[tuple[int, str, str]]:
    """``(id, title, status)`` of every batch, newest first.

    With a ``viewer`` (hosted mode): every batch they may see, whoever owns it.
    """
    query = sa.select(BatchRow.id, BatchRow.title, BatchRow.status).where(
        _scope(BatchRow, owner, viewer)
    )
    return [(i, t, s) for i, t, s in session.execute(query.order_by(BatchRow.id.desc()))]


def all_cells(
    session: Session,
    *,
    viewer: Principal | None = None,
    batch_ids: Collection[int] | None = None,
) -> list[CellState]:
    """The cells of every batch ``viewer`` may see (for pass rates across batches), oldest
    batch first; ``viewer=None`` (the local user) sees every batch. ``batch_ids``: only
    those of these batches.

    Without the answers' text (``content`` is empty).
    """
    query = sa.select(BatchRow.id).where(visible_to(BatchRow, viewer))
    if batch_ids is not None:
        query = query.where(BatchRow.id.in_(batch_ids))
    return [
        cell
        for batch_id in session.scalars(query.order_by(BatchRow.id))
        for cell in batch_cells(session, batch_id, with_content=False)
    ]


def batch_assertions(
    session: Session, *, viewer: Principal | None = None
) -> list[tuple[int, list[dict[str, Any]]]]:
    """``(batch id, its assertions as stored in its spec)`` of every batch ``viewer`` may see,
    newest first."""
    query = (
        sa.select(BatchRow.id, BatchRow.spec_json)
        .where(visible_to(BatchRow, viewer))
        .order_by(BatchRow.id.desc())
    )
    return [(i, list(spec.get("assertions") or [])) for i, spec in session.execute(query)]


def version_label(viewer: Principal | None) -> sa.ColumnElement[str]:
    """SQL: a template version's label as ``viewer`` may read it (needs both tables joined).

    ``"name vN"``; ``"version #id"`` when ``viewer`` (hosted mode) may not see the template,
    e.g. its version was used by a batch shared with them: the template's name stays private,
    as on Evaluate, which shows such a batch's versions by id.
    """
    named = PromptTemplateRow.name + " v" + sa.cast(TemplateVersionRow.version, sa.String)
    if viewer is None:
        return named
    hidden = "version #" + sa.cast(TemplateVersionRow.id, sa.String)
    return sa.case((visible_to(PromptTemplateRow, viewer), named), else_=hidden)


def version_labels(session: Session, *, viewer: Principal | None = None) -> dict[int, str]:
    """Template version id → :func:`version_label` of every version ``viewer`` may know of.

    Those of templates they may see and those used by batches they may see; every version
    for ``viewer=None`` (the local user).
    """
    query = sa.select(TemplateVersionRow.id, version_label(viewer)).join(
        PromptTemplateRow, PromptTemplateRow.id == TemplateVersionRow.template_id
    )
    if viewer is not None:
        in_visible_batches = (
            sa.select(BatchCellRow.template_version_id)
            .join(BatchRow, BatchRow.id == BatchCellRow.batch_id)
            .where(visible_to(BatchRow, viewer))
        )
        query = query.where(
            sa.or_(
                visible_to(PromptTemplateRow, viewer),
                TemplateVersionRow.id.in_(in_visible_batches.correlate(None)),
            )
        )
    return {version_id: label for version_id, label in session.execute(query)}
