"""API keys never leak: not into logs (httpx/httpcore at DEBUG included), error messages, the
page, the CLI's output or any database row, when the API rejects the key (401) or fails
(500), through the CLI's ``main()``, the app in AppTest, and hosted users' personal keys.

Each test first checks the key really was sent (the fake server saw it), so a run that never
used the key cannot pass by accident. The tests share one PostgreSQL schema (the hosted
deployment's database): a key any of them stored would show in every later dump.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from pydantic import SecretStr
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from playground.access import Identity
from playground.access.keys import KeyVault
from playground.cli.main import main
from playground.errors import ConfigError
from playground.providers.base import Message
from playground.results import CompareRequest, ModelTarget
from playground.services import compare, hosted, runtime
from tests.app_harness import click, open_page, run_compare
from tests.fake_elumenta import FakeElumenta, ModelScript

SECRET = "nb_leakcheck_7Qx9" + "Zr4Kp2Wm" * 4
# A masked hint may show the prefix and the last four characters; never anything between.
SECRET_MIDDLE = SECRET[3:-4]
SERVER_SECRET = "server-secret-for-personal-keys-0123456789"
PROXY_SECRET = "proxy-secret-nginx-sends-0123456789"
FAILURES = {
    "401": ("not_authenticated", None),
    "500": ("provider_error", ModelScript(status=500)),
}


def assert_no_secret(where: str, text: str) -> None:
    assert SECRET_MIDDLE not in text, f"the API key leaked into {where}"


def database_dump(url: str) -> str:
    """Every row of every table, as text."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return ""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return "\n".join(
                repr(tuple(row))
                for table in sa.inspect(engine).get_table_names()
                for row in connection.execute(sa.text(f"SELECT * FROM {table}"))
            )
    finally:
        engine.dispose()


def script_failure(fake: FakeElumenta, failure: str) -> str:
    """Make the fake fail as ``failure`` says; returns the error code the runs should get."""
    code, script = FAILURES[failure]
    if script is not None:
        fake.api_key = SECRET  # the key is right; the model fails
        fake.script("*", script)
    return code


def assert_key_was_sent(fake: FakeElumenta) -> None:
    sent = [r.headers.get("authorization") for r in fake.requests]
    assert f"Bearer {SECRET}" in sent, "the test never used the key"


def assert_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """The HTTP client's own DEBUG records were captured (headers go through httpcore)."""
    assert {r.name for r in caplog.records} >= {"httpx", "httpcore.http11"}
    assert "HTTP Request: POST" in caplog.text


def assert_no_secret_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert_no_secret("the log", caplog.text)
    assert_no_secret("log arguments", "\n".join(repr(r.args) for r in caplog.records))


@pytest.mark.postgres
@pytest.mark.parametrize("failure", list(FAILURES))
def test_cli_compare_and_eval_never_print_log_or_store_the_key(
    app_env: Path,
    postgres_module_url: str,
    fake_elumenta: FakeElumenta,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    code = script_failure(fake_elumenta, failure)
    for name, value in {
        "ELUMENTA_API_KEY": SECRET,
        "ELUMENTA_BASE_URL": fake_elumenta.base_url,
        "PLAYGROUND_PROVIDER": "elumenta",
        "PLAYGROUND_DATABASE_URL": postgres_module_url,
        "PLAYGROUND_MAX_RETRIES": "1",
        "PLAYGROUND_MAX_RETRY_WAIT_S": "0.1",
    }.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    (app_env / "rows.csv").write_text("country\nFrance\n")
    suite = app_env / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "template": {"user": "Capital of {{ country }}?"},
                "dataset": "rows.csv",
                "models": ["gpt-5-nano"],
                "assertions": [{"type": "llm_judge", "value": "Names a city."}],
                "judge": "gpt-5",
            }
        )
    )
    commands = {  # each with the exit code it ends with
        ("-v", "compare", "-m", "gpt-5-nano", "-m", "gpt-5", "-p", "hi", "--json"): 1,
        ("-v", "compare", "-m", "gpt-5-nano", "-p", "hi"): 1,
        ("-v", "eval", str(suite), "--json"): 1,
        ("-v", "models", "--refresh"): 1 if failure == "401" else 0,
        ("history", "--json"): 0,
    }
    outputs = []
    for command, exit_code in commands.items():
        out, err = io.StringIO(), io.StringIO()
        assert main(list(command), out=out, err=err) == exit_code, err.getvalue()
        outputs.append(out.getvalue() + err.getvalue())

    assert_key_was_sent(fake_elumenta)
    assert_logged_at_debug(caplog)
    assert code in outputs[0]
    for command, output in zip(commands, outputs, strict=True):
        assert_no_secret(f"the output of {' '.join(command)}", output)
    assert_no_secret_logged(caplog)
    assert_no_secret("the database", database_dump(postgres_module_url))


def page_texts(at: AppTest, key_widget: str | None = None) -> str:
    """Every text the page shows (main area and sidebar), its session state and URL.

    ``key_widget``: the password box the user typed the key into, which holds it by design.
    """
    kinds = ("title", "header", "subheader", "markdown", "caption", "code", "text", "json")
    kinds += ("error", "warning", "info", "success", "exception", "toast")
    shown = [str(e.value) for kind in kinds for e in getattr(at, kind)]
    shown += [str(e.value) for kind in kinds for e in getattr(at.sidebar, kind)]
    shown += [str(w.value) for w in at.text_input if w.key != key_widget]
    state = at.session_state.to_dict()
    shown += [f"{k}={v!r}" for k, v in state.items() if k != key_widget]
    shown += [f"{k}={v}" for k, v in at.query_params.items()]
    return "\n".join(shown)


@pytest.fixture
def app_at_debug(
    postgres_module_url: str,
    app_env: Path,
    fake_elumenta: FakeElumenta,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Callable[..., str]]:
    """A function setting the app up on the fake Elumenta and the module's database, with
    the environment variables it is given, logging at DEBUG; it returns the database URL."""
    monkeypatch.setenv("ELUMENTA_BASE_URL", fake_elumenta.base_url)
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", postgres_module_url)

    def set_up(**env: str) -> str:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime.reset()
        caplog.set_level(logging.DEBUG)
        return postgres_module_url

    yield set_up
    runtime.reset()


@pytest.fixture
def app_with_key(app_at_debug: Callable[..., str]) -> str:
    """The app on the fake Elumenta with ELUMENTA_API_KEY=SECRET, logging at DEBUG."""
    return app_at_debug(ELUMENTA_API_KEY=SECRET)


@pytest.mark.postgres
def test_the_app_never_shows_logs_or_stores_the_key(
    app_with_key: str, fake_elumenta: FakeElumenta, caplog: pytest.LogCaptureFixture
) -> None:
    at = open_page()
    shown = []
    for failure in FAILURES:  # one session: the rejected key's run, then the failing model's
        code = script_failure(fake_elumenta, failure)
        run_compare(at, "Hello", ["elumenta:gpt-5-nano", "elumenta:gpt-5"])
        assert not at.exception
        assert f"[{code}]" in page_texts(at)
        shown.append(page_texts(at))
    for page in ("pages/history.py", "pages/settings.py", "pages/costs.py"):
        shown.append(page_texts(at.switch_page(page).run()))

    assert_key_was_sent(fake_elumenta)
    assert_logged_at_debug(caplog)
    assert_no_secret("the pages", "\n".join(shown))
    assert_no_secret_logged(caplog)
    assert_no_secret("the database", database_dump(app_with_key))


@pytest.mark.postgres
def test_a_key_typed_into_settings_and_rejected_stays_out_of_the_page_and_the_log(
    app_with_key: str,
    fake_elumenta: FakeElumenta,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ELUMENTA_API_KEY")
    runtime.reset()
    at = open_page("pages/settings.py")
    at.text_input(key="settings.base_url").set_value(fake_elumenta.base_url)
    at.text_input(key="settings.api_key").set_value(SECRET).run()
    click(at, "Check balance")

    assert_key_was_sent(fake_elumenta)
    assert at.error, "the rejected key is reported"
    assert_no_secret("the Settings page", page_texts(at, key_widget="settings.api_key"))
    assert_no_secret_logged(caplog)


@pytest.fixture
def hosted_env(app_at_debug: Callable[..., str]) -> str:
    """Hosted (proxy) mode on the fake Elumenta, no team key, logging at DEBUG."""
    return app_at_debug(
        PLAYGROUND_AUTH="proxy",
        PLAYGROUND_PROXY_SECRET=PROXY_SECRET,
        PLAYGROUND_SECRET_KEY=SERVER_SECRET,
    )


@pytest.mark.postgres
def test_a_personal_key_is_never_logged_stored_in_clear_or_shown(
    hosted_env: str, fake_elumenta: FakeElumenta, caplog: pytest.LogCaptureFixture
) -> None:
    script_failure(fake_elumenta, "500")
    ana = hosted.sign_in_user(Identity("ana@example.org", "ana@example.org", "Ana"))

    hint = hosted.store_personal_key(ana, SecretStr(SECRET))
    connection = hosted.connection_for(ana)
    request = CompareRequest(
        messages=(Message("user", "hi"),), targets=(ModelTarget("elumenta", "gpt-5-nano"),)
    )
    snapshot = compare.start_compare(request, connection, ana).wait(30)
    stored = database_dump(hosted_env)  # while the sealed key is still saved
    hosted.forget_personal_key(ana)

    assert hint == f"nb_…{SECRET[-4:]}"
    assert connection.api_key is not None and connection.api_key.get_secret_value() == SECRET
    assert [r.error_code for r in snapshot.results] == ["provider_error"]
    assert_key_was_sent(fake_elumenta)
    assert_no_secret("the connection's repr", repr(connection))
    assert_no_secret("the result", repr(snapshot))
    assert_no_secret_logged(caplog)
    assert_no_secret("the database", stored + database_dump(hosted_env))


def test_a_key_vault_error_names_no_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token, hint = KeyVault(SecretStr(SERVER_SECRET)).seal(SecretStr(SECRET))
    with pytest.raises(ConfigError) as raised:
        KeyVault(SecretStr("another-server-secret-0123456789")).open(token)

    assert_no_secret("the vault's token", token)
    assert_no_secret("the error", str(raised.value))
    assert SERVER_SECRET not in str(raised.value) + caplog.text + token
    assert_no_secret("the log", caplog.text)
    assert hint == f"nb_…{SECRET[-4:]}"
