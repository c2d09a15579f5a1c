"""Untrusted text: NUL characters refused or replaced, markdown escaped where pages show names,
titles and notes that someone else may have chosen (History, the sidebar, Admin), and the
images in a model's answer made inert (its code left exactly as written)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token
from streamlit.testing.v1 import AppTest

from playground.errors import InvalidRequestError
from playground.providers.base import Message
from playground.results import CompareRequest, ModelTarget
from playground.safe_text import (
    escape_markdown,
    inert_images,
    inline_code,
    reject_nul,
    replace_nul,
)
from playground.services import compare, hosted, runtime
from tests.app_harness import APP, click, texts

IMAGE = "![pixel](http://127.0.0.1:9/pixel.png)"
LINK = "[click me](http://evil.example/login)"
BARE_URLS = "https://evil.example/bare www.evil.example"
HOSTILE = f"{IMAGE} {LINK} **bold** _it_ `code` <b>html</b> ~~gone~~ $x^2$ :red[red] {BARE_URLS}"
# What makes markdown live: an image or link, emphasis, code, HTML, math or a bare URL.
LIVE_MARKDOWN = re.compile(r"(?<!\\)(!?\[|[*_`~$<:])|www\.", re.IGNORECASE)


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@pytest.mark.parametrize(
    "text",
    [HOSTILE, "plain words", "", "a\\b", "Café — ünïcode ✓", "1. # heading\n- item", "C:\\path\\"],
)
def test_escaped_markdown_reads_back_as_typed_and_has_nothing_live(text: str) -> None:
    escaped = escape_markdown(text)
    assert unescape(escaped) == text
    assert not LIVE_MARKDOWN.search(escaped), escaped


def test_plain_text_is_left_alone() -> None:
    assert escape_markdown("GPT-5 was clearer, 2.5x faster. #1 + 2 = 3") == (
        "GPT-5 was clearer, 2.5x faster. #1 + 2 = 3"
    )


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("db", "`db`"),
        ("a`b", "``a`b``"),
        ("`x`", "`` `x` ``"),
        (f"x`{IMAGE}`y", f"``x`{IMAGE}`y``"),
        ("two\nlines", "`two lines`"),
    ],
)
def test_inline_code_cannot_be_closed_from_inside(text: str, span: str) -> None:
    assert inline_code(text) == span


def test_nul_is_refused_with_a_message_naming_the_field() -> None:
    assert reject_nul("fine\ttext", "The note") == "fine\ttext"
    with pytest.raises(InvalidRequestError, match=r"The note contains a NUL character \(\\x00\)"):
        reject_nul("bad\x00text", "The note")


def test_nul_is_replaced_by_the_replacement_character() -> None:
    assert replace_nul("a\x00b\x00") == "a\ufffdb\ufffd"
    assert replace_nul("clean") == "clean"


# --- images in an answer ---------------------------------------------------------------------

LEAK = "http://203.0.113.9/leak.png?q=secret"
IMAGE_FORMS = {
    "inline": f"![x]({LEAK})",
    "inline with a title": f'![x]({LEAK} "t")',
    "angle brackets": f"![x](<{LEAK}>)",
    "full reference": f"![x][r]\n\n[r]: {LEAK}",
    "collapsed reference": f"![r][]\n\n[r]: {LEAK}",
    "shortcut reference": f"![r]\n\n[r]: {LEAK}",
    "inside a link (a badge)": f"[![x]({LEAK})](http://example.org)",
    "inside an image's alt": f"![a ![b]({LEAK})](http://example.org/c.png)",
    "list item": f"- one\n- ![x]({LEAK})",
    "block quote": f"> > ![x]({LEAK})",
    "heading": f"## ![x]({LEAK})",
    "table cell": f"| a | b |\n|---|---|\n| `code` | ![x]({LEAK}) |",
    "after an escaped backslash": f"\\\\![x]({LEAK})",
    "after a code span": f"`vec![1]` ![x]({LEAK})",
    "after a fence": f"```\n![kept](u)\n```\n![x]({LEAK})",
}
CODE = {
    "code span": "Use `vec![1, 2]` or ``a ` ![x](http://h/p.png) ``.",
    "fence": "```rust\nlet v = vec![1, 2];\n![x](http://h/p.png)\n```",
    "tilde fence with an info string": "~~~md ![i]\n![x][r]\n~~~\n\n[r]: http://h/p.png",
    "indented code": "Text:\n\n    ![x](http://h/p.png)\n    vec![0; 3]",
    "fence in a list": "1. step\n\n   ```\n   ![x](http://h/p.png)\n   ```",
    "code in a table cell": "| a |\n|---|\n| `![x](http://h/p.png)` |",
    "unclosed fence": "```\n![x](http://h/p.png)",
}
PLAIN = {
    "link": "[click](http://example.org/page) and <http://example.org/auto>",
    "escaped image": "\\![x](http://example.org/a.png) is a ! and a link",
    "bang before a word": "Wow! [see](http://example.org) !not an image",
    "html": '<img src="http://h/p.png"> stays for Streamlit to drop',
    "nothing": "Plain **bold** _text_.",
}
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def tokens(markdown: str) -> list[Token]:
    """Every token, inline ones and those in link texts and image alts included."""
    found: list[Token] = []
    pending = _PARSER.parse(markdown)
    while pending:
        token = pending.pop(0)
        found.append(token)
        pending[:0] = token.children or []
    return found


def code_of(markdown: str) -> list[tuple[str, str, str]]:
    return [
        (t.type, t.info, t.content)
        for t in tokens(markdown)
        if t.type in ("fence", "code_block", "code_inline")
    ]


@pytest.mark.parametrize("markdown", IMAGE_FORMS.values(), ids=IMAGE_FORMS.keys())
def test_every_form_of_image_is_shown_as_its_text(markdown: str) -> None:
    assert [t for t in tokens(markdown) if t.type == "image"], "the example is an image"
    inert = inert_images(markdown)
    assert [t for t in tokens(inert) if t.type == "image"] == []
    assert inert.replace("!\\[", "![") == markdown
    assert code_of(inert) == code_of(markdown)


@pytest.mark.parametrize("markdown", CODE.values(), ids=CODE.keys())
def test_code_blocks_and_spans_stay_exactly_as_written(markdown: str) -> None:
    assert inert_images(markdown) == markdown


@pytest.mark.parametrize("markdown", PLAIN.values(), ids=PLAIN.keys())
def test_links_and_text_without_images_are_unchanged(markdown: str) -> None:
    assert inert_images(markdown) == markdown


def test_code_and_images_in_one_answer() -> None:
    answer = f"Run `v![0]`:\n\n```\n![a](b)\n```\n\nThen ![chart]({LEAK}) and [docs](http://x.org)."
    assert inert_images(answer) == answer.replace("![chart]", "!\\[chart]")


def test_a_private_use_character_in_the_answer_cannot_pass_for_a_marker() -> None:
    forged = "".join(chr(0xE000 + i) for i in range(3)) + "0"
    answer = f"`\ue0000\ue000 {forged}` ![x]({LEAK})"
    assert [t for t in tokens(inert_images(answer)) if t.type == "image"] == []


# Characters that build images, links, code, containers and escapes, and some plain ones.
_MARKDOWN_PIECES = st.lists(
    st.sampled_from([*"![]()`~\\<>:|-*_# \t\nx1", "    ", "```", "http://h/"]), max_size=40
).map("".join)


@given(_MARKDOWN_PIECES)
def test_no_image_survives_and_code_is_untouched_for_any_text(markdown: str) -> None:
    inert = inert_images(markdown)
    assert [t for t in tokens(inert) if t.type == "image"] == []
    assert code_of(inert) == code_of(markdown)
    assert inert_images(inert) == inert


# --- the pages ----------------------------------------------------------------------------


def test_history_shows_a_hostile_title_note_and_tag_as_text(app_env: Path) -> None:
    request = CompareRequest(
        messages=(Message("user", "Hello"),),
        targets=(ModelTarget("demo", "gpt-5-nano"),),
        title=HOSTILE,
        note=f"See {IMAGE}",
        tags=(f"x`{IMAGE}`y",),
    )
    run = compare.start_compare(request, runtime.connection_from()).wait(30)
    at = AppTest.from_file(str(APP), default_timeout=10).run()
    at.switch_page("pages/history.py").run()
    at.session_state["history.open"] = run.comparison_id
    at.run()

    assert not at.exception
    assert texts(at, "subheader") == [escape_markdown(HOSTILE)]
    assert f"Note: See {escape_markdown(IMAGE)}" in texts(at, "caption")
    assert any(f"tags ``x`{IMAGE}`y``" in line for line in texts(at, "markdown"))


@pytest.fixture
def signed_in_admin(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """The app in OIDC mode, signed in as an admin whose display name is hostile markdown."""
    monkeypatch.setenv("PLAYGROUND_AUTH", "oidc")
    monkeypatch.setenv("PLAYGROUND_ADMIN_EMAILS", "ana@example.org")
    runtime.reset()
    at = AppTest.from_file(str(APP), default_timeout=10)
    at.user = {
        "is_logged_in": True,
        "email": "ana@example.org",
        "name": HOSTILE,
        "sub": "ana",
        "iss": "https://idp.example",
    }
    yield at.run()
    runtime.reset()


def test_hostile_display_and_workspace_names_are_escaped_in_the_sidebar_and_on_admin(
    signed_in_admin: AppTest,
) -> None:
    at = signed_in_admin
    assert not at.exception
    signed_in = [t for t in texts(at.sidebar, "markdown") if t.startswith("**Signed in:**")]
    assert signed_in == [f"**Signed in:** {escape_markdown(HOSTILE)} · admin"]

    admin = hosted.sign_in_user(hosted.oidc_identity(dict(at.user)))
    hosted.add_workspace(admin, HOSTILE)
    at.switch_page("pages/admin.py").run()

    assert not at.exception
    labels = [expander.label for expander in at.expander]
    assert f"{escape_markdown(HOSTILE)} · 0 member(s)" in labels

    box = next(w for w in at.text_input if w.label == "New workspace")
    box.set_value(IMAGE)
    click(at, "Create workspace")

    assert not at.exception
    assert [t.value for t in at.toast] == [f"Workspace {escape_markdown(IMAGE)} created."]
