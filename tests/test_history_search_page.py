"""A History search page comes from the newest matching answers, read in growing steps,
with a count that stops at its cap: the same entries and order as grouping every match."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
import sqlalchemy as sa

from playground.principal import Principal
from playground.store import HistoryFilter, Store, repository
from playground.store.eval_models import BatchCellRow
from playground.store.repository import (
    BatchEntry,
    ListEntry,
    count_history_entries,
    history_entries,
)
from tests.evaluation_fixtures import plan
from tests.store_fixtures import T0, seed_comparison, seed_result

ANA = Principal(user_id=1, subject="ana", display_name="Ana", role="member")


def _seed(store: Store) -> None:
    """Sixteen comparisons ten minutes apart, written in time order (answers' ids grow
    with their time): "zebu" in some prompts and some answers, owned by ana or bob, two
    answers each at most; four of them a batch's rows, one deleted."""
    batch_id = plan(store, ["gpt-5-nano"], rows=4)
    with store.session() as session, session.begin():
        cells = list(
            session.scalars(
                sa.select(BatchCellRow)
                .where(BatchCellRow.batch_id == batch_id)
                .order_by(BatchCellRow.row_index)
            )
        )
        for i in range(16):
            created = T0 + timedelta(minutes=10 * i)
            in_batch = i % 4 == 1
            comparison = seed_comparison(
                session,
                created=created,
                prompt=f"zebu question {i}" if i % 5 == 0 else f"question {i}",
                owner="ana" if i % 3 else "bob",
                batch_id=batch_id if in_batch else None,
            )
            models = ("gpt-5-nano",) if in_batch else ("gpt-5", "deepseek-v3")[: 1 + i % 2]
            for m, model in enumerate(models):
                matches = (i + m) % 3 != 2
                result = seed_result(
                    session,
                    comparison,
                    model,
                    created=created + timedelta(minutes=1 + m),
                    content=f"a zebu answer {i}" if matches else f"a plain answer {i}",
                )
                if in_batch:
                    cells.pop(0).result_id = result.id
            if i == 7:
                comparison.deleted_utc = created


def _exhaustive(store: Store, flt: HistoryFilter, batches: bool) -> list[int]:
    """Every matching entry's key in page order, from grouping every match."""
    with store.session() as session:
        query, group, latest = repository._entry_groups(session, flt, batches)
        return [int(k) for k, _ in session.execute(query.order_by(latest.desc(), group.desc()))]


def _keys(entries: Sequence[ListEntry]) -> list[int]:
    return [e.batch_id if isinstance(e, BatchEntry) else -e.id for e in entries]


FILTERS = [
    HistoryFilter(search="zebu"),
    HistoryFilter(search="zebu question"),
    HistoryFilter(search="zebu", viewer=ANA),
    HistoryFilter(search="zebu", models=("gpt-5",)),
]


@pytest.mark.parametrize("step", [1, 2, 200])
def test_a_search_page_equals_grouping_every_match(
    store: Store, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    monkeypatch.setattr(repository, "_SEARCH_STEP", step)
    _seed(store)
    for flt in FILTERS:
        for batches in (True, False):
            expected = _exhaustive(store, flt, batches)
            assert expected, flt
            with store.session() as session:
                assert count_history_entries(session, flt, batches=batches) == len(expected)
                for limit in (1, 2, 5, 20):
                    for offset in range(0, len(expected) + 2, 3):
                        page = history_entries(
                            session, flt, limit=limit, offset=offset, batches=batches
                        )
                        wanted = expected[offset : offset + limit]
                        assert _keys(page.entries) == wanted, (flt, batches, limit, offset)
                        assert (page.total, page.more) == (len(expected), False)
                        listed = repository.list_history_entries(
                            session, flt, limit, offset, batches=batches
                        )
                        assert _keys(listed) == wanted


def test_a_hosted_viewer_finds_only_what_they_may_see(store: Store) -> None:
    _seed(store)
    with store.session() as session:
        page = history_entries(session, HistoryFilter(search="zebu", viewer=ANA), limit=50)
        owners = {
            session.scalar(sa.text("SELECT owner FROM comparisons WHERE id = :i"), {"i": -k})
            for k in _keys(page.entries)
            if k < 0
        }
    assert owners == {"ana"}


# Small steps: a step that reads every match knows the count, whatever the cap.
@pytest.mark.parametrize("step", [1, 3])
def test_the_search_count_stops_at_the_cap(
    store: Store, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    monkeypatch.setattr(repository, "_SEARCH_STEP", step)
    _seed(store)
    flt = HistoryFilter(search="zebu")
    expected = _exhaustive(store, flt, True)
    with store.session() as session:
        for cap in (1, 2, 4):
            page = history_entries(session, flt, limit=1, count_up_to=cap)
            assert _keys(page.entries) == expected[:1]
            assert (page.total, page.more) == (cap, True), cap
        # A page past the cap: counted at least up to it (exactly, if the walk read all).
        deep = history_entries(session, flt, limit=2, offset=5, count_up_to=2)
        assert _keys(deep.entries) == expected[5:7]
        assert deep.total >= 7 and (deep.more or deep.total == len(expected))
        whole = history_entries(session, flt, limit=1, count_up_to=100)
        assert (whole.total, whole.more) == (len(expected), False)
