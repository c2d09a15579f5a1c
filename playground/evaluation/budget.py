"""A batch's budget cap: what is spent or reserved, and which claimed cells still fit.

Pure functions over the stored cells, so every process working on a batch (one app
process or several workers) counts the same way: a completed answer costs what it was
billed, plus its judging (or the judge's price until it is graded); an answer in flight
reserves its model's price plus the judge's, so judging always stays within the cap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import datetime

from playground.evaluation.assertions import is_judged, judge_cost
from playground.store.eval_claims import CellFigures, ClaimedCell

PriceOf = Callable[[str], int | None]


def committed_tokens(
    cells: Sequence[CellFigures],
    price_of: PriceOf,
    judge_price: int | None,
    stale_before: datetime,
) -> int:
    """Billing tokens spent or reserved by a batch's cells.

    Running cells whose heartbeat is older than ``stale_before`` reserve nothing: their
    process is gone and they are about to be claimed (and reserved) again.
    """
    total = 0
    for cell in cells:
        if cell.status == "completed":
            total += (cell.tokens_used or 0) + judge_cost(cell.assertions)
            if judge_price is not None and not is_judged(cell.assertions):
                total += judge_price
        elif cell.status == "running" and cell.heartbeat_utc and cell.heartbeat_utc >= stale_before:
            total += (price_of(cell.model) or 0) + (judge_price or 0)
    return total


def rows_of(cells: Sequence[ClaimedCell]) -> list[list[ClaimedCell]]:
    """Claimed cells grouped by (template version, dataset row), in claim order."""
    grouped = itertools.groupby(cells, key=lambda c: (c.version_id, c.row_index))
    return [list(group) for _, group in grouped]


def affordable(
    cells: Sequence[ClaimedCell], left: int, price_of: PriceOf, judge_price: int | None
) -> list[ClaimedCell]:
    """The leading whole rows of ``cells`` whose answers (and judging) fit in ``left`` tokens."""
    taken: list[ClaimedCell] = []
    for row in rows_of(cells):
        price = sum((price_of(c.model) or 0) + (judge_price or 0) for c in row)
        if price > left:
            break
        left -= price
        taken.extend(row)
    return taken
