"""History queries: paging, filters, full-text search, one comparison, delete and annotate."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from playground.store import (
    HistoryFilter,
    Store,
    StoreRecorder,
    count_comparisons,
    count_results,
    delete_comparison,
    get_comparison,
    list_comparisons,
    list_results,
    update_comparison_meta,
)
from playground.store.models import Comparison, ComparisonTag, Result
from playground.store.stats import model_summary
from tests.store_fixtures import T0, Outcome, make_request, record_run, seed_comparison, seed_result


@pytest.fixture
def history(store: Store, recorder: StoreRecorder) -> dict[str, int]:
    """Three comparisons: an English and a Russian prompt, and one with a failure."""
    ids = {}
    ids["wal"], _ = record_run(
        recorder,
        make_request(("gpt-5", "claude-haiku-4.5"), "Explain SQLite journaling", tags=("db",)),
        [Outcome("Write-ahead logging keeps readers going."), Outcome("WAL appends pages.")],
    )
    ids["ru"], _ = record_run(
        recorder,
        make_request(("gpt-5",), "Объясни журнал предзаписи", owner="ana", tags=("db", "ru")),
        [Outcome("Журнал предзаписи хранит изменения.")],
    )
    ids["fail"], _ = record_run(
        recorder,
        make_request(("gpt-5", "deepseek-v3"), "Write a haiku about autumn"),
        [
            Outcome("Leaves fall, quiet pond."),
            Outcome("", status="failed", error_code="model_unavailable", error_message="Off."),
        ],
    )
    return ids


def _page(store: Store, flt: HistoryFilter | None = None, **kwargs: int) -> list[tuple[int, str]]:
    with store.session() as session:
        return [(e.comparison_id, e.result.model) for e in list_results(session, flt, **kwargs)]


def test_history_is_newest_first_and_pages(store: Store, history: dict[str, int]) -> None:
    everything = _page(store)
    assert everything == [
        (history["fail"], "deepseek-v3"),
        (history["fail"], "gpt-5"),
        (history["ru"], "gpt-5"),
        (history["wal"], "claude-haiku-4.5"),
        (history["wal"], "gpt-5"),
    ]
    assert _page(store, limit=2, offset=2) == everything[2:4]
    with store.session() as session:
        assert count_results(session) == 5


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (HistoryFilter(models=("gpt-5",)), {("wal", "gpt-5"), ("ru", "gpt-5"), ("fail", "gpt-5")}),
        (HistoryFilter(statuses=("failed",)), {("fail", "deepseek-v3")}),
        (HistoryFilter(tag="ru"), {("ru", "gpt-5")}),
        (HistoryFilter(owner="ana"), {("ru", "gpt-5")}),
        (HistoryFilter(search="journaling"), {("wal", "gpt-5"), ("wal", "claude-haiku-4.5")}),
        (
            HistoryFilter(search="write"),
            {("wal", "gpt-5"), ("fail", "gpt-5"), ("fail", "deepseek-v3")},
        ),
        (HistoryFilter(search="APPEND"), {("wal", "claude-haiku-4.5")}),
        (HistoryFilter(search="write-ahead readers"), {("wal", "gpt-5")}),
        (HistoryFilter(search="ЖУРНАЛ"), {("ru", "gpt-5")}),
        (HistoryFilter(search="изменен"), {("ru", "gpt-5")}),
        (HistoryFilter(search="nowhere"), set()),
        (HistoryFilter(search="  ?! "), None),
        (HistoryFilter(models=("gpt-5",), tag="db", search="журнал"), {("ru", "gpt-5")}),
    ],
)
def test_filters(
    store: Store, history: dict[str, int], flt: HistoryFilter, expected: set[tuple[str, str]] | None
) -> None:
    names = {v: k for k, v in history.items()}
    found = {(names[c], m) for c, m in _page(store, flt)}
    if expected is None:
        assert len(found) == 5
        return
    assert found == expected
    with store.session() as session:
        assert count_results(session, flt) == len(expected)


def test_date_range_is_half_open(store: Store) -> None:
    with store.session() as session, session.begin():
        for day in range(3):
            comparison = seed_comparison(session, created=T0 + timedelta(days=day))
            seed_result(session, comparison, f"model-{day}")
    flt = HistoryFilter(since=T0 + timedelta(days=1), until=T0 + timedelta(days=2))
    assert [m for _, m in _page(store, flt)] == ["model-1"]


def test_history_entry_json_has_the_compare_keys(store: Store, history: dict[str, int]) -> None:
    with store.session() as session:
        entry = list_results(session, HistoryFilter(statuses=("failed",)))[0]
    payload = entry.to_json_dict()
    assert list(payload) == [
        "model",
        "status",
        "content",
        "tokens_used",
        "balance_remaining",
        "latency_ms",
        "ttft_ms",
        "generation_id",
        "truncated",
        "error",
        "comparison_id",
        "created_at",
    ]
    assert payload["error"] == {"code": "model_unavailable", "message": "Off."}
    assert payload["comparison_id"] == history["fail"]
    assert payload["created_at"].endswith("+00:00")


def test_get_comparison_returns_results_in_target_order(
    store: Store, history: dict[str, int]
) -> None:
    with store.session() as session:
        stored = get_comparison(session, history["fail"])
        assert get_comparison(session, 10_000) is None
    assert stored is not None
    assert [(r.index, r.model, r.status) for r in stored.results] == [
        (0, "gpt-5", "completed"),
        (1, "deepseek-v3", "failed"),
    ]
    payload = stored.to_json_dict()
    assert payload["messages"] == [{"role": "user", "content": "Write a haiku about autumn"}]
    assert [r["model"] for r in payload["results"]] == ["gpt-5", "deepseek-v3"]


def test_soft_delete_hides_but_keeps_costs(store: Store, history: dict[str, int]) -> None:
    with store.session() as session, session.begin():
        assert delete_comparison(session, history["wal"])
        assert not delete_comparison(session, history["wal"])
        assert not delete_comparison(session, 10_000)
    with store.session() as session:
        assert get_comparison(session, history["wal"]) is None
        assert count_results(session) == 3
        assert count_results(session, HistoryFilter(search="journaling")) == 0
        assert model_summary(session)["results"].sum() == 5


def test_purge_removes_rows_and_search_entries(store: Store, history: dict[str, int]) -> None:
    with store.session() as session, session.begin():
        assert delete_comparison(session, history["wal"], purge=True)
    with store.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Result)) == 3
        assert session.scalar(sa.select(sa.func.count()).select_from(ComparisonTag)) == 2
        assert session.get(Comparison, history["wal"]) is None
        assert count_results(session, HistoryFilter(search="pages")) == 0
        assert count_results(session, HistoryFilter(search="haiku")) == 2


def test_update_meta_changes_title_tags_and_note(store: Store, history: dict[str, int]) -> None:
    comparison_id = history["ru"]
    with store.session() as session, session.begin():
        assert update_comparison_meta(session, comparison_id, title="Russian", tags=["ru", "wal "])
        assert not update_comparison_meta(session, 10_000, title="x")
    with store.session() as session, session.begin():
        assert update_comparison_meta(session, comparison_id, note="good answer")
    with store.session() as session:
        stored = get_comparison(session, comparison_id)
        assert count_results(session, HistoryFilter(tag="wal")) == 1
        assert count_results(session, HistoryFilter(tag="db")) == 2
    assert stored is not None
    assert (stored.request.title, stored.request.tags, stored.request.note) == (
        "Russian",
        ("ru", "wal"),
        "good answer",
    )


def test_search_pages_are_newest_first_and_complete(store: Store, recorder: StoreRecorder) -> None:
    expected = []
    for i in range(8):
        in_prompt = i % 2 == 0
        prompt = f"zebra question {i}" if in_prompt else f"question {i}"
        answers = [Outcome("plain answer"), Outcome("a zebra answer" if i % 3 == 0 else "plain")]
        comparison_id, ids = record_run(
            recorder, make_request(("gpt-5", "deepseek-v3"), prompt), answers
        )
        if i == 4:
            with store.session() as session, session.begin():
                delete_comparison(session, comparison_id)
            continue
        expected += [
            (rid, m)
            for rid, m in zip(ids, ("gpt-5", "deepseek-v3"), strict=True)
            if in_prompt or (m == "deepseek-v3" and i % 3 == 0)
        ]
    expected.sort(reverse=True)

    for flt in (
        HistoryFilter(search="zeb"),
        HistoryFilter(search="zebra", models=("deepseek-v3",)),
    ):
        wanted = [rid for rid, model in expected if not flt.models or model in flt.models]
        pages = []
        with store.session() as session:
            for offset in range(0, len(wanted) + 3, 3):
                pages += [
                    e.result.result_id for e in list_results(session, flt, limit=3, offset=offset)
                ]
            assert count_results(session, flt) == len(wanted)
        assert pages == wanted


def _comparisons(store: Store, flt: HistoryFilter | None = None, **kwargs: int) -> list[int]:
    with store.session() as session:
        return [c.id for c in list_comparisons(session, flt, **kwargs)]


def test_comparisons_are_listed_newest_first_with_all_their_results(
    store: Store, history: dict[str, int]
) -> None:
    assert _comparisons(store) == [history["fail"], history["ru"], history["wal"]]
    assert _comparisons(store, limit=1, offset=1) == [history["ru"]]
    with store.session() as session:
        assert count_comparisons(session) == 3
        failed = list_comparisons(session, HistoryFilter(statuses=("failed",)))
    assert [c.id for c in failed] == [history["fail"]]
    # The whole comparison comes back, not only the result that matched.
    assert [(r.model, r.status) for r in failed[0].results] == [
        ("gpt-5", "completed"),
        ("deepseek-v3", "failed"),
    ]
    assert failed[0].request.messages[-1].content == "Write a haiku about autumn"


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (HistoryFilter(models=("claude-haiku-4.5",)), ["wal"]),
        (HistoryFilter(models=("gpt-5",)), ["fail", "ru", "wal"]),
        (HistoryFilter(tag="db"), ["ru", "wal"]),
        (HistoryFilter(search="leaves"), ["fail"]),
        (HistoryFilter(search="журнал", tag="ru"), ["ru"]),
        (HistoryFilter(search="nowhere"), []),
    ],
)
def test_comparison_filters(
    store: Store, history: dict[str, int], flt: HistoryFilter, expected: list[str]
) -> None:
    assert _comparisons(store, flt) == [history[name] for name in expected]
    with store.session() as session:
        assert count_comparisons(session, flt) == len(expected)


def test_deleted_comparisons_are_not_listed(store: Store, history: dict[str, int]) -> None:
    with store.session() as session, session.begin():
        delete_comparison(session, history["ru"])
    assert _comparisons(store) == [history["fail"], history["wal"]]
    with store.session() as session:
        assert count_comparisons(session, HistoryFilter(tag="ru")) == 0
