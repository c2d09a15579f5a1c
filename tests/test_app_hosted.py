"""Hosted team mode through AppTest: each page shows and changes only what the user may.

Ana and Bob are members of the workspace Research; Cat is a member of no workspace; Vic is a
viewer in Research. Pages run directly with the principal in the session (see
:mod:`tests.hosted_fixtures`); the database is the app's SQLite file.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from playground.access import Identity, Principal
from playground.access.audit import list_events
from playground.access.spending import Spend, spend_of
from playground.datasets import parse_dataset
from playground.errors import (
    AccessDeniedError,
    InvalidRequestError,
    SignInError,
    SpendingLimitError,
)
from playground.evaluation.plan import BatchSpec
from playground.results import ModelTarget
from playground.services import compare, hosted, runtime
from playground.services import evaluate as evaluation
from playground.services import history as history_service
from playground.store.eval_models import BatchRow, DatasetRow, PromptTemplateRow, RatingRow
from playground.store.hosted_models import UserRow
from playground.store.models import Comparison, Result
from tests.app_harness import click, open_blocks, open_tab, texts
from tests.hosted_fixtures import (
    PAGE_TIMEOUT_S,
    PROXY_SECRET,
    ROOT,
    make_workspace,
    open_page_as,
    refreshed,
    set_daily_budget,
    signed_in,
)
from tests.store_fixtures import Outcome, make_request
from tests.test_app_history import open_row, prompts, seed, table
from ui.auth import PRINCIPAL_KEY

pytestmark = pytest.mark.usefixtures("app_env", "migrated_app_database")

SECRET = "Ana's secret launch plan"
NOT_AVAILABLE = "is not available: it may have been deleted, or it was not shared with you."
GONE = "This comparison no longer exists; it may have been deleted."


@dataclass(frozen=True)
class Team:
    """The people of these tests, as their next page run sees them."""

    ana: Principal
    bob: Principal
    cat: Principal
    vic: Principal
    research: int


@pytest.fixture
def migrated_app_database(app_env: Path, migrated_sqlite_file: Path) -> None:
    """The app's SQLite file starts as a copy of a migrated one (no migration per test)."""
    database = Path(str(make_url(runtime.get_settings().resolved_database_url).database))
    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(migrated_sqlite_file, database)


@pytest.fixture
def team() -> Team:
    store = runtime.get_store()
    ana, bob, cat = (signed_in(store, f"{n}@example.org") for n in ("ana", "bob", "cat"))
    vic = signed_in(store, "vic@example.org", "viewer")
    research = make_workspace(store, "Research", [ana, bob, vic])
    ana, bob, cat, vic = (refreshed(store, p) for p in (ana, bob, cat, vic))
    return Team(ana, bob, cat, vic, research)


def seed_as(person: Principal, prompt: str, tags: tuple[str, ...] = ()) -> int:
    """A finished two-model comparison owned by ``person``."""
    return seed(prompt, owner=person.subject, tags=tags)


def open_history(person: Principal, comparison_id: int | None = None) -> AppTest:
    """The History page as ``person``: the list, or one comparison opened."""
    at = open_page_as("pages/history.py", person)
    if comparison_id is not None:
        at.session_state["history.open"] = comparison_id
        at.run()
    return at


def share_with(at: AppTest, comparison_id: int, workspace_id: int | None) -> AppTest:
    """In an opened comparison's Share box: pick who may see it and save."""
    at.selectbox(key=f"history.share.{comparison_id}").set_value(workspace_id)
    return click(at.run(), "Save sharing")


def captions(at: AppTest) -> list[str]:
    """The captions as the user reads them (markdown escapes of names removed)."""
    return [re.sub(r"\\(.)", r"\1", text) for text in texts(at, "caption")]


def share_link(at: AppTest) -> str:
    """The share link the opened comparison's Share box shows."""
    links = [c.value for c in at.code if "token=" in c.value]
    assert len(links) == 1, [c.value for c in at.code]
    return links[0]


# --- History: lists, search, tags and exports show only what the viewer may see --------


def test_someone_elses_private_comparison_is_in_no_list_search_tag_or_export(
    team: Team, downloads: dict[str, Callable[[], str]]
) -> None:
    seed_as(team.ana, SECRET, tags=("plan",))
    seed_as(team.bob, "Bob's notes on caching", tags=("plan",))

    at = open_history(team.bob)
    assert not at.exception
    assert prompts(at) == ["Bob's notes on caching"]
    at.text_input(key="history.search").set_value("secret").run()
    assert prompts(at) == []
    assert "Nothing matches these filters." in texts(at, "info")
    at.text_input(key="history.search").set_value("").run()
    at.text_input(key="history.tag").set_value("plan").run()
    assert prompts(at) == ["Bob's notes on caching"]
    exported = json.loads(downloads["Export JSON"]())
    assert {r["owner"] for r in exported} == {"bob@example.org"}
    rows = list(csv.DictReader(io.StringIO(downloads["Export CSV"]())))
    assert not [r for r in rows if "secret" in json.dumps(r)]

    assert prompts(open_history(team.ana)) == [SECRET]


def test_an_empty_list_for_a_new_user_says_how_to_fill_it(team: Team) -> None:
    seed_as(team.ana, SECRET)
    at = open_history(team.cat)
    assert table(at) == []
    assert any("No comparisons yet" in t for t in texts(at, "info"))


def test_a_hidden_comparison_reads_exactly_like_an_unknown_one(team: Team) -> None:
    hidden = seed_as(team.ana, SECRET)
    unknown = hidden + 1000

    def warnings_on_compare(ref: int) -> list[str]:
        at = open_page_as("pages/compare.py", team.bob, {"comparison": str(ref)})
        assert not at.exception
        return [w.replace(repr(str(ref)), "ID") for w in texts(at, "warning")]

    assert warnings_on_compare(hidden) == warnings_on_compare(unknown)
    assert warnings_on_compare(hidden) == [f"Comparison ID {NOT_AVAILABLE}"]
    assert texts(open_history(team.bob, hidden), "warning") == [GONE]
    assert texts(open_history(team.bob, unknown), "warning") == [GONE]
    for person in (team.bob, team.vic):  # in Ana's workspace, but she did not share it
        assert history_service.stored_comparison(hidden, person) is None
    with pytest.raises(InvalidRequestError, match="no longer exists"):
        history_service.annotate_comparison(hidden, title="mine", tags=[], note="", viewer=team.bob)


# --- History: sharing with a workspace, read-only for others ------------------------------


def test_shared_with_a_workspace_members_see_it_read_only(team: Team) -> None:
    comparison_id = seed_as(team.ana, SECRET)
    at = open_history(team.ana, comparison_id)
    assert {"Delete", "Save", "Create share link", "Save sharing"} <= {b.label for b in at.button}
    assert at.selectbox(key=f"history.share.{comparison_id}").options == [
        "Only me (private)",
        "Workspace Research",
    ]
    at = share_with(at, comparison_id, team.research)
    assert not at.exception
    stored = history_service.stored_comparison(comparison_id, team.ana)
    assert stored is not None
    assert (stored.visibility, stored.workspace_id) == ("workspace", team.research)

    at = open_history(team.bob)
    assert prompts(at) == [SECRET]
    at = open_row(at, 0)
    assert not at.exception
    assert "Shared with you by ana@example.org: read-only." in captions(at)
    labels = {b.label for b in at.button}
    assert "Re-run" in labels and "Load into Compare" in labels
    assert not labels & {"Delete", "Save", "Save sharing", "Create share link"}
    assert not [b for b in at.button if b.label == "Re-run" and b.disabled]
    with pytest.raises(AccessDeniedError, match="Only the owner"):
        history_service.delete_stored_comparison(comparison_id, team.bob)

    assert prompts(open_history(team.cat)) == []  # not in Research


def test_a_viewer_sees_shared_work_but_cannot_rerun_it(team: Team) -> None:
    comparison_id = seed_as(team.ana, SECRET)
    history_service.set_sharing(
        comparison_id, team.ana, visibility="workspace", workspace_id=team.research, link=False
    )
    at = open_history(team.vic, comparison_id)
    assert not at.exception
    rerun = next(b for b in at.button if b.label == "Re-run")
    assert rerun.disabled
    assert "viewer" in (rerun.help or "")
    stored = history_service.stored_comparison(comparison_id, team.vic)
    assert stored is not None
    with pytest.raises(AccessDeniedError, match="viewer"):
        compare.start_compare(stored.request, runtime.connection_from(), team.vic)


def test_a_member_rerun_of_shared_work_is_their_own_run(team: Team) -> None:
    comparison_id = seed_as(team.ana, SECRET)
    history_service.set_sharing(
        comparison_id, team.ana, visibility="workspace", workspace_id=team.research, link=False
    )
    stored = history_service.stored_comparison(comparison_id, team.bob)
    assert stored is not None
    handle = compare.start_compare(stored.request, runtime.connection_from(), team.bob)
    handle.wait(10)
    rerun = history_service.stored_comparison(handle.comparison_id or 0, team.bob)
    assert rerun is not None and rerun.request.owner == "bob@example.org"
    assert history_service.stored_comparison(rerun.id, team.ana) is None  # Bob's, private


def test_the_answer_cache_never_hands_one_user_anothers_answer(team: Team) -> None:
    comparison_id = seed_as(team.ana, SECRET)
    connection = runtime.connection_from()

    def rerun_cached(person: Principal) -> list[bool]:
        stored = history_service.stored_comparison(comparison_id, team.ana)
        assert stored is not None
        request = replace(stored.request, use_cache=True)
        handle = compare.start_compare(request, connection, person)
        return [r.cached for r in handle.wait(10).results]

    assert rerun_cached(team.bob) == [False, False]
    assert rerun_cached(team.ana) == [True, True]


def test_a_batch_reuses_only_its_owners_cached_answers(team: Team) -> None:
    connection = runtime.connection_from()

    def cached_cells(person: Principal) -> list[bool]:
        version_id, dataset_id = _template_and_dataset(person)  # the same text for everyone
        job = evaluation.start_batch(_spec(version_id, dataset_id), connection, viewer=person)
        job.wait(30)
        return [c.cached for c in evaluation.cells(job.batch_id, viewer=person)]

    assert cached_cells(team.ana) == [False] * 4
    assert cached_cells(team.bob) == [False] * 4  # Ana's answers are not Bob's to reuse
    assert cached_cells(team.ana) == [True] * 4


# --- Share links -------------------------------------------------------------------------


def test_a_share_link_opens_for_whoever_holds_the_token_until_it_is_revoked(team: Team) -> None:
    comparison_id = seed_as(team.ana, SECRET)
    at = click(open_history(team.ana, comparison_id), "Create share link")
    link = share_link(at)
    token = link.split("token=", 1)[1]
    assert link.startswith(f"?comparison={comparison_id}&")

    at = open_page_as(
        "pages/compare.py", team.cat, {"comparison": str(comparison_id), "token": token}
    )
    assert not at.exception
    assert not texts(at, "warning")
    assert f"Answer of gpt-5 to {SECRET}" in texts(at, "markdown")
    assert prompts(open_history(team.cat)) == []  # a link is no membership

    wrong = open_page_as(
        "pages/compare.py", team.cat, {"comparison": str(comparison_id), "token": token[:-2] + "xx"}
    )
    assert texts(wrong, "warning") == [f"Comparison '{comparison_id}' {NOT_AVAILABLE}"]
    assert f"Answer of gpt-5 to {SECRET}" not in texts(wrong, "markdown")

    at = click(open_history(team.ana, comparison_id), "Revoke link")
    assert not [c for c in at.code if "token=" in c.value]
    again = open_page_as(
        "pages/compare.py", team.cat, {"comparison": str(comparison_id), "token": token}
    )
    assert texts(again, "warning") == [f"Comparison '{comparison_id}' {NOT_AVAILABLE}"]
    with runtime.get_store().session() as session:
        actions = [e.action for e in list_events(session, actor=team.ana.subject)]
    assert actions.count("comparison.share") == 2


# --- Ratings -----------------------------------------------------------------------------


def test_a_rating_in_hosted_mode_is_by_the_signed_in_user_even_a_viewer(team: Team) -> None:
    comparison_id = seed_as(team.ana, SECRET)
    history_service.set_sharing(
        comparison_id, team.ana, visibility="workspace", workspace_id=team.research, link=False
    )
    at = open_blocks(open_history(team.vic, comparison_id), r"\.rate\..*\.open$")
    assert "Rating as **vic** (vic@example.org)" in captions(at)
    assert not [t for t in at.text_input if t.label == "Your name"]
    click(at, "Good", index=0)
    assert not at.exception
    with runtime.get_store().session() as session:
        raters = session.scalars(sa.select(RatingRow.rater)).all()
    assert raters == ["vic@example.org"]


def test_an_answer_that_is_not_visible_cannot_be_rated(team: Team) -> None:
    seed_as(team.ana, SECRET)
    with runtime.get_store().session() as session:
        result_id = session.scalars(sa.select(Result.id)).first()
    assert result_id is not None
    with pytest.raises(InvalidRequestError, match="not available"):
        evaluation.rate(result_id, "bob", "thumbs", 1, None, viewer=team.bob)
    evaluation.rate(result_id, "typed name", "thumbs", 1, None, viewer=team.ana)
    with runtime.get_store().session() as session:
        assert session.scalars(sa.select(RatingRow.rater)).all() == ["ana@example.org"]


# --- Costs -------------------------------------------------------------------------------


def test_costs_count_only_what_the_viewer_may_see(team: Team) -> None:
    seed(SECRET, ("gpt-5",), [Outcome("a", tokens_used=40)], owner=team.ana.subject)
    seed("Bob's question", ("gpt-5",), [Outcome("b", tokens_used=3)], owner=team.bob.subject)

    def spent(person: Principal) -> str:
        at = open_page_as("pages/costs.py", person)
        assert not at.exception
        return next(m.value for m in at.metric if m.label == "Billing tokens spent")

    assert (spent(team.ana), spent(team.bob)) == ("40", "3")
    assert any(
        "No runs in this period yet." in t
        for t in texts(open_page_as("pages/costs.py", team.cat), "info")
    )


def test_costs_show_no_prompt_of_someone_elses_private_comparison(team: Team) -> None:
    seed_as(team.ana, SECRET)
    seed_as(team.bob, "Bob's question")

    def shown(person: Principal) -> str:
        at = open_page_as("pages/costs.py", person)
        assert not at.exception
        return " ".join(d.value.to_csv() for d in at.dataframe)

    assert SECRET in shown(team.ana)
    assert "Bob's question" in shown(team.bob)
    assert SECRET not in shown(team.bob)


# --- Evaluate: owned templates, datasets and batches -------------------------------------


def _template_and_dataset(owner: Principal) -> tuple[int, int]:
    version = evaluation.save_template(
        "capitals", "Be terse.", "Capital of {{ country }}?", viewer=owner
    )
    dataset_id = evaluation.store_dataset(
        "countries", parse_dataset("country\nFrance\nItaly\n"), viewer=owner
    )
    return version.id, dataset_id


def _spec(version_id: int, dataset_id: int) -> BatchSpec:
    return BatchSpec(
        title="capitals",
        template_version_ids=(version_id,),
        dataset_id=dataset_id,
        targets=(ModelTarget("demo", "gpt-5-nano"), ModelTarget("demo", "gpt-5")),
    )


def test_templates_and_datasets_of_one_user_are_invisible_to_another(team: Team) -> None:
    version_id, dataset_id = _template_and_dataset(team.ana)
    evaluation.save_template(
        "capitals", "Be kind.", "Capital of {{ country }}, please?", viewer=team.bob
    )

    at = open_page_as("pages/evaluate.py", team.bob)
    assert not at.exception
    assert [e.label for e in at.expander] == ["capitals · 1 version(s)"]
    assert "Be kind." in at.expander[0].code[0].value
    assert evaluation.datasets(viewer=team.bob) == []
    at = open_tab(at, "evaluate.tab", "Run batch")
    assert at.selectbox(key="evaluate.dataset").options == []
    with pytest.raises(InvalidRequestError, match=f"No dataset #{dataset_id}"):
        evaluation.dataset_row(dataset_id, 1, viewer=team.bob)
    with pytest.raises(InvalidRequestError, match=f"No template version #{version_id}"):
        evaluation.check_and_estimate(_spec(version_id, dataset_id), viewer=team.bob)
    assert list(evaluation.templates(viewer=team.ana)) == ["capitals"]
    with runtime.get_store().session() as session:
        owners = session.scalars(sa.select(DatasetRow.owner)).all()
    assert owners == ["ana@example.org"]

    with runtime.get_store().session() as session, session.begin():
        template = session.scalars(
            sa.select(PromptTemplateRow).where(PromptTemplateRow.owner == team.ana.subject)
        ).one()
        template.visibility, template.workspace_id = "workspace", team.research
    assert sorted(evaluation.templates(viewer=team.bob)) == [
        "capitals",
        "capitals (ana@example.org)",
    ]
    assert evaluation.templates(viewer=team.cat) == {}


def test_a_viewer_cannot_create_templates_datasets_or_start_a_batch(team: Team) -> None:
    version_id, dataset_id = _template_and_dataset(team.ana)
    with runtime.get_store().session() as session, session.begin():
        for model in (PromptTemplateRow, DatasetRow):
            session.execute(
                sa.update(model).values(visibility="workspace", workspace_id=team.research)
            )

    at = open_page_as("pages/evaluate.py", team.vic)
    assert "Save version" in {b.label for b in at.button if b.disabled}
    at = open_tab(at, "evaluate.tab", "Run batch")
    assert at.multiselect(key="evaluate.versions").options == ["capitals (ana@example.org) v1"]
    at.multiselect(key="evaluate.versions").set_value(["capitals (ana@example.org) v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano"]).run()
    assert not at.exception
    assert any("Your role is viewer" in t for t in texts(at, "info"))
    assert "Start batch" in {b.label for b in at.button if b.disabled}
    with pytest.raises(AccessDeniedError, match="viewer"):
        evaluation.save_template("mine", "", "Hi", viewer=team.vic)
    with pytest.raises(AccessDeniedError, match="viewer"):
        evaluation.store_dataset("mine", parse_dataset("a\n1\n"), viewer=team.vic)
    with pytest.raises(AccessDeniedError, match="viewer"):
        evaluation.start_batch(
            _spec(version_id, dataset_id), runtime.connection_from(), viewer=team.vic
        )
    with runtime.get_store().session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(BatchRow)) == 0


def test_a_batch_over_the_daily_budget_is_refused_with_the_message(team: Team) -> None:
    _template_and_dataset(team.ana)
    set_daily_budget(runtime.get_store(), team.ana, 3)
    at = open_tab(open_page_as("pages/evaluate.py", team.ana), "evaluate.tab", "Run batch")
    at.multiselect(key="evaluate.versions").set_value(["capitals v1"])
    at.multiselect(key="evaluate.models").set_value(["gpt-5-nano", "gpt-5"]).run()
    estimate = next(t for t in texts(at, "info") if "requests" in t)

    at = click(at, "Start batch")

    assert not at.exception
    assert estimate.startswith("4 requests · up to ")
    tokens = int(estimate.split("up to ", 1)[1].split(" ")[0])
    assert texts(at, "error") == [
        f"Your daily budget is 3 billing tokens; you have used 0 and this needs about "
        f"{tokens:,}. It resets at midnight UTC, or an admin can raise it."
    ]
    with runtime.get_store().session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(BatchRow)) == 0
        assert not list_events(session, action="batch.start")


def _comparisons() -> int:
    with runtime.get_store().session() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(Comparison)) or 0


def test_a_run_past_the_budget_stores_sends_and_audits_nothing(team: Team) -> None:
    request = make_request(("gpt-5", "gpt-5-nano"), owner=None)
    estimate = sum(runtime.get_catalog().cost_of(t.model) or 0 for t in request.targets)
    set_daily_budget(runtime.get_store(), team.ana, estimate - 1)

    with pytest.raises(SpendingLimitError, match="daily budget"):
        compare.start_compare(request, runtime.connection_from(), team.ana)

    assert _comparisons() == 0
    assert runtime.get_runner().live_runs() == 0
    with runtime.get_store().session() as session:
        assert not list_events(session, action="run.start")


def test_a_run_holds_its_price_against_the_budget_from_the_moment_it_starts(
    team: Team,
) -> None:
    # The budget covers one run: the next one is refused, whether the first is still
    # streaming (its price reserved) or finished (its tokens spent).
    request = make_request(("gpt-5", "gpt-5-nano"), owner=None)
    estimate = sum(runtime.get_catalog().cost_of(t.model) or 0 for t in request.targets)
    set_daily_budget(runtime.get_store(), team.ana, estimate)
    connection = runtime.connection_from()

    first = compare.start_compare(request, connection, team.ana)
    with pytest.raises(SpendingLimitError, match="daily budget"):
        compare.start_compare(request, connection, team.ana)
    first.wait(30)
    with pytest.raises(SpendingLimitError, match="daily budget"):
        compare.start_compare(request, connection, team.ana)
    assert _comparisons() == 1


def test_a_started_run_is_audited_with_its_comparison(team: Team) -> None:
    request = make_request(("gpt-5", "gpt-5-nano"), owner=None)

    handle = compare.start_compare(request, runtime.connection_from(), team.ana)
    handle.wait(30)

    with runtime.get_store().session() as session:
        events = list_events(session, action="run.start")
        owner = session.scalar(sa.select(Comparison.owner))
    assert [(e.actor, e.target, e.details["models"]) for e in events] == [
        (team.ana.subject, f"comparison:{handle.comparison_id}", ["gpt-5", "gpt-5-nano"])
    ]
    assert owner == team.ana.subject


def test_run_checks_stores_and_audits_a_hosted_run_in_one_transaction(team: Team) -> None:
    # Run's callback is on the way to every first answer: the limit check, the comparison
    # with its started rows and the audit event commit together (the runner's writer
    # thread, which records the answers as they stream, commits on its own).
    request = make_request(("gpt-5", "gpt-5-nano"), owner=None)
    caller = threading.get_ident()
    commits: list[int] = []
    queries: list[str] = []
    engine = runtime.get_store().engine

    def committed(_connection: object) -> None:
        if threading.get_ident() == caller:
            commits.append(caller)

    def executed(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if threading.get_ident() == caller:
            queries.append(" ".join(statement.split()))

    sa.event.listen(engine, "commit", committed)
    sa.event.listen(engine, "before_cursor_execute", executed)
    try:
        handle = compare.start_compare(request, runtime.connection_from(), team.ana)
    finally:
        sa.event.remove(engine, "commit", committed)
        sa.event.remove(engine, "before_cursor_execute", executed)
    handle.wait(30)

    assert len(commits) == 1
    # ... of one statement per part (each round trip there costs several milliseconds on a
    # busy server): the user's limits with their spend, judge grading included, then the
    # comparison, its rows (their ids come back from the insert) and the audit event.
    written = [m.group(1) for q in queries if (m := re.match(r"INSERT INTO (\w+)", q))]
    assert written == ["comparisons", "results", "audit_events"], queries
    (read,) = [q for q in queries if not q.startswith("INSERT")]
    assert read.startswith("SELECT users.id") and "judged_utc" in read
    with runtime.get_store().session() as session:
        assert [e.target for e in list_events(session, action="run.start")] == [
            f"comparison:{handle.comparison_id}"
        ]


def test_only_the_servers_very_first_sign_in_is_audited_as_such(app_env: Path) -> None:
    ana = Identity("ana@example.org", "ana@example.org", "Ana")
    bob = Identity("bob@example.org", "bob@example.org", "Bob")
    for identity in (ana, ana, bob, ana):
        hosted.page_view(identity)

    with runtime.get_store().session() as session:
        events = list_events(session, action="user.first_sign_in")
    assert [(e.actor, e.target) for e in events] == [(ana.subject, ana.subject)]


def test_a_batch_within_budget_is_the_owners_audited_and_steered_only_by_them(
    team: Team,
) -> None:
    version_id, dataset_id = _template_and_dataset(team.ana)
    connection = runtime.connection_from()
    job = evaluation.start_batch(_spec(version_id, dataset_id), connection, viewer=team.ana)
    job.wait(30)

    with runtime.get_store().session() as session:
        batch = session.get(BatchRow, job.batch_id)
        assert batch is not None and batch.owner == "ana@example.org"
        (event,) = list_events(session, action="batch.start")
    assert (event.actor, event.target) == ("ana@example.org", f"batch:{job.batch_id}")
    assert event.details["requests"] == 4

    assert evaluation.batches(viewer=team.bob) == []
    assert evaluation.running_job(job.batch_id, viewer=team.bob) is None
    assert (
        evaluation.next_blind_round(job.batch_id, "bob", random.Random(7), viewer=team.bob) is None
    )
    assert (
        evaluation.next_blind_round(job.batch_id, "ana", random.Random(7), viewer=team.ana)
        is not None
    )
    with pytest.raises(InvalidRequestError, match="No batch"):
        evaluation.cells(job.batch_id, viewer=team.bob)
    for fmt in ("csv", "json"):
        with pytest.raises(InvalidRequestError, match="No batch"):
            evaluation.export_batch(job.batch_id, fmt, viewer=team.bob)
    answer_id = evaluation.cells(job.batch_id, viewer=team.ana)[0].result_id or 0
    with pytest.raises(InvalidRequestError, match="not available"):
        evaluation.answer_text(answer_id, viewer=team.bob)
    with pytest.raises(InvalidRequestError, match="No batch"):
        evaluation.control_batch(job.batch_id, "cancel", viewer=team.bob)

    with runtime.get_store().session() as session, session.begin():
        session.execute(
            sa.update(BatchRow).values(visibility="workspace", workspace_id=team.research)
        )
    assert [b[0] for b in evaluation.batches(viewer=team.bob)] == [job.batch_id]
    assert (
        evaluation.next_blind_round(job.batch_id, "bob", random.Random(7), viewer=team.bob)
        is not None
    )
    assert not evaluation.owns_batch(job.batch_id, viewer=team.bob)
    with pytest.raises(AccessDeniedError, match="owner"):
        evaluation.control_batch(job.batch_id, "cancel", viewer=team.bob)
    with pytest.raises(AccessDeniedError, match="owner"):
        evaluation.resume_batch(job.batch_id, connection, viewer=team.bob)
    at = open_tab(open_page_as("pages/evaluate.py", team.bob), "evaluate.tab", "Results")
    assert not at.exception
    assert at.selectbox(key="evaluate.results_batch").value == job.batch_id
    assert "Resume" not in {b.label for b in at.button}


def test_blind_votes_in_hosted_mode_are_by_the_signed_in_user(team: Team) -> None:
    version_id, dataset_id = _template_and_dataset(team.ana)
    job = evaluation.start_batch(
        _spec(version_id, dataset_id), runtime.connection_from(), viewer=team.ana
    )
    job.wait(30)
    at = open_tab(open_page_as("pages/evaluate.py", team.ana), "evaluate.tab", "Blind vote")
    assert "Rating as **ana** (ana@example.org)" in captions(at)
    click(at, "Next round")
    click(at, "A is better")
    assert not at.exception
    with runtime.get_store().session() as session:
        raters = session.scalars(sa.text("SELECT rater FROM pairwise_votes")).all()
    assert raters == ["ana@example.org"]


# --- Leaderboard -------------------------------------------------------------------------

LEADERBOARD_EMPTY = "No votes or batch results yet. Run a batch and vote on the Evaluate page."


def leaderboard_lines(person: Principal, grouping: str) -> list[str] | None:
    """The Leaderboard's lines as ``person`` sees them ``grouping``; ``None``: its empty state."""
    at = open_page_as("pages/leaderboard.py", person)
    at.radio(key="leaderboard.grouping").set_value(grouping).run()
    assert not at.exception
    if not at.dataframe:
        assert texts(at, "info") == [LEADERBOARD_EMPTY]
        return None
    return sorted(at.dataframe[0].value.iloc[:, 0])


def test_the_leaderboard_shows_only_what_the_viewer_may_see(team: Team) -> None:
    connection = runtime.connection_from()
    version = evaluation.save_template(
        "Project Falcon", "Be terse.", "Capital of {{ country }}?", viewer=team.ana
    )
    dataset_id = evaluation.store_dataset(
        "countries", parse_dataset("country\nFrance\n"), viewer=team.ana
    )
    job = evaluation.start_batch(_spec(version.id, dataset_id), connection, viewer=team.ana)
    job.wait(30)
    blind = evaluation.next_blind_round(job.batch_id, "", random.Random(7), viewer=team.ana)
    assert blind is not None
    evaluation.vote(blind, 0, "", viewer=team.ana)
    evaluation.rate(blind.answers[0].result_id, "", "score", 5, None, viewer=team.ana)
    comparison_id = seed(SECRET, ("claude-haiku-4.5",), [Outcome("a")], owner=team.ana.subject)
    by_version = sorted(["GPT-5 · Project Falcon v1", "GPT-5 Nano · Project Falcon v1"])
    by_model = ["Claude Haiku 4.5", "GPT-5", "GPT-5 Nano"]
    assert leaderboard_lines(team.ana, "by prompt version") == by_version
    assert leaderboard_lines(team.ana, "by model") == by_model

    for person in (team.bob, team.cat, team.vic):  # Bob and Vic share Ana's workspace
        assert leaderboard_lines(person, "by prompt version") is None
        assert leaderboard_lines(person, "by model") is None

    with runtime.get_store().session() as session, session.begin():
        session.execute(
            sa.update(BatchRow).values(visibility="workspace", workspace_id=team.research)
        )
    hidden = f"version #{version.id}"  # the batch is shared, its template is not
    assert leaderboard_lines(team.bob, "by prompt version") == sorted(
        [f"GPT-5 · {hidden}", f"GPT-5 Nano · {hidden}"]
    )
    assert leaderboard_lines(team.bob, "by model") == ["GPT-5", "GPT-5 Nano"]

    with runtime.get_store().session() as session, session.begin():
        session.execute(
            sa.update(PromptTemplateRow).values(visibility="workspace", workspace_id=team.research)
        )
    history_service.set_sharing(
        comparison_id, team.ana, visibility="workspace", workspace_id=team.research, link=False
    )
    assert leaderboard_lines(team.vic, "by prompt version") == by_version
    assert leaderboard_lines(team.vic, "by model") == by_model
    assert leaderboard_lines(team.cat, "by model") is None


def test_a_vote_on_a_batch_made_private_since_the_round_was_drawn_is_refused(
    team: Team,
) -> None:
    version_id, dataset_id = _template_and_dataset(team.ana)
    job = evaluation.start_batch(
        _spec(version_id, dataset_id), runtime.connection_from(), viewer=team.ana
    )
    job.wait(30)

    def share_batch(workspace_id: int | None) -> None:
        with runtime.get_store().session() as session, session.begin():
            session.execute(
                sa.update(BatchRow).values(
                    visibility="private" if workspace_id is None else "workspace",
                    workspace_id=workspace_id,
                )
            )

    share_batch(team.research)
    at = click(
        open_tab(open_page_as("pages/evaluate.py", team.bob), "evaluate.tab", "Blind vote"),
        "Next round",
    )
    assert at.session_state["evaluate.round"] is not None
    share_batch(None)
    at = click(at, "A is better")

    assert not at.exception
    assert texts(at, "error") == [
        "These answers are no longer available; press Next round for new ones."
    ]
    with runtime.get_store().session() as session:
        assert session.scalars(sa.text("SELECT rater FROM pairwise_votes")).all() == []
    assert at.session_state["evaluate.round"] is None


def test_local_mode_is_unchanged_everyone_sees_everything(app_env: Path) -> None:
    seed("Local prompt")
    at = open_page_as("pages/history.py", None)
    assert prompts(at) == ["Local prompt"]
    assert "Share" not in [e.label for e in open_row(at, 0).expander]
    with runtime.get_store().session() as session:
        assert session.scalars(sa.select(Comparison.owner)).all() == [None]


# --- a page run reads its signed-in user once ---------------------------------------------


def test_a_compare_page_run_reads_its_signed_in_user_in_one_transaction(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every page run of every user is on the way to their live answers: sign-in, the
    # connection and the sidebar's limits and spend are one transaction, not one per caller.
    monkeypatch.setenv("PLAYGROUND_AUTH", "proxy")
    monkeypatch.setenv("PLAYGROUND_PROXY_SECRET", PROXY_SECRET)
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")
    runtime.reset()
    # AppTest sends no headers: the proxy's identity header is read as Ana's.
    ana = Identity(team.ana.subject, team.ana.subject, team.ana.display_name)
    monkeypatch.setattr(hosted, "proxy_identity", lambda headers, peer: ana)
    queries: list[str] = []
    sa.event.listen(
        runtime.get_store().engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_args: queries.append(statement),
    )

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=PAGE_TIMEOUT_S).run()

    assert not at.exception and not texts(at, "error")
    assert "Compare models" in [t.value for t in at.title]
    assert at.session_state[PRINCIPAL_KEY] == team.ana
    users = [q for q in queries if re.search(r"\bFROM users\b", q)]
    # One read of the user, by subject: no count of the users (asked only when a sign-in
    # creates its user), and the row sign-in read serves the connection and the limits.
    assert len(users) == 1, users
    # ... with the user's workspaces, in the same statement.
    assert [q for q in queries if "workspace_members" in q] == users
    # ... and the sidebar's spend (the month's answers and judge grading): one round trip.
    assert [q for q in queries if "judged_utc" in q] == users


def test_a_known_users_page_run_reads_them_outside_a_transaction_and_keeps_their_visit(
    team: Team,
) -> None:
    """BEGIN and COMMIT were two round trips more on every page run. What the sign-in
    changes of the user's row is still written, and a disabled user is still refused."""
    store = runtime.get_store()
    reads: list[object] = []
    sa.event.listen(
        store.engine,
        "before_cursor_execute",
        lambda conn, _cursor, statement, *_args: (
            reads.append(conn.get_execution_options().get("isolation_level"))
            if re.search(r"\bFROM users\b", statement)
            else None
        ),
    )
    ana = Identity(team.ana.subject, team.ana.subject, team.ana.display_name)
    assert hosted.page_view(ana).principal == team.ana  # the team's set-up just signed her in
    assert reads == ["AUTOCOMMIT"]

    long_ago = datetime.now(UTC) - timedelta(hours=2)
    by_subject = UserRow.subject == ana.subject
    with store.session() as session, session.begin():
        session.execute(sa.update(UserRow).where(by_subject).values(last_seen_utc=long_ago))
    reads.clear()
    hosted.page_view(replace(ana, display_name="Ana Lima"))
    assert reads == ["AUTOCOMMIT"]
    with store.session() as session:
        user = session.scalars(sa.select(UserRow).where(by_subject)).one()
    assert user.last_seen_utc > long_ago + timedelta(hours=1)
    assert user.display_name == "Ana Lima"

    with store.session() as session, session.begin():
        session.execute(sa.update(UserRow).where(by_subject).values(disabled=True))
    with pytest.raises(SignInError, match="disabled"):
        hosted.page_view(ana)

    reads.clear()
    newcomer = Identity("new@example.org", "new@example.org", "New")
    assert hosted.page_view(newcomer).principal.subject == newcomer.subject
    # Not found outside a transaction: created inside one.
    assert reads[0] == "AUTOCOMMIT" and set(reads[1:]) == {None}, reads


def test_a_page_run_reads_the_same_spend_as_a_limit_check(team: Team) -> None:
    request = make_request(("gpt-5", "gpt-5-nano"), owner=None)
    compare.start_compare(request, runtime.connection_from(), team.ana).wait(30)
    ana = Identity(team.ana.subject, team.ana.subject, team.ana.display_name)

    view = hosted.page_view(ana)

    with runtime.get_store().session() as session:
        assert view.spend == spend_of(session, team.ana.subject)
    assert view.spend.today_tokens > 0 and view.spend.requests_last_minute == 2
    bob = hosted.page_view(Identity(team.bob.subject, team.bob.subject, "Bob"))
    assert bob.spend == Spend(0, 0, 0)  # another user's answers are not theirs
