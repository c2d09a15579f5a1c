"""Bring the result columns into view when a run starts: below the editor they begin under
the fold of a laptop screen, and the answers streaming there would go unseen."""

from __future__ import annotations

import streamlit as st

# Runs in the page's own DOM: scroll the first result column to the top of the view once
# it is laid out. Nothing from the run is passed in, only a fixed selector.
_JS = """
export default function ({ data }) {
  requestAnimationFrame(() => {
    document.querySelector(data.selector)?.scrollIntoView({ block: "start", behavior: "smooth" });
  });
}
"""

_component = st.components.v2.component("playground.scroll_into_view", js=_JS)


def scroll_into_view(selector: str, key: str) -> None:
    """Scroll the element matching ``selector`` into view, once per ``key``."""
    _component(key=key, data={"selector": selector})
