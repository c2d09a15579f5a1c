"""The Compare editor's state in a plain dict, as the page keeps it in st.session_state."""

from __future__ import annotations

from typing import Any

from playground.presenters import compare_state as cs
from playground.providers.base import GenerationParams, Message
from playground.results import CompareRequest, ModelTarget


def contents(state: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in cs.turns(state)]


def test_turns_keep_their_text_when_moved_and_removed() -> None:
    state: dict[str, Any] = {}
    cs.add_turn(state, "user")
    cs.add_turn(state, "assistant")
    first, second = cs.turn_ids(state)
    state[cs.turn_key(first, "content")] = "question"
    state[cs.turn_key(second, "content")] = "answer"

    cs.move_turn(state, 1, -1)
    assert contents(state) == [("assistant", "answer"), ("user", "question")]

    cs.remove_turn(state, 0)
    assert contents(state) == [("user", "question")]
    assert cs.turn_key(second, "content") not in state


def test_a_turns_action_control_switches_role_moves_and_removes() -> None:
    state: dict[str, Any] = {}
    for role in ("user", "assistant", "user"):
        cs.add_turn(state, role)
    first, second, third = cs.turn_ids(state)
    for turn_id, text in ((first, "a"), (second, "b"), (third, "c")):
        state[cs.turn_key(turn_id, "content")] = text

    assert cs.turn_actions(0, 3) == [cs.SWITCH_ROLE, cs.MOVE_DOWN, cs.REMOVE]
    assert cs.turn_actions(1, 3) == [cs.SWITCH_ROLE, cs.MOVE_UP, cs.MOVE_DOWN, cs.REMOVE]
    assert cs.turn_actions(2, 3) == [cs.SWITCH_ROLE, cs.MOVE_UP, cs.REMOVE]

    state[cs.action_key(second)] = cs.SWITCH_ROLE
    cs.act_on_turn(state, second, cs.SWITCH_ROLE)
    assert contents(state) == [("user", "a"), ("user", "b"), ("user", "c")]
    assert state[cs.action_key(second)] is None  # ready for the next press

    cs.act_on_turn(state, third, cs.MOVE_UP)
    cs.act_on_turn(state, first, cs.MOVE_DOWN)
    assert contents(state) == [("user", "c"), ("user", "a"), ("user", "b")]

    cs.act_on_turn(state, first, cs.REMOVE)
    assert contents(state) == [("user", "c"), ("user", "b")]
    assert cs.action_key(first) not in state
    assert cs.action_key(first) not in state and cs.turn_key(first, "content") not in state
    # A press that arrives for a turn already removed (a second tab's stale click) does nothing.
    cs.act_on_turn(state, first, cs.REMOVE)
    assert contents(state) == [("user", "c"), ("user", "b")]
    assert cs.action_key(first) not in state


def test_continuing_moves_prompt_and_answer_into_the_turns() -> None:
    state: dict[str, Any] = {cs.PROMPT: "What is 2+2?"}
    cs.set_turns(state, [Message("user", "Hi"), Message("assistant", "Hello")])

    cs.continue_conversation(state, "4")

    assert state[cs.PROMPT] == ""
    assert contents(state) == [
        ("user", "Hi"),
        ("assistant", "Hello"),
        ("user", "What is 2+2?"),
        ("assistant", "4"),
    ]


def test_set_turns_forgets_the_old_widget_keys() -> None:
    state: dict[str, Any] = {}
    cs.set_turns(state, [Message("user", "old")])
    (old,) = cs.turn_ids(state)
    cs.set_turns(state, [Message("user", "new")])
    assert cs.turn_key(old, "content") not in state
    assert contents(state) == [("user", "new")]


def test_loading_a_request_fills_the_editor_with_known_models_only() -> None:
    request = CompareRequest(
        messages=(Message("user", "a"), Message("assistant", "b"), Message("user", "c")),
        targets=(ModelTarget("demo", "gpt-5"), ModelTarget("elumenta", "gone")),
        system_prompt="sys",
    )
    state: dict[str, Any] = {}
    cs.load_request(state, request, {"demo:gpt-5"})
    assert state[cs.SYSTEM] == "sys"
    assert state[cs.PROMPT] == "c"
    assert state[cs.MODELS] == ["demo:gpt-5"]
    assert contents(state) == [("user", "a"), ("assistant", "b")]


def test_loading_a_request_brings_back_parameters_overrides_and_the_cache_choice() -> None:
    request = CompareRequest(
        messages=(Message("user", "q"),),
        targets=(
            ModelTarget("demo", "gpt-5", GenerationParams(temperature=1.5)),
            ModelTarget("demo", "gpt-5-nano"),
        ),
        params=GenerationParams(temperature=0.3, max_tokens=200),
        use_cache=True,
    )
    state: dict[str, Any] = {cs.override_key("demo:gpt-5-nano", "max_tokens"): 9}
    cs.load_request(state, request, {"demo:gpt-5", "demo:gpt-5-nano"})
    assert (state[cs.TEMPERATURE], state[cs.MAX_TOKENS], state[cs.USE_CACHE]) == (0.3, 200, True)
    assert state[cs.override_key("demo:gpt-5", "temperature")] == 1.5
    assert state[cs.override_key("demo:gpt-5", "max_tokens")] is None
    assert state[cs.override_key("demo:gpt-5-nano", "max_tokens")] is None


def test_loading_a_prompt_starts_a_fresh_conversation_and_keeps_models_and_parameters() -> None:
    state: dict[str, Any] = {cs.MODELS: ["demo:gpt-5"], cs.TEMPERATURE: 0.7}
    cs.set_turns(state, [Message("user", "old"), Message("assistant", "older")])
    cs.load_prompt(state, "sys", (Message("user", "new"),))
    assert (state[cs.SYSTEM], state[cs.PROMPT]) == ("sys", "new")
    assert contents(state) == []
    assert (state[cs.MODELS], state[cs.TEMPERATURE]) == (["demo:gpt-5"], 0.7)
