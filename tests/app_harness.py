"""Driving the Streamlit app in-process with ``AppTest``: open a page, click, wait for a run."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from playground.runner import ColumnRef
from playground.services import compare

APP = Path(__file__).resolve().parents[1] / "app.py"
RUN_TIMEOUT_S = 10.0
# A keyed block's id: "$$ID-<hash>-<key>" (st.expander, st.popover with key=…).
_KEYED_BLOCK = re.compile(r"^\$\$ID-[0-9a-f]+-(.+)$")


SIX_MODELS = [
    f"elumenta:{slug}"
    for slug in (
        "gpt-5-nano",
        "gpt-5",
        "claude-haiku-4.5",
        "gemini-2.5-flash",
        "deepseek-v3",
        "grok-4-fast",
    )
]
"""Six Elumenta models in the picker's keys: a full grid of two rows of three."""


def open_page(page: str = "pages/compare.py") -> AppTest:
    """The app, run once through ``app.py`` (sidebar and router) and switched to ``page``."""
    at = AppTest.from_file(str(APP), default_timeout=RUN_TIMEOUT_S).run()
    if page != "pages/compare.py":
        at.switch_page(page).run()
    return at


def click(at: AppTest, label: str, index: int = 0) -> AppTest:
    """Click the ``index``-th button labelled ``label`` and rerun."""
    buttons = [b for b in at.button if b.label == label]
    assert buttons, f"no button {label!r}; have {[b.label for b in at.button]}"
    return buttons[index].click().run()


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Open the tab ``label`` of the ``st.tabs`` keyed ``key`` and rerun.

    AppTest cannot click a tab; tabs with ``on_change="rerun"`` read the open one from
    the session state, as after a click.
    """
    at.session_state[key] = label
    return at.run()


def open_blocks(at: AppTest, pattern: str) -> AppTest:
    """Open every keyed expander and popover whose key matches ``pattern`` and rerun.

    AppTest cannot click them; those drawn with ``on_change="rerun"`` (content drawn only
    while open) read their state from the session state, as after a click.
    """
    keys = [key for key in _block_keys(at._tree) if re.search(pattern, key)]
    assert keys, f"no expander or popover keyed like {pattern!r}"
    for key in keys:
        at.session_state[key] = True
    return at.run()


def _block_keys(node: Block) -> Iterator[str]:
    for child in node.children.values():
        if isinstance(child, Block):
            keyed = _KEYED_BLOCK.match(getattr(child, "_block_id", None) or "")
            if keyed:
                yield keyed.group(1)
            yield from _block_keys(child)


def texts(at: AppTest | Block, kind: str) -> list[str]:
    """The values of every element of ``kind`` (``error``, ``warning``, ``markdown``…)."""
    return [str(element.value) for element in getattr(at, kind)]


def run_until_done(at: AppTest, timeout: float = RUN_TIMEOUT_S) -> AppTest:
    """Rerun the page until every column of the current comparison is final.

    AppTest does not run ``run_every`` fragments on its own, so this plays the timer.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        columns: list[ColumnRef] = at.session_state["compare.columns"]
        state = compare.column_results(columns)
        assert state is not None, "the run was forgotten"
        if state[1]:
            return at.run()
        time.sleep(0.05)
        at.run()
    raise AssertionError("the comparison did not finish in time")


def run_compare(at: AppTest, prompt: str, models: list[str]) -> AppTest:
    """On the Compare page: type ``prompt``, pick ``models`` (``provider:slug``), run, wait."""
    if at.title[0].value != "Compare models":
        at.switch_page("pages/compare.py").run()
    at.text_area(key="compare.prompt").set_value(prompt)
    at.multiselect(key="compare.models").set_value(models)
    click(at.run(), "Run")
    return run_until_done(at)
