"""Drafts kept per browser tab: a reload (a new session with the tab's URL) finds Compare's
editor and Evaluate's forms as they were; nobody else's token finds anything."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from playground.drafts import DRAFT_PARAM, DraftStore, draft_values, valid_token
from tests.app_harness import APP, RUN_TIMEOUT_S, open_page, open_tab
from ui.drafts import DRAFT_KEYS


def through_the_router(at: AppTest) -> AppTest:
    """Rerun ``at`` through ``app.py`` (landing on Compare), as every browser run goes.

    AppTest reruns only the page script once the first run has listed the pages.
    """
    return at.switch_page("app.py").run()


def reload(at: AppTest, page: str) -> AppTest:
    """A new session opened on ``at``'s URL (its query parameters), as F5 does."""
    again = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S)
    for name, value in at.query_params.items():
        again.query_params[name] = value
    again.run()
    if page != "pages/compare.py":
        again.switch_page(page).run()
    return again


def test_a_draft_is_read_back_only_by_its_owner_and_token() -> None:
    store = DraftStore()
    store.save("7", "t" * 20, {"compare.prompt": "mine"})
    assert store.load("7", "t" * 20) == {"compare.prompt": "mine"}
    assert store.load("8", "t" * 20) is None
    assert store.load("7", "u" * 20) is None


def test_the_store_keeps_the_most_recently_saved_drafts_only() -> None:
    store = DraftStore(capacity=2)
    for token in ("a" * 20, "b" * 20, "c" * 20):
        store.save("", token, {"compare.prompt": token})
    store.save("", "b" * 20, {"compare.prompt": "again"})
    store.save("", "d" * 20, {})
    assert store.load("", "a" * 20) is None and store.load("", "c" * 20) is None
    assert store.load("", "b" * 20) == {"compare.prompt": "again"}


def test_only_editor_fields_with_plain_values_are_kept() -> None:
    state = {
        "compare.prompt": "Hi",
        "compare.turn.3.content": "earlier",
        "compare.override.elumenta:gpt-5.temperature": 0.3,
        "compare.models": ("elumenta:gpt-5",),
        "compare.columns": [object()],  # a run's columns: not a draft
        "compare.shared": "12",  # which comparison is open: the URL says that
        "evaluate.thumb_up": True,  # a button: cannot be set through the state
        "evaluate.user": "Draft: {{ x }}",
    }
    assert draft_values(state, DRAFT_KEYS) == {
        "compare.prompt": "Hi",
        "compare.turn.3.content": "earlier",
        "compare.override.elumenta:gpt-5.temperature": 0.3,
        "compare.models": ["elumenta:gpt-5"],
        "evaluate.user": "Draft: {{ x }}",
    }


@pytest.mark.parametrize("token", ["", "short", "<script>alert(1)</script>xxxxxxxx", "a/" * 10])
def test_a_malformed_token_in_the_url_is_ignored(token: str) -> None:
    assert not valid_token(token)


@pytest.mark.usefixtures("app_env")
def test_a_reload_brings_back_the_compare_editor() -> None:
    at = open_page()
    at.text_area(key="compare.system").set_value("Be brief.")
    at.text_area(key="compare.prompt").set_value("Which journal mode?")
    at.multiselect(key="compare.models").set_value(["demo:gpt-5"]).run()
    at = through_the_router(at).switch_page("pages/history.py").run()
    assert valid_token(at.query_params[DRAFT_PARAM])

    again = reload(at, "pages/compare.py")
    assert not again.exception
    assert again.text_area(key="compare.system").value == "Be brief."
    assert again.text_area(key="compare.prompt").value == "Which journal mode?"
    assert again.multiselect(key="compare.models").value == ["demo:gpt-5"]

    fresh = open_page()  # another tab: its own token, an empty editor
    assert fresh.query_params[DRAFT_PARAM] != at.query_params[DRAFT_PARAM]
    assert fresh.text_area(key="compare.prompt").value == ""


@pytest.mark.usefixtures("app_env")
def test_a_reload_brings_back_the_evaluate_forms() -> None:
    tabs = "evaluate.tab"
    at = open_tab(open_page("pages/evaluate.py"), tabs, "Run batch")
    at.multiselect(key="evaluate.models").set_value(["gpt-5", "deepseek-r1"])
    at.number_input(key="evaluate.budget").set_value(30).run()
    at = open_tab(at, tabs, "Templates")
    at.text_area(key="evaluate.user").set_value("Draft: {{ x }}").run()
    at = through_the_router(at)

    again = reload(at, "pages/evaluate.py")
    assert not again.exception
    assert again.text_area(key="evaluate.user").value == "Draft: {{ x }}"
    again = open_tab(again, tabs, "Run batch")
    assert again.multiselect(key="evaluate.models").value == ["gpt-5", "deepseek-r1"]
    assert again.number_input(key="evaluate.budget").value == 30
