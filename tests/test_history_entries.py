"""The History page's entries read newest first with a count that stops early: the same
entries and order as counting every match, whatever the page, filter or cap."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from playground.presenters.history import page_caption
from playground.store import HistoryFilter, Store
from playground.store.eval_models import BatchCellRow
from playground.store.repository import (
    count_history_entries,
    history_entries,
    list_history_entries,
)
from tests.evaluation_fixtures import plan
from tests.store_fixtures import T0, seed_comparison, seed_result


def _seed(store: Store) -> tuple[dict[str, int], int]:
    """Comparisons ``late`` (created first, answered 5 h later), ``early`` (created and
    answered 1 h after it), a batch of ``row1``/``row2`` (2 h and 3 h) and ``old`` (a day
    before, one gpt-5 answer that failed); returns their ids and the batch's."""
    batch_id = plan(store, ["gpt-5-nano"], rows=2)
    ids = {}
    with store.session() as session, session.begin():
        late = seed_comparison(session, created=T0, prompt="late")
        seed_result(session, late, "gpt-5", created=T0 + timedelta(hours=5))
        early = seed_comparison(session, created=T0 + timedelta(hours=1), prompt="early")
        seed_result(session, early, "gpt-5")
        seed_result(session, early, "deepseek-v3")
        cells = session.scalars(
            sa.select(BatchCellRow)
            .where(BatchCellRow.batch_id == batch_id)
            .order_by(BatchCellRow.row_index)
        ).all()
        for hours, cell in zip((2, 3), cells, strict=True):
            row = seed_comparison(session, created=T0 + timedelta(hours=hours), prompt="row")
            cell.result_id = seed_result(session, row, "gpt-5-nano").id
            ids[f"row{hours - 1}"] = row.id
        old = seed_comparison(session, created=T0 - timedelta(days=1), prompt="old")
        seed_result(session, old, "gpt-5", status="failed")
        ids |= {"late": late.id, "early": early.id, "old": old.id}
    return ids, batch_id


def _keys(entries: list[object]) -> list[object]:
    return [getattr(e, "batch_id", None) or getattr(e, "id", None) for e in entries]


def test_entries_are_ordered_by_their_newest_comparison_on_every_page(store: Store) -> None:
    ids, batch_id = _seed(store)
    # The batch's newest row (3 h), then "early" (1 h), then "late" (created at 0 h, though
    # answered last), then "old".
    expected = [batch_id, ids["early"], ids["late"], ids["old"]]
    with store.session() as session:
        assert count_history_entries(session) == 4
        for limit in (1, 2, 3, 4):
            for offset in range(5):
                page = history_entries(session, limit=limit, offset=offset)
                assert _keys(page.entries) == expected[offset : offset + limit]
                assert (page.total, page.more) == (4, False)
                assert (
                    _keys(list_history_entries(session, limit=limit, offset=offset))
                    == (expected[offset : offset + limit])
                )


def test_filters_and_hidden_batches_match_the_full_count(store: Store) -> None:
    ids, _ = _seed(store)
    cases = {
        HistoryFilter(models=("gpt-5",)): [ids["early"], ids["late"], ids["old"]],
        HistoryFilter(statuses=("failed",)): [ids["old"]],
        HistoryFilter(since=T0, until=T0 + timedelta(hours=2)): [ids["early"]],
        HistoryFilter(models=("claude-haiku-4.5",)): [],
    }
    with store.session() as session:
        for flt, expected in cases.items():
            page = history_entries(session, flt)
            assert _keys(page.entries) == expected
            assert page.total == count_history_entries(session, flt) == len(expected)
        hidden = history_entries(session, batches=False)
        assert _keys(hidden.entries) == [ids["early"], ids["late"], ids["old"]]
        assert hidden.total == count_history_entries(session, batches=False) == 3


def test_the_count_stops_at_the_cap_but_always_covers_the_page(store: Store) -> None:
    ids, batch_id = _seed(store)  # 4 entries of 5 comparisons
    with store.session() as session:
        first = history_entries(session, limit=1, count_up_to=2)
        assert (_keys(first.entries), first.total, first.more) == ([batch_id], 2, True)
        # The cap counts comparisons: 4 of them are read for the 4th page, a 5th matches.
        last = history_entries(session, limit=1, offset=3, count_up_to=2)
        assert (_keys(last.entries), last.total, last.more) == ([ids["old"]], 4, True)
        whole = history_entries(session, limit=1, offset=3, count_up_to=5)
        assert (_keys(whole.entries), whole.total, whole.more) == ([ids["old"]], 4, False)


def test_the_caption_says_when_the_count_stopped_early() -> None:
    assert page_caption(0, 1, 1, more=False) == "Page 1 of 1 · 1 entry"
    assert page_caption(1, 5, 93, more=False) == "Page 2 of 5 · 93 entries"
    assert page_caption(0, 50, 1000, more=True) == "Page 1 of 50+ · 1,000+ entries"
