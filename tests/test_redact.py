"""Masked keys and URLs never reveal the secret."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from playground.redact import mask_secret, mask_url


@pytest.mark.parametrize(
    ("secret", "shown"),
    [
        (SecretStr("nb_live_0123456789a1b2"), "nb_…a1b2"),
        ("sk-proj-abcdefghijkl9f3c", "sk-…9f3c"),
        ("plainsecretvalue1234", "…1234"),
        ("nb_short", "nb_…"),
        ("tiny", "set (hidden)"),
        (None, "not set"),
        (SecretStr(""), "not set"),
    ],
)
def test_mask_secret_shows_at_most_a_prefix_and_four_characters(
    secret: SecretStr | str | None, shown: str
) -> None:
    assert mask_secret(secret) == shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://app:hunter2@db:5432/pg", "postgresql+psycopg://app:***@db:5432/pg"),
        (
            "sqlite:////home/me/.elumenta-playground/h.sqlite3",
            "sqlite:////home/me/.elumenta-playground/h.sqlite3",
        ),
        (
            "postgresql+psycopg://app@db/pg?password=hunter2&sslmode=require",
            "postgresql+psycopg://app@db/pg?password=%2A%2A%2A&sslmode=require",
        ),
        ("not a url", "(unparseable URL hidden)"),
    ],
)
def test_mask_url_hides_the_password(url: str, shown: str) -> None:
    assert mask_url(url) == shown
