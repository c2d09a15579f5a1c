"""The History page's entries read newest first with a count that stops early: the same
entries and order as counting every match, whatever the page, filter or cap."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from playground.presenters.history import page_caption
from playground.principal import Principal
from playground.store import HistoryFilter, Store, open_store, repository
from playground.store.eval_models import BatchCellRow, BatchRow
from playground.store.history_rows import AnswerMark, ComparisonRow
from playground.store.models import ComparisonTag
from playground.store.repository import (
    BatchEntry,
    count_history_entries,
    history_entries,
    list_history_entries,
)
from tests.evaluation_fixtures import plan
from tests.store_fixtures import (
    T0,
    postgres_schema_url,
    results_plan,
    seed_comparison,
    seed_result,
    statements_of,
)

DAY = timedelta(days=1)


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
            row = seed_comparison(
                session, created=T0 + timedelta(hours=hours), prompt="row", batch_id=batch_id
            )
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


@pytest.mark.parametrize("chunk", [1, 2, 3])
def test_a_walk_in_steps_of_any_size_finds_the_same_pages(
    store: Store, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    # Steps smaller than the answers of one comparison, or than a page: the walk goes on
    # from where the last step ended, answers of the same time included.
    monkeypatch.setattr(repository, "_WALK_CHUNK", chunk)
    ids, batch_id = _seed(store)
    cases = {
        HistoryFilter(): [batch_id, ids["early"], ids["late"], ids["old"]],
        HistoryFilter(models=("gpt-5",)): [ids["early"], ids["late"], ids["old"]],
    }
    with store.session() as session:
        for flt, expected in cases.items():
            for limit in (1, 2, 3, 4):
                for offset in range(5):
                    page = history_entries(session, flt, limit=limit, offset=offset)
                    assert _keys(page.entries) == expected[offset : offset + limit], (flt, limit)
                    assert (page.total, page.more) == (len(expected), False)


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


def test_a_batch_entry_sums_up_the_answers_of_its_matching_comparisons(store: Store) -> None:
    batch_id = plan(store, ["gpt-5-nano", "gpt-5"], rows=4)
    # Four rows of the batch: two models each, one answer failed in rows 1 and 3, a
    # price on most answers; row 4 was deleted. Then a comparison of Run's own.
    rows = [
        (("gpt-5", "completed", 3), ("gpt-5-nano", "failed", None)),
        (("gpt-5", "completed", 5), ("gpt-5-nano", "completed", 1)),
        (("gpt-5-nano", "completed", 2), ("gpt-5", "failed", 4)),
        (("gpt-5", "completed", 9), ("gpt-5-nano", "completed", 9)),
    ]
    with store.session() as session, session.begin():
        for hour, answers in enumerate(rows):
            row = seed_comparison(
                session, created=T0 + timedelta(hours=hour), prompt="row", batch_id=batch_id
            )
            for model, status, price in answers:
                seed_result(session, row, model, status=status).price_tokens = price
            if hour == 3:
                row.deleted_utc = T0
        own = seed_comparison(session, created=T0 + timedelta(hours=9), prompt="own")
        seed_result(session, own, "gpt-5")
        title = session.scalar(sa.select(BatchRow.title).where(BatchRow.id == batch_id))
    with store.session() as session:
        every = history_entries(session).entries
        # Only rows with a failed gpt-5 answer match: row 3, with both of its answers.
        failed = history_entries(
            session, HistoryFilter(models=("gpt-5",), statuses=("failed",))
        ).entries
    assert [type(e).__name__ for e in every] == ["ComparisonRow", "BatchEntry"]
    assert every[1] == BatchEntry(
        batch_id=batch_id,
        title=title,
        latest_at=every[1].latest_at,
        comparisons=3,
        models=(("elumenta", "gpt-5"), ("elumenta", "gpt-5-nano")),
        answers=6,
        not_completed=2,
        cost=15,
    )
    assert every[1].latest_at == T0 + timedelta(hours=2)
    assert failed == [
        BatchEntry(
            batch_id=batch_id,
            title=title,
            latest_at=T0 + timedelta(hours=2),
            comparisons=1,
            models=(("elumenta", "gpt-5-nano"), ("elumenta", "gpt-5")),
            answers=2,
            not_completed=1,
            cost=6,
        )
    ]


def test_each_entry_carries_its_own_tags_in_tag_order(store: Store) -> None:
    ids, _ = _seed(store)
    with store.session() as session, session.begin():
        for name, tags in (("early", ["zeta", "Alpha", "beta"]), ("old", ["ops"])):
            session.add_all(ComparisonTag(comparison_id=ids[name], tag=t) for t in tags)
    with store.session() as session:
        entries = history_entries(session, HistoryFilter(models=("gpt-5",))).entries
    tags = {getattr(e, "id", None): list(e.tags) for e in entries}
    assert tags == {ids["early"]: ["Alpha", "beta", "zeta"], ids["late"]: [], ids["old"]: ["ops"]}


def test_a_page_reads_what_the_list_shows_and_no_answer_text(store: Store) -> None:
    """A page of the list reads each answer's model, status marks and cost, and of the
    comparison its title, tags and last turn: not the answers' text, parameters or
    timings, which only an opened comparison shows."""
    secret = "ANSWER-TEXT " * 500
    with store.session() as session, session.begin():
        talk = seed_comparison(session, created=T0, prompt="first turn")
        talk.messages_json = [
            {"role": "user", "content": "first turn"},
            {"role": "assistant", "content": "a reply"},
            {"role": "user", "content": "the last turn"},
        ]
        talk.title = "Chat"
        session.add(ComparisonTag(comparison_id=talk.id, tag="db"))
        seed_result(session, talk, "gpt-5", content=secret, tokens_used=3)
        seed_result(session, talk, "deepseek-v3", status="failed", content=secret)
        cut = seed_result(session, talk, "gpt-5-nano", content=secret, cached=True)
        cut.truncated, cut.price_tokens = True, 4
        talk_id = talk.id
    with statements_of(store) as seen, store.session() as session:
        (row,) = history_entries(session, HistoryFilter(), count_up_to=0).entries
    assert row == ComparisonRow(
        id=talk_id,
        created_at=row.created_at,
        title="Chat",
        prompt="the last turn",
        tags=("db",),
        answers=(
            AnswerMark("elumenta", "gpt-5", "completed", False, False, 3),
            AnswerMark("elumenta", "deepseek-v3", "failed", False, False, None),
            AnswerMark("elumenta", "gpt-5-nano", "completed", True, True, 4),
        ),
    )
    assert row.created_at.replace(tzinfo=T0.tzinfo) == T0
    assert row.cost == 7
    read = "\n".join(statement for statement, _ in seen)
    for column in ("content", "params_json", "started_utc", "finished_utc", "latency_ms"):
        assert f"results.{column}" not in read, read
    assert "comparisons.system_prompt" not in read, read


def test_a_search_page_carries_the_texts_where_the_words_matched(store: Store) -> None:
    with store.session() as session, session.begin():
        found = seed_comparison(session, prompt="Tell me about journaling")
        seed_result(session, found, "gpt-5", content="Checkpoints move the WAL into the file.")
    with store.session() as session:
        (row,) = history_entries(session, HistoryFilter(search="checkpoints")).entries
    assert isinstance(row, ComparisonRow)
    assert row.texts == ("", "Tell me about journaling", "Checkpoints move the WAL into the file.")


def test_the_walk_and_the_count_read_only_the_time_ordered_indexes(store: Store) -> None:
    _seed(store)
    filters = [
        HistoryFilter(),
        HistoryFilter(models=("gpt-5",)),
        HistoryFilter(statuses=("completed",)),
        HistoryFilter(models=("gpt-5",), statuses=("completed",), since=T0, until=T0 + DAY),
    ]
    if store.backend == "postgresql":
        # Which index PostgreSQL's planner picks for a filter follows its statistics of
        # the table, which these few rows don't represent: only the unfiltered walk and
        # count (one index fits) are checked there; SQLite's planner follows the indexes.
        filters = filters[:1]
    for flt in filters:
        with statements_of(store) as seen, store.session() as session:
            # A cap below the matches: the walk alone would not know the count.
            history_entries(session, flt, limit=1, count_up_to=1)
        walk_and_count = [
            (statement, parameters)
            for statement, parameters in seen
            if "ORDER BY results.created_utc DESC" in statement
            or "SELECT DISTINCT results.comparison_id" in statement
        ]
        # Every step of the walk, and the count.
        assert sum("SELECT DISTINCT" in statement for statement, _ in walk_and_count) == 1, seen
        assert len(walk_and_count) >= 2, seen
        for statement, parameters in walk_and_count:
            plan = results_plan(store, statement, parameters)
            covering = "USING COVERING INDEX ix_results_" in plan or (
                "Index Only Scan" in plan and "ix_results_" in plan
            )
            assert covering, f"{flt}: {statement}\n{plan}"


def test_the_caption_says_when_the_count_stopped_early() -> None:
    assert page_caption(0, 1, 1, more=False) == "Page 1 of 1 · 1 entry"
    assert page_caption(1, 5, 93, more=False) == "Page 2 of 5 · 93 entries"
    assert page_caption(0, 50, 1000, more=True) == "Page 1 of 50+ · 1,000+ entries"


def test_each_filter_shape_is_built_once_and_every_viewer_keeps_their_own(store: Store) -> None:
    with store.session() as session, session.begin():
        for hours in (0, 1):
            created = T0 + timedelta(hours=hours)
            mine = seed_comparison(session, owner="ana", prompt="ana's", created=created)
            seed_result(session, mine, "gpt-5")
            theirs = seed_comparison(session, owner="bob", prompt="bob's", created=created)
            seed_result(session, theirs, "deepseek-v3")
    ana, bob = (
        Principal(user_id=i, subject=name, display_name=name, role="member")
        for i, name in enumerate(("ana", "bob"), start=1)
    )
    run: list[list[object]] = []

    def record(_conn: Any, statement: object, *_: Any) -> None:
        run[-1].append(statement)

    sa.event.listen(store.engine, "before_execute", record)
    try:
        pages = {}
        for viewer, model in ((ana, "deepseek-v3"), (ana, "gpt-5"), (bob, "deepseek-v3")):
            run.append([])
            with statements_of(store) as seen, store.session() as session:
                flt = HistoryFilter(models=(model,), since=T0 - DAY, viewer=viewer)
                # A cap below the matches: the count runs too.
                page = history_entries(session, flt, limit=1, count_up_to=1)
                pages[viewer.subject, model] = _keys(page.entries)
            # The walk and the count apply the viewer's visibility themselves.
            walk_and_count = [
                (statement, parameters)
                for statement, parameters in seen
                if "walked" in statement or "SELECT DISTINCT results.comparison_id" in statement
            ]
            assert walk_and_count
            for statement, parameters in walk_and_count:
                values = parameters.values() if isinstance(parameters, dict) else parameters
                assert viewer.subject in values, statement
    finally:
        sa.event.remove(store.engine, "before_execute", record)
    assert pages == {
        ("ana", "deepseek-v3"): [],
        ("ana", "gpt-5"): [mine.id],
        ("bob", "deepseek-v3"): [theirs.id],
    }
    # Other values of the same filters, another viewer: the very statements of the first
    # page that found answers, only their bound values differ.
    assert [id(s) for s in run[2]] == [id(s) for s in run[1]]
    # The walk, the count, answers and comparisons (on PostgreSQL, after the setting that
    # keeps parallel workers out of the page's transaction).
    assert len(run[1]) == 4 + (store.backend == "postgresql")


def test_a_walk_that_read_every_match_needs_no_count(store: Store) -> None:
    _seed(store)
    cases = [(HistoryFilter(), True, 4), (HistoryFilter(), False, 3)]
    cases += [(HistoryFilter(models=("gpt-5",)), True, 3)]
    for flt, batches, total in cases:
        with statements_of(store) as seen, store.session() as session:
            page = history_entries(session, flt, batches=batches)
        assert (page.total, page.more) == (total, False)
        assert not [s for s, _ in seen if "SELECT DISTINCT results.comparison_id" in s], seen


def test_the_count_among_the_newest_answers_agrees_with_the_full_count(store: Store) -> None:
    # PostgreSQL first counts among the newest matching answers (one per comparison and
    # model, and an eighth more), then among four times as many, then over every match:
    # each decides only when it can, and every way gives the exact count.
    _seed(store)  # gpt-5 answers: "late" (5 h), "early" (1 h), "old" (a day before)
    with store.session() as session, session.begin():
        many = seed_comparison(session, created=T0 + timedelta(hours=6), prompt="many")
        for minutes in range(9):  # a request that named gpt-5 nine times: the newest nine
            seed_result(
                session, many, "gpt-5", created=many.created_utc + timedelta(minutes=minutes)
            )
    flt = HistoryFilter(models=("gpt-5",))  # 4 comparisons, 12 answers
    # Cap: (count, more), and how many counts PostgreSQL runs: 20 reads all 12 answers
    # at once; 10 reads 12 of 12 first (no more known), then all; 3 reads 4 (all "many"),
    # then all; 1 reads 2, then 8 (all "many"), then counts every match.
    cases = {20: ((4, False), 1), 10: ((4, False), 2), 3: ((3, True), 2), 1: ((1, True), 3)}
    with store.session() as session:
        for cap, (expected, statements) in cases.items():
            with statements_of(store) as seen:
                assert repository._count_entries(session, flt, True, cap) == expected, cap
            counts = [s for s, _ in seen if "DISTINCT" in s]
            assert len(counts) == (statements if store.backend == "postgresql" else 1), cap


@pytest.mark.postgres
def test_a_page_starts_no_parallel_workers_on_postgresql() -> None:
    # A batch's summary reads its comparisons' answers; PostgreSQL planned parallel
    # workers for it, whose start took longer than the statement itself.
    with postgres_schema_url() as url:
        store = open_store(url)
        try:
            _seed(store)
            with store.session() as session:
                history_entries(session, HistoryFilter(models=("gpt-5-nano",)))
                during = session.scalar(sa.text("SHOW max_parallel_workers_per_gather"))
            with store.session() as session:
                after = session.scalar(sa.text("SHOW max_parallel_workers_per_gather"))
        finally:
            store.close()
    assert during == "0"
    assert after != "0"  # the rest of the app keeps the server's setting


def test_a_batch_entry_sums_only_the_comparisons_its_viewer_may_see(store: Store) -> None:
    batch_id = plan(store, ["gpt-5"], rows=3)
    with store.session() as session, session.begin():
        for hour, owner in enumerate(("ana", "bob", "ana")):
            row = seed_comparison(
                session,
                created=T0 + timedelta(hours=hour),
                prompt="row",
                owner=owner,
                batch_id=batch_id,
            )
            seed_result(session, row, "gpt-5").price_tokens = 10**hour
    ana = Principal(user_id=1, subject="ana", display_name="ana", role="member")
    with store.session() as session:
        # Both ways of summing a batch up: the window over every answer, and the
        # filter's own index.
        for flt in (HistoryFilter(viewer=ana), HistoryFilter(models=("gpt-5",), viewer=ana)):
            (entry,) = history_entries(session, flt).entries
            assert isinstance(entry, BatchEntry)
            assert (entry.comparisons, entry.answers, entry.cost) == (2, 2, 101), flt
            assert entry.latest_at == T0 + timedelta(hours=2)
