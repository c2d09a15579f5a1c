"""Untrusted text made safe to store and to show: NUL characters and markdown syntax.

PostgreSQL ``text`` and ``jsonb`` refuse the NUL character (SQLite keeps it), so text a
user typed is refused with a clear message before anything is written, and text from
elsewhere (a model's answer) has it replaced. Streamlit renders markdown in labels,
captions and headers: a name or title another user chose is escaped there, so it shows
as typed and cannot become a link or an image that loads from someone else's server.
"""

from __future__ import annotations

import re

from playground.errors import InvalidRequestError

NUL = "\x00"
REPLACEMENT = "\ufffd"
# CommonMark backslash-escapes any ASCII punctuation; these build links, images, HTML,
# emphasis, code, math and Streamlit's :colour[]; an escaped ":" or "www\." is no bare URL
# for GFM to link. (A "#" or "-" at a line start only changes the look.)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]()<>!~$:]|(?<=\bwww)\.)", re.IGNORECASE)


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
