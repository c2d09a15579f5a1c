"""Showing secrets without revealing them: masked API keys and database URLs."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_VISIBLE_SUFFIX = 4
_KNOWN_PREFIXES = ("nb_", "sk-")
_MASK = "***"


def mask_secret(secret: SecretStr | str | None) -> str:
    """A hint that a key is set, like ``nb_…a1b2``: a known prefix and the last 4 characters.

    Short keys show no characters at all, so the hint never gives away most of a key.
    """
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    if not value:
        return "not set"
    prefix = next((p for p in _KNOWN_PREFIXES if value.startswith(p)), "")
    if len(value) < len(prefix) + 3 * _VISIBLE_SUFFIX:
        return f"{prefix}…" if prefix else "set (hidden)"
    return f"{prefix}…{value[-_VISIBLE_SUFFIX:]}"


def mask_url(url: str) -> str:
    """``url`` with any password (also a ``?password=`` option) replaced by ``***``.

    Unparseable URLs are hidden entirely.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "(unparseable URL hidden)"
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": _MASK})
    return parsed.render_as_string(hide_password=True)


class SecretUrl(SecretStr):
    """A database URL whose ``repr``/``str`` show it with the password masked (:func:`mask_url`).

    Read the real URL with ``get_secret_value()``; JSON dumps show ``**********``.
    """

    def _display(self) -> str:
        return mask_url(self.get_secret_value())
