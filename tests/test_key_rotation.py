"""Changing the server secret without losing the personal keys saved under the old one.

``PLAYGROUND_SECRET_KEY`` encrypts, ``PLAYGROUND_OLD_SECRET_KEYS`` still decrypt, and
``python -m playground keys rotate`` re-encrypts every saved key with the new secret. A key
none of them opens is a clear message, never a traceback. SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pydantic import SecretStr

from playground.access import Identity, Principal
from playground.access.audit import list_events
from playground.access.keys import KeyVault
from playground.access.users import (
    get_user,
    personal_key,
    rotate_personal_keys,
    save_personal_key,
    sign_in,
)
from playground.cli.main import main
from playground.config import Settings
from playground.errors import ConfigError
from playground.services import runtime
from playground.store import Store
from tests.app_harness import texts
from tests.hosted_fixtures import open_page_as, signed_in, team_settings

OLD = SecretStr("the-old-server-secret-0123456789")
NEW = SecretStr("the-new-server-secret-9876543210")
LOST = SecretStr("a-secret-nobody-kept-any-more-00")
KEYS = {
    "ana@example.org": "nb_ana_personal_key_0000_a1b2",
    "bob@example.org": "nb_bob_personal_key_0000_c3d4",
}
UNREADABLE = "cannot be decrypted (the server secret changed"


def save_keys(store: Store, secret: SecretStr, keys: dict[str, str]) -> dict[str, Principal]:
    """Each e-mail signed in with its key saved under ``secret``."""
    people = {}
    with store.session() as session, session.begin():
        for email, key in keys.items():
            person = sign_in(session, Identity(email, email, email), team_settings())
            save_personal_key(session, person, KeyVault(secret), SecretStr(key))
            people[email] = person
    return people


def opened_keys(store: Store, people: dict[str, Principal], vault: KeyVault) -> dict[str, str]:
    """Each person's saved key as ``vault`` opens it."""
    with store.session() as session, session.begin():
        return {
            email: personal_key(session, person, vault).get_secret_value()  # type: ignore[union-attr]
            for email, person in people.items()
        }


def test_old_secrets_decrypt_and_the_new_one_encrypts() -> None:
    token, _ = KeyVault(OLD).seal(SecretStr(KEYS["ana@example.org"]))
    rotating = KeyVault(NEW, [LOST, OLD])
    assert rotating.open(token).get_secret_value() == KEYS["ana@example.org"]

    fresh, _ = rotating.seal(SecretStr(KEYS["bob@example.org"]))
    assert KeyVault(NEW).open(fresh).get_secret_value() == KEYS["bob@example.org"]
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        KeyVault(OLD).open(fresh)


def test_the_old_secrets_setting_is_a_comma_list() -> None:
    settings = Settings(_env_file=None, old_secret_keys=f" {OLD.get_secret_value()} ,, x-y ")  # type: ignore[call-arg]
    assert [s.get_secret_value() for s in settings.old_secret_key_list] == [
        OLD.get_secret_value(),
        "x-y",
    ]
    assert OLD.get_secret_value() not in repr(settings)
    assert Settings(_env_file=None).old_secret_key_list == []  # type: ignore[call-arg]


def test_rotation_re_encrypts_every_readable_key_and_names_the_rest(store: Store) -> None:
    people = save_keys(store, OLD, KEYS)
    lost = save_keys(store, LOST, {"cat@example.org": "nb_cat_personal_key_0000_e5f6"})
    with store.session() as session, session.begin():
        cats_token = get_user(session, lost["cat@example.org"].user_id).api_key_encrypted
        hints = {e: get_user(session, p.user_id).api_key_hint for e, p in people.items()}

    with store.session() as session, session.begin():
        rotation = rotate_personal_keys(session, KeyVault(NEW, [OLD]))

    assert (rotation.rotated, rotation.unreadable) == (2, ("cat@example.org",))
    assert opened_keys(store, people, KeyVault(NEW)) == KEYS  # the old secret is not needed
    with store.session() as session, session.begin():
        assert get_user(session, lost["cat@example.org"].user_id).api_key_encrypted == cats_token
        assert {e: get_user(session, p.user_id).api_key_hint for e, p in people.items()} == hints
        with pytest.raises(ConfigError, match="cannot be decrypted"):
            personal_key(session, lost["cat@example.org"], KeyVault(NEW, [OLD]))


def test_the_rotate_command_re_encrypts_and_says_what_is_left(store_url: str, store: Store) -> None:
    people = save_keys(store, OLD, KEYS)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=store_url,
        secret_key=NEW,
        old_secret_keys=OLD.get_secret_value(),
    )
    out, err = io.StringIO(), io.StringIO()
    assert main(["keys", "rotate"], settings=settings, out=out, err=err) == 0
    assert "Re-encrypted 2 saved personal key(s)" in out.getvalue()
    assert "remove PLAYGROUND_OLD_SECRET_KEYS" in out.getvalue()
    assert opened_keys(store, people, KeyVault(NEW)) == KEYS

    save_keys(store, LOST, {"cat@example.org": "nb_cat_personal_key_0000_e5f6"})
    out = io.StringIO()
    assert main(["keys", "rotate"], settings=settings, out=out, err=err) == 1
    printed = out.getvalue() + err.getvalue()
    assert "1 saved key(s) open with none of the configured secrets (cat@example.org)" in printed
    assert "Traceback" not in printed
    for secret in (*KEYS.values(), NEW.get_secret_value(), OLD.get_secret_value()):
        assert secret not in printed
    with store.session() as session, session.begin():
        events = [e for e in list_events(session) if e.action == "keys.rotated"]
    assert len(events) == 2


def test_the_rotate_command_without_a_secret_is_a_clear_error(store_url: str) -> None:
    settings = Settings(_env_file=None, database_url=store_url)  # type: ignore[call-arg]
    out, err = io.StringIO(), io.StringIO()
    assert main(["keys", "rotate"], settings=settings, out=out, err=err) == 1
    assert err.getvalue().startswith("error: Personal API keys need PLAYGROUND_SECRET_KEY")


@pytest.fixture
def hosted_app(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Principal:
    """The app (its own SQLite) with ana's key saved under ``OLD``; the secret now ``NEW``."""
    store = runtime.get_store()
    ana = signed_in(store, "ana@example.org")
    with store.session() as session, session.begin():
        save_personal_key(session, ana, KeyVault(OLD), SecretStr(KEYS["ana@example.org"]))
    monkeypatch.setenv("PLAYGROUND_SECRET_KEY", NEW.get_secret_value())
    runtime.reset()
    return ana


def test_a_key_saved_under_an_old_secret_still_runs(
    hosted_app: Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_OLD_SECRET_KEYS", OLD.get_secret_value())
    runtime.reset()
    at = open_page_as("pages/settings.py", hosted_app)
    assert not at.exception and not texts(at, "error")
    assert any("your personal key" in t for t in texts(at, "markdown"))


def test_a_key_no_secret_opens_is_a_message_not_a_traceback(hosted_app: Principal) -> None:
    runtime.reset()
    for page in ("pages/compare.py", "pages/settings.py"):
        at = open_page_as(page, hosted_app)
        assert not at.exception, page
        assert any(UNREADABLE in e and "enter it again" in e for e in texts(at, "error")), page
    # Settings still offers to save the key again.
    assert any(t.label == "Personal Elumenta API key" for t in at.text_input)
    with runtime.get_store().session() as session, session.begin():
        # The token stays for a rotation with the right secret; only the user replaces it.
        assert get_user(session, hosted_app.user_id).api_key_encrypted
