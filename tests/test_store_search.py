"""Full-text search pages: PostgreSQL collects a rare word's matches through its GIN
indexes, walks newest first for a common one; the pages are the same either way."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa

from playground.principal import Principal
from playground.providers.base import GenerationParams
from playground.store import HistoryFilter, Store, list_results
from playground.store import filters as store_filters
from playground.store.filters import selective_matches
from playground.store.models import Comparison, Result
from tests.store_fixtures import T0, seed_comparison, seed_result

ANA = Principal(user_id=1, subject="ana", display_name="Ana", role="member")
MODELS = ("gpt-5", "deepseek-v3")


class Answer(NamedTuple):
    result_id: int
    model: str
    zebra_prompt: bool
    zebu_answer: bool
    owner: str


@pytest.fixture
def searchable(store: Store) -> list[Answer]:
    """Twelve comparisons of two answers each: "zebra" in some prompts, "zebu" in some
    answers, owned by ana or bob, one of ana's deleted. Returns every answer still listed."""
    listed = []
    with store.session() as session, session.begin():
        for i in range(12):
            zebra_prompt = i % 3 == 0
            owner = "ana" if i % 2 == 0 else "bob"
            comparison = seed_comparison(
                session,
                created=T0 + timedelta(minutes=i),
                prompt=f"zebra question {i}" if zebra_prompt else f"question {i}",
                owner=owner,
            )
            rows = []
            for m, model in enumerate(MODELS):
                zebu_answer = (i + m) % 4 == 0
                content = f"a zebu answer {i}" if zebu_answer else f"a plain answer {i}"
                result = seed_result(session, comparison, model, content=content)
                rows.append(Answer(result.id, model, zebra_prompt, zebu_answer, owner))
            if i == 6:
                comparison.deleted_utc = T0 + timedelta(days=1)
                continue
            listed += rows
    return listed


# SQLite's full-text index yields matches newest first: there is nothing to choose.
STORES_AND_STRATEGIES = [
    ("sqlite", "planner"),
    *(
        pytest.param("postgres", strategy, marks=pytest.mark.postgres)
        for strategy in ("planner", "collect", "walk", "collect, then walk")
    ),
]


@pytest.fixture
def strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How PostgreSQL finds the matches: as its estimate decides, or forced one way."""
    if request.param == "collect":
        monkeypatch.setattr(store_filters, "_collect_cap", lambda *_: 1_000)
    elif request.param == "walk":
        monkeypatch.setattr(store_filters, "_collect_cap", lambda *_: 0)
    elif request.param == "collect, then walk":
        # The estimate says "few", but more match than the collection reads: it falls back.
        monkeypatch.setattr(store_filters, "_collect_cap", lambda *_: 2)
        monkeypatch.setattr(store_filters, "_estimates", lambda *_: (0.0, 0.0))
    return str(request.param)


@pytest.mark.parametrize(("store_url", "strategy"), STORES_AND_STRATEGIES, indirect=True)
@pytest.mark.parametrize(
    ("flt", "wanted"),
    [
        (HistoryFilter(search="zeb"), lambda a: a.zebra_prompt or a.zebu_answer),
        (HistoryFilter(search="zebra"), lambda a: a.zebra_prompt),
        (
            HistoryFilter(search="zebu answer", models=("deepseek-v3",)),
            lambda a: a.zebu_answer and a.model == "deepseek-v3",
        ),
        (
            HistoryFilter(search="zeb", viewer=ANA),
            lambda a: (a.zebra_prompt or a.zebu_answer) and a.owner == "ana",
        ),
        (HistoryFilter(search="nowhere"), lambda a: False),
    ],
    ids=["prefix", "prompt word", "two words and a model", "viewer", "no match"],
)
def test_search_pages_are_the_same_however_matches_are_found(
    store: Store,
    searchable: list[Answer],
    strategy: str,
    flt: HistoryFilter,
    wanted: Callable[[Answer], bool],
) -> None:
    expected = sorted((a.result_id for a in searchable if wanted(a)), reverse=True)
    pages = []
    with store.session() as session:
        for offset in range(0, len(expected) + 3, 3):
            pages += [
                e.result.result_id for e in list_results(session, flt, limit=3, offset=offset)
            ]
        collected = selective_matches(session.connection(), flt, 3)
    assert pages == expected
    if strategy == "walk" or store.backend != "postgresql":
        assert collected is None
    elif strategy == "collect":
        assert collected == expected[:3]
    elif strategy == "collect, then walk":
        assert collected == (None if len(expected) > 2 else expected[:3])


@pytest.fixture
def analysed(store: Store) -> Store:
    """3,000 answers over 1,000 comparisons: a dozen common words in every answer, the
    word "okapi" in three of them; the tables ANALYZE'd, as autovacuum would."""
    common = " ".join(f"word{w}" for w in range(12))
    with store.session() as session, session.begin():
        session.execute(
            sa.insert(Comparison),
            [
                {
                    "id": c,
                    "created_utc": T0 + timedelta(minutes=c),
                    "title": "",
                    "system_prompt": "",
                    "messages_json": [{"role": "user", "content": f"prompt {c}"}],
                    "params_json": {},
                    "note": "",
                    "use_cache": False,
                    "prompt_text": f"prompt {c}",
                    "prompt_hash": f"hash-{c}",
                }
                for c in range(1, 1_001)
            ],
        )
        session.execute(
            sa.insert(Result),
            [
                {
                    "comparison_id": c,
                    "position": p,
                    "provider": "demo",
                    "model": f"model-{p}",
                    "params_json": GenerationParams().to_dict(),
                    "request_hash": f"{c}-{p}",
                    "status": "completed",
                    "content": f"{common} okapi"
                    if (c, p) in {(5, 0), (500, 1), (990, 2)}
                    else common,
                    "chars": 1,
                    "cached": False,
                    "created_utc": T0 + timedelta(minutes=c),
                    "started_utc": T0 + timedelta(minutes=c),
                    "finished_utc": T0 + timedelta(minutes=c, seconds=2),
                    "updated_utc": T0 + timedelta(minutes=c, seconds=2),
                }
                for c in range(1, 1_001)
                for p in range(3)
            ],
        )
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("ANALYZE comparisons, results")
    return store


@pytest.mark.parametrize(
    "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_rare_word_is_read_through_the_gin_index_not_by_parsing_answers(
    analysed: Store,
) -> None:
    # At millions of answers the planner guesses a rare word matches thousands of rows and
    # walks the answers newest first, parsing each; a high cost of random reads makes it
    # prefer that walk here too, on a small table.
    plans = []
    with analysed.session() as session, session.begin():
        session.execute(sa.text("SET LOCAL random_page_cost = 1000"))
        with _explaining(analysed.engine, plans):
            found = list_results(session, HistoryFilter(search="okapi"), limit=50)
    assert len(found) == 3
    nodes = [node for plan in plans for node in _nodes(plan)]
    parsed = [n for n in nodes if "to_tsvector" in n.get("Filter", "")]
    assert parsed == []
    assert "ix_results_content_fts" in {n.get("Index Name") for n in nodes}


class _explaining:
    """While open, every SELECT the engine runs is first EXPLAINed in the same
    transaction (so under the same settings), its plan appended to ``plans``."""

    def __init__(self, engine: sa.Engine, plans: list[dict[str, Any]]) -> None:
        self.engine, self.plans = engine, plans

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
            self.plans.append(cursor.fetchone()[0][0]["Plan"])

    def __enter__(self) -> None:
        sa.event.listen(self.engine, "before_cursor_execute", self._before)

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._before)


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)
