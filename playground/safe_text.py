"""Untrusted text made safe to store, to show and to export: NUL characters, markdown
syntax, and spreadsheet formulas.

PostgreSQL ``text`` and ``jsonb`` refuse the NUL character (SQLite keeps it), so text a
user typed is refused with a clear message before anything is written, and text from
elsewhere (a model's answer) has it replaced. Streamlit renders markdown in labels,
captions and headers: a name or title another user chose is escaped there, so it shows
as typed and cannot become a link or an image that loads from someone else's server.
A model's answer keeps its markdown, but every image in it is shown as text: the browser
would otherwise fetch the image's address as soon as the answer is drawn.
A CSV cell that a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``@SUM(...)``)
gets a leading quote, so a prompt or an answer cannot run code on the reader's machine.
"""

from __future__ import annotations

import re
from functools import cache
from itertools import chain
from typing import TYPE_CHECKING

from playground.errors import InvalidRequestError

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

NUL = "\x00"
REPLACEMENT = "\ufffd"
# CommonMark backslash-escapes any ASCII punctuation; these build links, images, HTML,
# emphasis, code, math and Streamlit's :colour[]; an escaped ":" or "www\." is no bare URL
# for GFM to link. (A "#" or "-" at a line start only changes the look.)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()<>!~$:]|(?<=\bwww)\.)", re.IGNORECASE)
# Every image starts with "![" ("![alt](url)", "![alt][ref]", "![ref]"); an escaped "!" or
# "\\" pair is consumed first, so "\\![x](u)" (a "!" and a link) is no image opener.
_IMAGE_OPENER = re.compile(r"\\.|!\[", re.DOTALL)
_CODE_TOKENS = frozenset({"fence", "code_block", "code_inline"})


def reject_nul(text: str, what: str) -> str:
    """``text`` unchanged; :class:`InvalidRequestError` naming ``what`` if it has a NUL."""
    if NUL in text:
        raise InvalidRequestError(
            f"{what} contains a NUL character (\\x00), which cannot be sent or stored. "
            "Remove it (it usually comes from pasting binary data)."
        )
    return text


def replace_nul(text: str) -> str:
    """``text`` with every NUL character replaced by U+FFFD, so any database stores it."""
    return text.replace(NUL, REPLACEMENT) if NUL in text else text


def escape_markdown(text: str) -> str:
    """``text`` with markdown syntax backslash-escaped, so Streamlit shows it literally.

    Removing each escaping backslash gives ``text`` back.
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def inline_code(text: str) -> str:
    """``text`` as a markdown code span that no backtick inside it can end early."""
    text = " ".join(text.splitlines())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{padding}{text}{padding}{fence}"


def inert_images(markdown: str) -> str:
    """``markdown`` with every image shown as text instead of loaded from its address.

    Each image's ``![`` becomes ``!\\[``, which renders as the ``![…](…)`` the model wrote
    (its address readable, a bare URL at most a link to click). Code blocks, fenced or
    indented, and inline code spans are left exactly as they are (``vec![1]`` stays), and
    so is everything else: links, emphasis, HTML (Streamlit does not render it). Applying
    it twice changes nothing more.
    """
    openers = [m.start() for m in _IMAGE_OPENER.finditer(markdown) if m.group() == "!["]
    if not openers:
        return markdown
    in_code = _openers_in_code(markdown, openers)
    pieces, start = [], 0
    for number, at in enumerate(openers):
        if number not in in_code:
            pieces += [markdown[start : at + 1], "\\"]
            start = at + 1
    return "".join([*pieces, markdown[start:]])


def _openers_in_code(markdown: str, openers: list[int]) -> set[int]:
    """Numbers (indexes into ``openers``) of the ``![`` that lie in code.

    The text is parsed with each opener already escaped as the result will have it, plus
    a numbered marker inside: the markers that come back in a code token's text are the
    openers in code. Escaping one opener never moves a code span (only backticks and line
    starts do), so this is where they lie in the result too.
    """
    marker = _unused_character(markdown)
    pieces, start = [], 0
    for number, at in enumerate(openers):
        pieces += [markdown[start : at + 1], f"{marker}{number}{marker}\\"]
        start = at + 1
    marked = "".join([*pieces, markdown[start:]])
    found = re.compile(f"{marker}(\\d+){marker}")
    code = (
        f"{token.info}\n{token.content}"
        for block in _markdown().parse(marked)
        for token in chain((block,), block.children or ())
        if token.type in _CODE_TOKENS
    )
    return {int(number) for text in code for number in found.findall(text)}


@cache
def _markdown() -> MarkdownIt:
    """CommonMark plus GFM tables (which decide where a code span in a row ends), as
    Streamlit. Built on first use: the command line never parses markdown, and importing
    markdown-it costs its start-up (an eval's time to first request) ~50 ms."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _unused_character(text: str) -> str:
    """A private-use character that ``text`` does not contain (so it cannot fake a marker)."""
    used = set(text)
    private = chain(range(0xE000, 0xF900), range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE))
    return next(chr(code) for code in private if chr(code) not in used)


# OWASP's list: a spreadsheet treats a cell starting with one of these as a formula (or,
# for tab and carriage return, strips them and looks at what follows).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """``value`` for a CSV cell: text a spreadsheet would run as a formula gets a leading ``'``.

    Only strings change; numbers (a negative one included) are written as they are.
    """
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value
