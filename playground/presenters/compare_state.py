"""The Compare page's editable state, kept in a session-state mapping (``st.session_state``).

Earlier turns have stable ids, and each turn's role and text live under keys made from
that id, so a widget's value follows its turn when turns are reordered or removed.
Every function takes the mapping, which keeps them testable with a plain ``dict``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from playground.presenters.compare import continue_with, moved, option_key
from playground.providers.base import GenerationParams, Message, Role
from playground.results import CompareRequest
from playground.templates import PromptTemplate, render_for_compare

SYSTEM = "compare.system"
PROMPT = "compare.prompt"
MODELS = "compare.models"
TEMPERATURE = "compare.temperature"
MAX_TOKENS = "compare.max_tokens"
USE_CACHE = "compare.use_cache"
TURNS = "compare.turns"
NEXT_TURN = "compare.next_turn"

State = MutableMapping[Any, Any]

# What a turn's action control offers (see :func:`turn_actions`).
SWITCH_ROLE = "switch_role"
MOVE_UP = "up"
MOVE_DOWN = "down"
REMOVE = "remove"

# The keys of everything typed or picked in the editor: what a reload must bring back.
DRAFT_KEYS = (
    *(
        re.compile(re.escape(key))
        for key in (SYSTEM, PROMPT, MODELS, TEMPERATURE, MAX_TOKENS, USE_CACHE, TURNS, NEXT_TURN)
    ),
    re.compile(r"compare\.turn\.\d+\.(role|content)"),
    re.compile(r"compare\.override\..+\.(temperature|max_tokens)"),
)


def turn_key(turn_id: int, field: str) -> str:
    """The state key of a turn's ``role`` or ``content`` widget."""
    return f"compare.turn.{turn_id}.{field}"


def action_key(turn_id: int) -> str:
    """The state key of a turn's action control (a press, not part of the draft)."""
    return f"compare.turn.{turn_id}.action"


def override_key(option: str, field: str) -> str:
    """The state key of a model's ``temperature`` or ``max_tokens`` override widget."""
    return f"compare.override.{option}.{field}"


def turn_ids(state: State) -> list[int]:
    """The ids of the earlier turns, in conversation order."""
    ids: list[int] = state.setdefault(TURNS, [])
    return ids


def turn_role(state: State, turn_id: int) -> Role:
    """The role of the turn ``turn_id`` (``user`` until one is set)."""
    role: Role = state.get(turn_key(turn_id, "role"), "user")
    return role


def turns(state: State) -> list[Message]:
    """The earlier turns as messages, in order."""
    return [
        Message(turn_role(state, t), state.get(turn_key(t, "content"), "")) for t in turn_ids(state)
    ]


def _new_turn(state: State, message: Message) -> int:
    turn_id = int(state.get(NEXT_TURN, 0))
    state[NEXT_TURN] = turn_id + 1
    state[turn_key(turn_id, "role")] = message.role
    state[turn_key(turn_id, "content")] = message.content
    return turn_id


def _forget_turn(state: State, turn_id: int) -> None:
    for field in ("role", "content"):
        state.pop(turn_key(turn_id, field), None)
    state.pop(action_key(turn_id), None)


def set_turns(state: State, messages: tuple[Message, ...] | list[Message]) -> None:
    """Replace the earlier turns with ``messages``."""
    for turn_id in turn_ids(state):
        _forget_turn(state, turn_id)
    state[TURNS] = [_new_turn(state, message) for message in messages]


def add_turn(state: State, role: Role) -> None:
    """Append an empty turn."""
    state[TURNS] = [*turn_ids(state), _new_turn(state, Message(role, ""))]


def move_turn(state: State, position: int, offset: int) -> None:
    """Move the turn at ``position`` up (``-1``) or down (``+1``)."""
    state[TURNS] = moved(turn_ids(state), position, offset)


def remove_turn(state: State, position: int) -> None:
    """Delete the turn at ``position``."""
    ids = list(turn_ids(state))
    _forget_turn(state, ids.pop(position))
    state[TURNS] = ids


def turn_actions(position: int, count: int) -> list[str]:
    """The actions of the turn at ``position`` of ``count``: a move that would go past
    either end is not offered."""
    moves = [MOVE_UP] * (position > 0) + [MOVE_DOWN] * (position < count - 1)
    return [SWITCH_ROLE, *moves, REMOVE]


def act_on_turn(state: State, turn_id: int, action: str | None) -> None:
    """Do ``action`` (one of :func:`turn_actions`) to the turn ``turn_id``; the control
    that asked is cleared, ready for the next press. A turn no longer there is left alone."""
    ids = turn_ids(state)
    if turn_id not in ids:
        state.pop(action_key(turn_id), None)
        return
    state[action_key(turn_id)] = None
    position = ids.index(turn_id)
    if action == SWITCH_ROLE:
        switched = "user" if turn_role(state, turn_id) == "assistant" else "assistant"
        state[turn_key(turn_id, "role")] = switched
    elif action in (MOVE_UP, MOVE_DOWN):
        move_turn(state, position, -1 if action == MOVE_UP else 1)
    elif action == REMOVE:
        remove_turn(state, position)


def continue_conversation(state: State, answer: str) -> None:
    """Keep ``answer``: the prompt and the answer become turns, the prompt box empties."""
    set_turns(state, continue_with(turns(state), state.get(PROMPT, ""), answer))
    state[PROMPT] = ""


def load_prompt(state: State, system_prompt: str, messages: tuple[Message, ...]) -> None:
    """Fill the system prompt, the earlier turns and the prompt box (the last message).

    The picked models, parameters and cache choice stay as they are.
    """
    set_turns(state, messages[:-1])
    state[SYSTEM] = system_prompt
    state[PROMPT] = messages[-1].content


def load_request(state: State, request: CompareRequest, known_options: set[str]) -> None:
    """Fill the editor from an earlier comparison (models no longer offered are left out).

    The prompt, turns, models, shared and per-model parameters and the cache choice all
    come back, so pressing Run sends the same request again.
    """
    load_prompt(state, request.system_prompt, request.messages)
    state[TEMPERATURE] = request.params.temperature
    state[MAX_TOKENS] = request.params.max_tokens
    state[USE_CACHE] = request.use_cache
    picked = []
    for target in request.targets:
        key = option_key(target.provider, target.model)
        if key not in known_options:
            continue
        picked.append(key)
        params = target.params or GenerationParams()
        state[override_key(key, "temperature")] = params.temperature
        state[override_key(key, "max_tokens")] = params.max_tokens
    state[MODELS] = picked


def load_into_compare(
    state: State, template: PromptTemplate, values: Mapping[str, Any] | None
) -> None:
    """Put the template, filled with ``values`` (``None``: raw), in the Compare editor.

    It becomes a fresh conversation (earlier turns cleared); the models and parameters
    picked on Compare stay, ready for Run. Raises :class:`TemplateError` (see
    :func:`render_for_compare`) and then leaves the editor unchanged.
    """
    prompt = render_for_compare(template, values)
    load_prompt(state, prompt.system, (Message("user", prompt.user),))
