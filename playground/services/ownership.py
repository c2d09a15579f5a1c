"""Who may create, see, start and steer evaluation work in hosted team mode.

Templates, datasets and batches belong to whoever created them; others see them only when
they are workspace-visible in one of their workspaces (:func:`~playground.access.visible_to`).
Every function takes the caller's session; ``viewer=None`` is the local single user, who
may do everything.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from playground.access.audit import record_event
from playground.errors import AccessDeniedError, InvalidRequestError
from playground.evaluation.plan import BatchEstimate, BatchSpec, estimate, plan_batch
from playground.principal import Principal, owns
from playground.services import hosted, runtime
from playground.store.eval_models import BatchRow
from playground.store.eval_repository import (
    batch_cells,
    get_batch,
    get_dataset,
    get_template_version,
)


def creator(viewer: Principal | None) -> str | None:
    """The owner of a template or dataset ``viewer`` creates (``None`` locally).

    Raises :class:`AccessDeniedError` for a viewer: they use shared work, not make it.
    """
    if viewer is None:
        return None
    if not viewer.can_run:
        raise AccessDeniedError(
            "Your role is viewer: you can use shared templates and datasets but not create "
            "them. Ask an admin for the member role."
        )
    return viewer.subject


def rater(typed: str, viewer: Principal | None) -> str:
    """Who a rating or vote is by: the signed-in user (hosted mode), else the typed name."""
    return typed if viewer is None else viewer.subject


def require_visible_inputs(session: Session, spec: BatchSpec, viewer: Principal | None) -> None:
    """The spec's template versions and dataset must be ones ``viewer`` may see.

    Someone else's private ones get the same :class:`InvalidRequestError` as a missing one,
    so an id never reveals that they exist.
    """
    if viewer is None:
        return
    for version_id in spec.template_version_ids:
        if get_template_version(session, version_id, viewer=viewer) is None:
            raise InvalidRequestError(f"No template version #{version_id}.")
    if get_dataset(session, spec.dataset_id, viewer=viewer) is None:
        raise InvalidRequestError(f"No dataset #{spec.dataset_id}.")


def owned_batch(session: Session, batch_id: int, viewer: Principal | None) -> BatchRow:
    """The batch ``viewer`` may resume, pause or cancel: their own (anyone's locally).

    :class:`InvalidRequestError` when it is unknown or hidden from them,
    :class:`AccessDeniedError` when they can only look at it.
    """
    batch = get_batch(session, batch_id, viewer=viewer)
    if batch is None:
        raise InvalidRequestError(f"No batch #{batch_id}.")
    if not owns(batch.owner, viewer):
        raise AccessDeniedError("Only the batch's owner can resume, pause or cancel it.")
    return batch


def _check_limits(
    session: Session, viewer: Principal, plan: BatchEstimate, concurrency: int
) -> None:
    # A batch sends its requests over minutes, at most `concurrency` at once: only that
    # first wave counts against the per-minute request rate; the tokens count in full.
    hosted.check_limits(
        session, viewer, requests=min(plan.requests, concurrency), estimated_tokens=plan.tokens
    )


def plan_owned_batch(
    session: Session, spec: BatchSpec, viewer: Principal, plan: BatchEstimate
) -> int:
    """Store ``spec`` as ``viewer``'s batch if ``plan`` fits their limits; audited.

    Raises ``AccessDeniedError`` (viewers) or ``SpendingLimitError`` before anything is
    stored. Returns the batch id.
    """
    _check_limits(session, viewer, plan, spec.concurrency)
    batch_id = plan_batch(session, spec, owner=viewer.subject)
    record_event(
        session,
        viewer.subject,
        "batch.start",
        f"batch:{batch_id}",
        {
            "models": [t.model for t in spec.targets],
            "requests": plan.requests,
            "estimated_tokens": plan.tokens,
        },
    )
    return batch_id


def check_resume(session: Session, batch_id: int, viewer: Principal) -> None:
    """Allow ``viewer`` to resume their batch if its missing answers fit their limits; audited."""
    batch = owned_batch(session, batch_id, viewer)
    missing = [c.key.model for c in batch_cells(session, batch_id) if c.status != "completed"]
    plan = estimate(missing, runtime.get_catalog().cost_of)
    _check_limits(session, viewer, plan, BatchSpec.from_json(batch.spec_json).concurrency)
    record_event(
        session,
        viewer.subject,
        "batch.resume",
        f"batch:{batch_id}",
        {"requests": plan.requests, "estimated_tokens": plan.tokens},
    )
