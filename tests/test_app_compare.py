"""The Compare page through AppTest: runs with the demo and the fake API, validation, tools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from playground.safe_text import escape_markdown
from playground.services import history, runtime
from tests.app_harness import (
    SIX_MODELS,
    click,
    open_blocks,
    open_page,
    run_until_done,
    texts,
)
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.hosted_fixtures import make_workspace, open_page_as, refreshed, signed_in

PROMPT = "compare.prompt"
MODELS = "compare.models"
TEMPERATURE = "compare.temperature"


def compose(at: AppTest, prompt: str, models: list[str]) -> AppTest:
    """Type ``prompt`` and pick ``models`` (``provider:slug`` keys)."""
    at.text_area(key=PROMPT).set_value(prompt)
    at.multiselect(key=MODELS).set_value(models)
    return at.run()


def done_badges(at: AppTest) -> int:
    return badges(at, ":green-badge[Done]")


def badges(at: AppTest, badge: str) -> int:
    """How many column headers show ``badge`` (e.g. ``:red-badge[Failed]``)."""
    return sum(1 for text in texts(at, "markdown") if badge in text)


def test_demo_run_fills_both_columns_with_completed_answers(app_env: Path) -> None:
    at = open_page()
    assert "**Provider:** Demo (offline, simulated)" in texts(at.sidebar, "markdown")
    compose(at, "How do I pick a model?", ["demo:gpt-5-nano", "demo:gpt-5"])
    assert any("Estimated cost **3 billing tokens**" in t for t in texts(at, "markdown"))

    click(at, "Run")
    run_until_done(at)

    assert not at.exception
    assert done_badges(at) == 2
    answers = [t for t in texts(at, "markdown") if t.startswith("*Demo mode")]
    assert len(answers) == 2 and answers[0] != answers[1]  # one answer per model
    assert any("Latency **" in t for t in texts(at, "caption"))
    assert at.query_params["comparison"]
    assert any("comparison=" in t for t in texts(at, "code"))
    assert not any(t.startswith("*Demo mode") for t in texts(at, "code"))

    open_blocks(at, "^raw-1$")  # "Raw text (copy)" of the second column
    assert [t for t in texts(at, "code") if t.startswith("*Demo mode")] == [answers[1]]


def test_two_answers_can_be_diffed(app_env: Path) -> None:
    at = compose(open_page(), "Hello", ["demo:gpt-5-nano", "demo:gpt-5", "demo:gpt-5.2"])
    click(at, "Run")
    run_until_done(at)
    # Closed, the expander works nothing out: no diff drawn until it is opened.
    assert not any(t.startswith("---") for t in texts(at, "code"))

    open_blocks(at, r"^compare\.diff\.open$")
    diff = next(t for t in texts(at, "code") if t.startswith("---"))
    assert diff.splitlines()[:2] == ["--- 1. GPT-5 Nano", "+++ 2. GPT-5"]
    at.selectbox(key="compare.diff.b").set_value("3. GPT-5.2").run()
    diff = next(t for t in texts(at, "code") if t.startswith("---"))
    assert diff.splitlines()[1] == "+++ 3. GPT-5.2"
    assert any(t.startswith("Similarity ") for t in texts(at, "caption"))


def test_a_rerun_of_the_page_never_starts_the_run_twice(app_env: Path) -> None:
    at = compose(open_page(), "Hi", ["demo:gpt-5-nano"])
    click(at, "Run")
    run_id = at.session_state["compare.columns"][0].run_id
    run_until_done(at)
    at.run()
    assert at.session_state["compare.columns"][0].run_id == run_id


@pytest.mark.parametrize(
    ("prompt", "models", "temperature", "message"),
    [
        ("Hello", [], None, "Pick at least one model."),
        ("   ", ["demo:gpt-5"], None, "The prompt is empty"),
        ("Hello", ["demo:gpt-5"], 3.0, "Temperature must be between 0 and 2 (got 3)."),
        ("x" * 81, ["demo:gpt-5"], None, "The prompt is 81 characters; the limit is 80."),
    ],
    ids=["no-model", "empty-prompt", "temperature", "too-long"],
)
def test_bad_input_gets_a_clear_message_and_keeps_what_was_typed(
    app_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    prompt: str,
    models: list[str],
    temperature: float | None,
    message: str,
) -> None:
    monkeypatch.setenv("PLAYGROUND_MAX_PROMPT_CHARS", "80")
    runtime.reset()
    at = compose(open_page(), prompt, models)
    at.number_input(key=TEMPERATURE).set_value(temperature)

    click(at.run(), "Run")

    assert not at.exception
    assert any(message in text for text in texts(at, "error")), texts(at, "error")
    assert at.text_area(key=PROMPT).value == prompt
    assert at.multiselect(key=MODELS).value == models
    assert "compare.columns" not in at.session_state


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (ModelScript(status=402), "[insufficient_tokens]"),
        (ModelScript(status=403), "[insufficient_plan]"),
        (ModelScript(status=429, retry_after_s=42), "Retry in 42 s."),
        (ModelScript(status=500), "[provider_error]"),
        (ModelScript(status=503), "[model_unavailable]"),
    ],
    ids=["402", "403", "429", "500", "503"],
)
def test_an_api_error_shows_in_its_column_while_the_other_completes(
    with_fake: None, fake_elumenta: FakeElumenta, script: ModelScript, message: str
) -> None:
    fake_elumenta.script("gpt-5", script)
    at = compose(open_page(), "Hello", ["elumenta:gpt-5-nano", "elumenta:gpt-5"])

    click(at, "Run")
    run_until_done(at)

    assert not at.exception
    assert done_badges(at) == 1
    assert badges(at, ":red-badge[Failed]") == 1
    errors = texts(at, "error")
    assert len(errors) == 1
    assert message.lower() in errors[0].lower(), errors


def test_without_a_key_elumenta_explains_itself_instead_of_failing_silently(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_PROVIDER", "elumenta")
    runtime.reset()
    at = compose(open_page(), "Hello", ["elumenta:gpt-5-nano"])

    assert any("No Elumenta API key" in t for t in texts(at, "warning"))
    click(at, "Run")
    run_until_done(at)
    assert any("No Elumenta API key" in t for t in texts(at, "error"))


def test_a_rejected_key_is_reported_before_running(
    with_fake: None, fake_elumenta: FakeElumenta, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELUMENTA_API_KEY", "nb_wrong_key_0000")
    runtime.reset()
    at = open_page()
    warnings = texts(at, "warning")
    assert any("Invalid or missing API key" in w and "Settings" in w for w in warnings), warnings
    assert not at.exception


def test_balance_and_quota_warnings_before_running(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.balance = 2
    fake_elumenta.quota_hour = 1
    at = compose(open_page(), "Hello", ["elumenta:gpt-5", "elumenta:claude-opus-4.5"])

    warnings = texts(at, "warning")
    assert any("costs about 8 billing tokens but the balance is 2" in w for w in warnings)
    assert any("only 1 are left this hour" in w for w in warnings)


def test_continue_chat_turns_the_answer_into_an_assistant_turn(app_env: Path) -> None:
    at = compose(open_page(), "First question", ["demo:gpt-5-nano", "demo:gpt-5"])
    click(at, "Run")
    run_until_done(at)

    click(at, "Continue chat", index=1)

    assert at.text_area(key=PROMPT).value == ""
    turns = at.session_state["compare.turns"]
    roles = [at.session_state[f"compare.turn.{t}.role"] for t in turns]
    labels = [at.text_area(key=f"compare.turn.{t}.content").label for t in turns]
    contents = [at.text_area(key=f"compare.turn.{t}.content").value for t in turns]
    assert roles == ["user", "assistant"]
    assert labels == ["1. User", "2. Assistant"]
    assert contents[0] == "First question"
    assert str(contents[1]).startswith("*Demo mode: simulated answer;")


def test_turns_can_be_added_reordered_and_removed(app_env: Path) -> None:
    at = open_page()
    click(at, "Add user turn")
    click(at, "Add assistant turn")
    first, second = at.session_state["compare.turns"]
    at.text_area(key=f"compare.turn.{first}.content").set_value("question")
    at.text_area(key=f"compare.turn.{second}.content").set_value("answer").run()

    at.segmented_control(key=f"compare.turn.{second}.action").set_value("up").run()
    assert at.session_state["compare.turns"] == [second, first]
    assert at.text_area(key=f"compare.turn.{first}.content").value == "question"
    assert at.segmented_control(key=f"compare.turn.{second}.action").value is None

    at.segmented_control(key=f"compare.turn.{first}.action").set_value("switch_role").run()
    assert at.text_area(key=f"compare.turn.{first}.content").label == "2. Assistant"
    # Now last: it can move up but not down.
    options = at.segmented_control(key=f"compare.turn.{first}.action").proto.options
    assert [option.content_icon for option in options] == [
        ":material/swap_horiz:",
        ":material/arrow_upward:",
        ":material/delete:",
    ]

    at.segmented_control(key=f"compare.turn.{second}.action").set_value("remove").run()
    assert at.session_state["compare.turns"] == [first]
    assert at.text_area(key=f"compare.turn.{first}.content").value == "question"


def test_a_multi_turn_conversation_is_sent_in_order(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    at = open_page()
    click(at, "Add user turn")
    click(at, "Add assistant turn")
    first, second = at.session_state["compare.turns"]
    at.text_area(key=f"compare.turn.{first}.content").set_value("Hi")
    at.text_area(key=f"compare.turn.{second}.content").set_value("Hello!")
    at.text_area(key="compare.system").set_value("Be brief.")
    compose(at, "And now?", ["elumenta:gpt-5-nano"])
    click(at, "Run")
    run_until_done(at)

    sent = [r.json for r in fake_elumenta.requests if r.path.endswith("/generate/stream")]
    assert sent[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "And now?"},
    ]


def test_per_model_overrides_reach_only_their_model(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    at = compose(open_page(), "Hello", ["elumenta:gpt-5-nano", "elumenta:gpt-5"])
    open_blocks(at, "^compare.overrides$")
    at.number_input(key=TEMPERATURE).set_value(0.5)
    at.number_input(key="compare.override.elumenta:gpt-5.temperature").set_value(1.5)
    at.session_state["compare.overrides"] = False  # closed again: the value still counts
    at.run()
    assert not [n for n in at.number_input if ".override." in str(n.key)]
    click(at, "Run")
    run_until_done(at)

    sent = {
        r.json["model"]: r.json.get("temperature")
        for r in fake_elumenta.requests
        if r.path.endswith("/generate/stream")
    }
    assert sent == {"gpt-5-nano": 0.5, "gpt-5": 1.5}


def test_stop_all_keeps_partial_text(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_DEMO_TIME_SCALE", "3")
    runtime.reset()
    at = compose(open_page(), "Hello", ["demo:gpt-5", "demo:claude-opus-4.5"])
    click(at, "Run")

    click(at, "Stop all")
    run_until_done(at)

    assert badges(at, ":orange-badge[Stopped]") == 2
    assert not at.exception


def test_rerun_one_column_replaces_only_that_column(app_env: Path) -> None:
    at = compose(open_page(), "Hello", ["demo:gpt-5-nano", "demo:gpt-5"])
    click(at, "Run")
    run_until_done(at)
    before = list(at.session_state["compare.columns"])

    click(at, "Re-run", index=1)
    run_until_done(at)

    after = at.session_state["compare.columns"]
    assert after[0] == before[0]
    assert after[1].run_id != before[1].run_id
    assert done_badges(at) == 2


def test_a_share_link_reopens_the_comparison_in_another_session(app_env: Path) -> None:
    at = compose(open_page(), "Shared question", ["demo:gpt-5-nano", "demo:gpt-5"])
    click(at, "Run")
    run_until_done(at)
    ref = at.query_params["comparison"]

    other = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=10)
    other.query_params["comparison"] = ref
    other.run()

    assert not other.exception
    assert other.text_area(key=PROMPT).value == "Shared question"
    assert other.multiselect(key=MODELS).value == ["demo:gpt-5-nano", "demo:gpt-5"]
    assert done_badges(other) == 2


def test_an_unknown_share_link_says_so(app_env: Path) -> None:
    at = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=10)
    at.query_params["comparison"] = "no-such-run"
    at.run()
    assert any("is not available" in t for t in texts(at, "warning"))


def test_a_share_link_cannot_put_an_image_on_the_page(app_env: Path) -> None:
    image = "![x](http://127.0.0.1:9/leak.png)"
    at = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=10)
    at.query_params["comparison"] = image
    at.run()
    (warning,) = texts(at, "warning")
    assert warning.startswith(f"Comparison '{escape_markdown(image)}' is not available")


def test_a_models_link_preselects_the_models(app_env: Path) -> None:
    at = AppTest.from_file(str(Path(__file__).parents[1] / "app.py"), default_timeout=10)
    at.query_params["models"] = "gpt-5,claude-haiku-4.5,unknown"
    at.run()
    assert at.multiselect(key="compare.models").value == ["demo:gpt-5", "demo:claude-haiku-4.5"]


def test_seven_models_wrap_into_rows_of_three(app_env: Path) -> None:
    models = [
        "demo:gpt-5-nano",
        "demo:claude-haiku-4.5",
        "demo:gemini-2.5-flash",
        "demo:deepseek-v3",
        "demo:grok-4-fast",
        "demo:gpt-5",
        "demo:deepseek-r1",
    ]
    at = compose(open_page(), "Hello", models)
    click(at, "Run")
    run_until_done(at)

    assert done_badges(at) == 7
    thirds = [c for c in at.columns if abs(c.proto.weight - 1 / 3) < 1e-9]
    assert len(thirds) == 9  # three rows of three; the last row has two empty cells
    assert sum(1 for c in thirds if c.children) == 7


def test_the_cache_is_off_by_default_and_reuses_identical_answers_when_on(app_env: Path) -> None:
    at = compose(open_page(), "Cache me", ["demo:gpt-5-nano", "demo:gpt-5"])
    assert at.toggle(key="compare.use_cache").value is False
    click(at, "Run")
    run_until_done(at)
    click(at, "Run")
    run_until_done(at)
    assert done_badges(at) == 2

    at.toggle(key="compare.use_cache").set_value(True).run()
    click(at, "Run")
    run_until_done(at)

    assert badges(at, ":green-badge[Done (cached, not billed)]") == 2
    comparison = history.stored_comparison(int(at.query_params["comparison"][0]))
    assert comparison is not None
    assert comparison.request.use_cache
    assert [(r.cached, r.tokens_used) for r in comparison.results] == [(True, 0), (True, 0)]


def test_run_is_disabled_while_the_comparison_streams(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(text="slow answer", ttft_ms=1500))
    at = compose(open_page(), "Hello", ["elumenta:gpt-5-nano", "elumenta:gpt-5"])
    click(at, "Run")

    run_button = next(b for b in at.button if b.label == "Run")
    assert run_button.disabled
    assert run_button.help == (
        "Stop the running comparison first (Stop all), or wait for it to finish."
    )
    run_until_done(at)
    assert done_badges(at) == 2
    assert not next(b for b in at.button if b.label == "Run").disabled
    streams = [r for r in fake_elumenta.requests if r.path.endswith("/generate/stream")]
    assert len(streams) == 2  # one comparison's worth


def balance_line(at: AppTest) -> str:
    (line,) = [t for t in texts(at, "markdown") if t.startswith("Estimated cost")]
    return line


def balance_reads(fake: FakeElumenta) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/balance"))


def test_the_balance_line_follows_a_run_and_a_column_re_run_from_the_answers(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    """Each answer reports the balance and quota after its charge: the finished page shows
    them without asking the provider again (a round trip on the way to every finished
    page)."""
    fake_elumenta.balance = 100
    fake_elumenta.quota_hour = 50
    at = compose(open_page(), "Hello", ["elumenta:gpt-5", "elumenta:gpt-5-nano"])
    assert "balance **100**" in balance_line(at)
    assert "**50** requests left this hour" in balance_line(at)
    reads = balance_reads(fake_elumenta)
    click(at, "Run")
    run_until_done(at)
    assert "balance **97**" in balance_line(at)  # 2 + 1 billing tokens charged
    assert "**48** requests left this hour" in balance_line(at)

    click(at, "Re-run", index=0)
    run_until_done(at)
    assert "balance **95**" in balance_line(at)
    assert "**47** requests left this hour" in balance_line(at)
    assert balance_reads(fake_elumenta) == reads


def test_after_a_failed_answer_the_balance_is_read_again(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    """A failed answer reports no balance, and whether it was charged only the provider
    knows."""
    fake_elumenta.balance = 100
    fake_elumenta.script("gpt-5", ModelScript(status=500, error_code="provider_error"))
    at = compose(open_page(), "Hello", ["elumenta:gpt-5", "elumenta:gpt-5-nano"])
    reads = balance_reads(fake_elumenta)
    click(at, "Run")
    run_until_done(at)

    assert balance_reads(fake_elumenta) == reads + 1
    assert "balance **99**" in balance_line(at)


def test_a_comparison_opened_by_link_never_stands_for_the_viewers_balance(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    """The answers of a comparison this session did not run report someone's balance at
    the time (a teammate's, or an old one): the viewer's own is read from the provider."""
    fake_elumenta.balance = 100
    at = compose(open_page(), "Hello", ["elumenta:gpt-5"])
    click(at, "Run")
    run_until_done(at)
    assert "balance **98**" in balance_line(at)

    fake_elumenta.balance = 500  # a top-up since
    other = compose(open_page(), "Other", ["elumenta:gpt-5-nano"])
    assert "balance **500**" in balance_line(other)
    other.query_params["comparison"] = at.query_params["comparison"]
    other.run()
    assert done_badges(other) == 1
    assert "balance **500**" in balance_line(other)


def test_a_failed_column_shows_its_error_and_no_waiting_line(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("gpt-5", ModelScript(status=400, error_code="invalid_request"))
    at = compose(open_page(), "Hello", ["elumenta:gpt-5"])
    click(at, "Run")
    run_until_done(at)
    assert texts(at, "error")
    assert not any("Waiting for the first token" in t for t in texts(at, "markdown"))


def page_size(block: Block) -> int:
    """How many elements and blocks ``block`` holds, at any depth: each is one message from
    the app to the browser on every page run."""
    return sum(
        1 + (page_size(child) if isinstance(child, Block) else 0)
        for child in block.children.values()
    )


def test_a_page_run_while_six_columns_stream_sends_one_element_per_live_column(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(text="slow answer " * 40, ttft_ms=50, delay_ms=200))
    at = compose(open_page(), "Hello", SIX_MODELS)
    without_columns = page_size(at.main)
    click(at, "Run")
    drawn_with_run = page_size(at.main) - without_columns
    at.run()  # what any click while the columns stream costs
    while_streaming = page_size(at.main) - without_columns

    # Per column: its grid cell, its bordered box and the live component (which draws the
    # model's name, status, Stop and answer); the grid's two rows, the run's box and
    # Stop all.
    assert while_streaming <= 3 * 6 + 4
    assert drawn_with_run <= 3 * 6 + 4 + 1  # and the scroll to the new columns
    live = [
        element
        for element in at.main.get("bidi_component")
        if element.proto.component_name.endswith("live_column")
    ]
    assert len(live) == 6
    assert {json.loads(e.proto.json)["stop"] for e in live} == {True}
    click(at, "Stop all")
    run_until_done(at)
    assert badges(at, ":orange-badge[Stopped]") == 6


def live_stops(at: AppTest) -> list[bool]:
    """Whether each live column on the page offers its Stop button."""
    return [
        json.loads(element.proto.json)["stop"]
        for element in at.main.get("bidi_component")
        if element.proto.component_name.endswith("live_column")
    ]


def test_only_the_runs_owner_is_offered_stop_while_it_streams(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(text="slow answer " * 40, ttft_ms=50, delay_ms=200))
    store = runtime.get_store()
    ana, bob = (signed_in(store, f"{name}@example.org") for name in ("ana", "bob"))
    research = make_workspace(store, "Research", [ana, bob])
    ana, bob = (refreshed(store, person) for person in (ana, bob))
    at = open_page_as("pages/compare.py", ana)
    at = click(compose(at, "Hello", ["elumenta:gpt-5-nano", "elumenta:gpt-5"]), "Run")
    comparison_id = int(at.query_params["comparison"][0])
    history.set_sharing(
        comparison_id, ana, visibility="workspace", workspace_id=research, link=False
    )

    watching = open_page_as("pages/compare.py", bob, {"comparison": str(comparison_id)})

    assert not watching.exception
    assert live_stops(watching) == [False, False]  # Bob sees the run stream, without Stop
    assert not {"Stop", "Stop all"} & {b.label for b in watching.button}
    assert live_stops(at.run()) == [True, True]  # Ana, who started it, may stop it
    run_until_done(click(at, "Stop all"))
    assert badges(at, ":orange-badge[Stopped]") == 2
