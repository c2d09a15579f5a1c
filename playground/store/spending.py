"""Tokens a provider spent, read from the history (what the demo balance is built from).

Kept apart from :mod:`playground.store.stats` so the command line and the workers read it
without importing pandas.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import sqlalchemy as sa

from playground.store.models import Result


def demo_spent_reader(engine: sa.Engine) -> Callable[[], int]:
    """What the one persisted demo balance is read from: the demo tokens recorded in the
    history at ``engine`` (``build_providers``' ``demo_spent``)."""
    return partial(provider_tokens_spent, engine, "demo")


def provider_tokens_spent(engine: sa.Engine, provider: str) -> int:
    """Billing tokens every non-cached answer of ``provider`` ever recorded spent (deleted
    comparisons included: their tokens were spent)."""
    with engine.connect() as connection:
        spent = connection.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Result.tokens_used), 0)).where(
                Result.cached.is_(False), Result.provider == provider
            )
        )
    return int(spent or 0)
