"""Bad input sweep: empty, huge and binary prompts, malformed datasets, templates and suites,
invalid settings. Each must end in a clear message, no traceback, the typed text still in
the editor and no half-written row in the database.

Every case is checked in process where its rule lives (the prompt, dataset and suite checks,
the CLI's ``main()``); a few representatives then take each class of error the whole way a
user does: the Compare, Evaluate and History pages in AppTest, ``python -m playground`` as a
process for what only a process shows. What touches the database runs on PostgreSQL, which
refuses the NUL character that SQLite would store, in one schema for the module.
"""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from playground.cli.main import main
from playground.datasets import (
    MAX_COLUMNS,
    MAX_DATASET_BYTES,
    MAX_ROWS,
    DatasetError,
    DatasetFormat,
    parse_dataset,
)
from playground.errors import InvalidRequestError
from playground.evaluation.suite import load_suite
from playground.providers.base import GenerationParams, Message, validate_request
from playground.results import CompareRequest, ModelTarget
from playground.services import compare, runtime
from playground.services import evaluate as evaluation
from playground.services import history as history_service
from playground.store.models import Base
from playground.templates import render
from tests.app_harness import APP, click, open_page, open_tab, run_until_done, texts
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.fake_elumenta.process import playground_environment

PROMPT = "compare.prompt"
MODELS = "compare.models"
NUL_MESSAGE = "NUL character (\\x00)"
PASSWORD = "hunter2secret"
UNREACHABLE_DB = f"postgresql+psycopg://app:{PASSWORD}@127.0.0.1:1/history"
UNREACHABLE_MESSAGE = (
    "Cannot open the history database postgresql+psycopg://app:***@127.0.0.1:1/history"
)


def stored_rows(url: str) -> dict[str, int]:
    """Rows per table of the schema ({} for a SQLite file not created yet: nothing written)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return {}
    engine = sa.create_engine(url)
    try:
        existing = set(sa.inspect(engine).get_table_names())
        with engine.connect() as connection:
            return {
                table: connection.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one()
                for table in Base.metadata.tables
                if table in existing
            }
    finally:
        engine.dispose()


@contextmanager
def nothing_stored(url: str) -> Iterator[None]:
    """Fails if the block adds or removes a row in any table of ``url``'s database."""
    before = {table: rows for table, rows in stored_rows(url).items() if rows}
    yield
    after = {table: rows for table, rows in stored_rows(url).items() if rows}
    assert after == before, "rows were written"


@pytest.fixture
def app_pg(
    postgres_module_url: str, app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The app (demo provider) recording into the module's PostgreSQL schema."""
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", postgres_module_url)
    runtime.reset()
    yield postgres_module_url
    runtime.reset()


@pytest.fixture
def cli_env(app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The environment for ``main()`` in process: demo provider, data in ``tmp_path``."""
    monkeypatch.setenv("PLAYGROUND_PROVIDER", "demo")
    return app_env


def run_cli(
    args: list[str], stdin: bytes = b"", stdin_errors: str = "surrogateescape"
) -> tuple[int, str, str]:
    """``main(args)`` in process with ``stdin`` decoded as a UTF-8 terminal would.

    Python reads stdin with ``surrogateescape`` under the C locales, ``strict`` otherwise.
    """
    out, err = io.StringIO(), io.StringIO()
    stream = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8", errors=stdin_errors)
    code = main(args, out=out, err=err, stdin=stream)
    return code, out.getvalue(), err.getvalue()


# --- Prompts: the rules ---------------------------------------------------------------------


def prompt_request(
    prompt: str,
    *,
    system: str = "",
    turns: tuple[Message, ...] = (),
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> CompareRequest:
    """A comparison of ``prompt`` (after ``turns``) on one demo model."""
    return CompareRequest(
        messages=(*turns, Message("user", prompt)),
        targets=(ModelTarget("demo", "gpt-5-nano"),),
        system_prompt=system,
        params=GenerationParams(temperature=temperature, max_tokens=max_tokens),
    )


@pytest.mark.parametrize(
    ("bad", "limit", "message"),
    [
        (prompt_request(""), 200_000, "The prompt is empty"),
        (prompt_request(" \n\t  \n"), 200_000, "The prompt is empty"),
        (
            prompt_request("x" * 200_001),
            200_000,
            "The prompt is 200,001 characters; the limit is 200,000.",
        ),
        (
            prompt_request("12345678", system="Sys"),
            10,
            "The prompt is 11 characters; the limit is 10. Shorten it.",
        ),
        (prompt_request("hello\x00world"), 200_000, f"The prompt contains a {NUL_MESSAGE}"),
        (prompt_request("\x00"), 200_000, f"The prompt contains a {NUL_MESSAGE}"),
        (
            prompt_request("Hi", system="Be brief.\x00"),
            200_000,
            f"The system prompt contains a {NUL_MESSAGE}",
        ),
        (
            prompt_request("And now?", turns=(Message("user", "pasted\x00bytes"),)),
            200_000,
            f"Turn 1 (user) contains a {NUL_MESSAGE}",
        ),
        (
            prompt_request("hi", temperature=math.nan),
            200_000,
            "Temperature must be between 0 and 2 (got nan).",
        ),
        (
            prompt_request("hi", max_tokens=-5),
            200_000,
            "max_tokens must be a positive number (got -5).",
        ),
    ],
    ids=[
        "empty",
        "whitespace",
        "huge",
        "system-counts",
        "nul",
        "only-nul",
        "nul-in-system",
        "nul-in-earlier-turn",
        "nan-temperature",
        "negative-max-tokens",
    ],
)
def test_a_bad_prompt_is_refused_with_a_message_naming_it(
    bad: CompareRequest, limit: int, message: str
) -> None:
    with pytest.raises(InvalidRequestError) as raised:
        validate_request(bad.generation_request(0), max_prompt_chars=limit)
    assert message in str(raised.value)


def test_a_prompt_at_exactly_the_limit_is_accepted() -> None:
    validate_request(prompt_request("y" * 200).generation_request(0), max_prompt_chars=200)
    validate_request(
        prompt_request("y" * 150, system="s" * 50).generation_request(0), max_prompt_chars=200
    )


# --- Compare page ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_compare_refuses_bad_prompts_keeps_the_editor_and_stores_other_controls_unchanged(
    app_pg: str,
) -> None:
    at = open_page()
    at.text_area(key="compare.system").set_value("Be brief.")
    at.multiselect(key=MODELS).set_value(["demo:gpt-5-nano"])
    with nothing_stored(app_pg):
        for text, message in [
            (" \n\t  \n", "The prompt is empty"),
            ("hello\x00world", f"The prompt contains a {NUL_MESSAGE}"),
        ]:
            at.text_area(key=PROMPT).set_value(text)
            click(at.run(), "Run")

            assert not at.exception
            assert any(message in error for error in texts(at, "error")), texts(at, "error")
            assert at.text_area(key=PROMPT).value == text
            assert at.multiselect(key=MODELS).value == ["demo:gpt-5-nano"]
            assert "compare.columns" not in at.session_state

    # Only NUL is refused: other control characters are sent and stored as typed.
    prompt = "bell\x07 escape\x1b[31m tab\t form\x0c del\x7f zero-width\u200b done"
    at.text_area(key=PROMPT).set_value(prompt)
    click(at.run(), "Run")
    run_until_done(at)

    assert not at.exception
    comparison = history_service.stored_comparison(int(at.query_params["comparison"][0]))
    assert comparison is not None
    assert comparison.request.messages[-1].content == prompt
    assert [r.status for r in comparison.results] == ["completed"]


def test_an_unreachable_database_is_a_clear_error_without_its_password(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", UNREACHABLE_DB)
    runtime.reset()
    at = open_page()
    at.text_area(key=PROMPT).set_value("Still here?")
    at.multiselect(key=MODELS).set_value(["demo:gpt-5-nano"])
    click(at.run(), "Run")

    assert not at.exception
    (error,) = texts(at, "error")
    assert UNREACHABLE_MESSAGE in error
    assert PASSWORD not in error
    assert at.text_area(key=PROMPT).value == "Still here?"


# --- Invalid settings: the app and the CLI --------------------------------------------------

BAD_SETTINGS = {
    "concurrency": (
        {"PLAYGROUND_MAX_CONCURRENCY": "abc"},
        "Invalid configuration: PLAYGROUND_MAX_CONCURRENCY='abc': Input should be a valid integer",
    ),
    "auth": (
        {"PLAYGROUND_AUTH": "bogus"},
        "PLAYGROUND_AUTH='bogus': Input should be 'none', 'oidc' or 'proxy'.",
    ),
    "time-scale": (
        {"PLAYGROUND_DEMO_TIME_SCALE": "-1"},
        "PLAYGROUND_DEMO_TIME_SCALE='-1': Input should be greater than or equal to 0.",
    ),
    "stale-after": (
        {"PLAYGROUND_BATCH_HEARTBEAT_S": "30", "PLAYGROUND_BATCH_STALE_AFTER_S": "10"},
        "PLAYGROUND_BATCH_STALE_AFTER_S must be longer than PLAYGROUND_BATCH_HEARTBEAT_S",
    ),
    "mysql": (
        {"PLAYGROUND_DATABASE_URL": f"mysql://app:{PASSWORD}@db/history"},
        "Unsupported database 'mysql': use a sqlite:/// path or postgresql+psycopg://.",
    ),
    "garbage-url": (
        {"PLAYGROUND_DATABASE_URL": "not a url at all"},
        "The database URL is not valid",
    ),
    # Proxy sign-in that any local process could forge: refused on every page and command.
    "proxy-secret": (
        {"PLAYGROUND_AUTH": "proxy", "FORWARDED_ALLOW_IPS": ""},
        "PLAYGROUND_AUTH=proxy needs PLAYGROUND_PROXY_SECRET",
    ),
}


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset()


@pytest.mark.parametrize("setting", list(BAD_SETTINGS))
def test_the_cli_explains_a_bad_setting_with_exit_1(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    env, message = BAD_SETTINGS[setting]
    set_env(monkeypatch, env)

    code, out, err = run_cli(["compare", "-m", "gpt-5-nano", "-p", "hi"])

    assert code == 1, err
    assert message in err
    assert PASSWORD not in out + err


# A setting pydantic refuses, a database URL the store refuses and an unsafe sign-in
# (checked by Settings, like the first): the checks in app.py.
@pytest.mark.parametrize("setting", ["concurrency", "mysql", "proxy-secret"])
def test_the_app_explains_a_bad_setting_instead_of_a_traceback(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    env, message = BAD_SETTINGS[setting]
    set_env(monkeypatch, env)

    at = AppTest.from_file(str(APP), default_timeout=10).run()

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert not any(PASSWORD in error for error in texts(at, "error"))


def test_a_bad_trusted_proxy_is_named_at_sign_in(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(
        monkeypatch,
        {
            "PLAYGROUND_AUTH": "proxy",
            "PLAYGROUND_PROXY_SECRET": "a-proxy-secret-long-enough",
            "FORWARDED_ALLOW_IPS": "",
            "PLAYGROUND_TRUSTED_PROXIES": "127.0.0.1,not-an-ip",
        },
    )

    at = AppTest.from_file(str(APP), default_timeout=10).run()

    assert not at.exception
    assert texts(at, "error") == [
        "PLAYGROUND_TRUSTED_PROXIES: 'not-an-ip' is not an IP address or network."
    ]


def test_a_corrupt_model_catalog_is_named_by_the_app_and_the_cli(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = cli_env / "models.json"
    catalog.write_text("{not json", encoding="utf-8")
    set_env(monkeypatch, {"PLAYGROUND_CATALOG_PATH": str(catalog)})
    message = f"Cannot read the model catalog {catalog}"

    at = AppTest.from_file(str(APP), default_timeout=10).run()
    code, _, err = run_cli(["models"])

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert code == 1
    assert message in err


def test_the_cli_names_an_unreachable_database_without_its_password(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, {"PLAYGROUND_DATABASE_URL": UNREACHABLE_DB})

    code, out, err = run_cli(["history"])

    assert code == 1
    assert UNREACHABLE_MESSAGE in err
    assert PASSWORD not in out + err


# --- The compare command --------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["-p", ""], b"", "The prompt is empty"),
        (["-p", " \t "], b"", "The prompt is empty"),
        (["-p", "-"], b"\n\n  \n", "The prompt is empty"),
        (["-p", "-"], b"x" * 201, "The prompt is 201 characters; the limit is 200."),
        (["-p", "-"], b"hello\x00world", f"The prompt contains a {NUL_MESSAGE}"),
        (["-p", "-"], b"\x89PNG\r\n\x1a\n\x00\x00\xff", "The prompt is not UTF-8 text"),
        (["-p", "-"], "Caf\u00e9".encode("latin-1"), "The prompt is not UTF-8 text"),
        (["-p", "hi", "--system", "s" * 199], b"", "The prompt is 201 characters"),
        (["-p", "hi", "-t", "nan"], b"", "Temperature must be between 0 and 2 (got nan)."),
        (["-p", "hi", "--max-tokens", "-5"], b"", "max_tokens must be a positive number"),
    ],
    ids=[
        "empty",
        "whitespace",
        "blank-stdin",
        "over-limit",
        "nul",
        "binary",
        "latin-1",
        "long-system",
        "nan-temperature",
        "negative-max-tokens",
    ],
)
def test_compare_command_refuses_bad_prompts_with_exit_2(
    cli_env: Path,
    postgres_module_url: str,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: bytes,
    message: str,
) -> None:
    set_env(
        monkeypatch,
        {"PLAYGROUND_DATABASE_URL": postgres_module_url, "PLAYGROUND_MAX_PROMPT_CHARS": "200"},
    )

    with nothing_stored(postgres_module_url):
        code, out, err = run_cli(["compare", "-m", "gpt-5-nano", "--json", *args], stdin)

    assert code == 2, err
    assert message in err
    assert out == ""


def test_binary_stdin_read_strictly_is_named_too(cli_env: Path) -> None:
    code, _, err = run_cli(["compare", "-m", "gpt-5-nano", "-p", "-"], b"\x89PNG", "strict")
    assert code == 2
    assert "The prompt on standard input is not UTF-8 text" in err


@pytest.mark.postgres
def test_a_nul_in_a_model_answer_is_stored_as_a_replacement_character(
    cli_env: Path,
    postgres_module_url: str,
    fake_elumenta: FakeElumenta,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_elumenta.script("gpt-5-nano", ModelScript(deltas=["bin", "ary\x00out", "put"]))
    set_env(
        monkeypatch,
        {
            "PLAYGROUND_DATABASE_URL": postgres_module_url,
            "PLAYGROUND_PROVIDER": "elumenta",
            "ELUMENTA_API_KEY": fake_elumenta.api_key,
            "ELUMENTA_BASE_URL": fake_elumenta.base_url,
        },
    )

    code, out, err = run_cli(["compare", "-m", "gpt-5-nano", "-p", "hi", "--json"])
    assert code == 0, err
    assert json.loads(out)["content"] == "binary\x00output"  # shown as it came
    assert "History not saved" not in err
    code, out, err = run_cli(["history", "--json", "--limit", "1"])
    assert code == 0, err
    assert json.loads(out)["content"] == "binary\ufffdoutput"  # stored safely


# --- python -m playground as a process -----------------------------------------------------


def test_binary_on_standard_input_ends_the_process_with_exit_2_and_no_traceback(
    tmp_path: Path,
) -> None:
    # The one case only a process shows: stdin as the interpreter decodes it. Exit codes
    # through ``python -m playground`` are tests/test_cli.py's; every message is above.
    database = tmp_path / "history.sqlite3"
    env = playground_environment(
        PLAYGROUND_DATA_DIR=str(tmp_path),
        PLAYGROUND_PROVIDER="demo",
        PLAYGROUND_DATABASE_URL=f"sqlite:///{database}",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "compare", "-m", "gpt-5-nano", "-p", "-"],
        cwd=tmp_path,  # no developer's .env
        env=env,
        input=b"\x89PNG\r\n\x1a\n\x00\x00\xff",
        capture_output=True,
        timeout=120,
        check=False,
    )
    out, err = proc.stdout.decode(), proc.stderr.decode()

    assert proc.returncode == 2, out + err
    # "The prompt [on standard input] is not UTF-8 text": the locale picks the decoding.
    assert "is not UTF-8 text" in err
    assert "Traceback" not in out + err
    assert out == ""
    assert not database.exists()


# --- Eval suites ----------------------------------------------------------------------------

GOOD_TEMPLATE = {"system": "Be terse.", "user": "Capital of {{ country }}?"}


def suite_file(tmp_path: Path, **fields: object) -> Path:
    """A valid suite (demo models, a two-row CSV) with ``fields`` replaced."""
    (tmp_path / "countries.csv").write_text("country,capital\nFrance,Paris\nItaly,Rome\n")
    suite: dict[str, object] = {
        "title": "capitals",
        "template": GOOD_TEMPLATE,
        "dataset": "countries.csv",
        "models": ["gpt-5-nano"],
    }
    suite.update(fields)
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, allow_unicode=True))
    return path


SUITE_CASES: list[tuple[str, str]] = [
    ("- a list\n- not a mapping\n", "the suite must be a YAML mapping."),
    ("just a string", "the suite must be a YAML mapping."),
    ("", "the suite must be a YAML mapping."),
    ("models: [", "is not valid YAML"),
    (
        "template: 'Capital?'\nmodels: [gpt-5-nano]\ndataset: countries.csv",
        "template: should be a valid dictionary, not 'Capital?' ('template' needs at least",
    ),
    (
        "template: {user: 5}\nmodels: [gpt-5-nano]\ndataset: countries.csv",
        "template.user: should be a valid string, not 5 ('template' needs",
    ),
    (
        "template: {user: hi}\nmodels: gpt-5-nano\ndataset: countries.csv",
        "models: should be a valid list, not 'gpt-5-nano' ('models' is a non-empty list",
    ),
    (
        "template: {user: hi}\nmodels: [1, 2]\ndataset: countries.csv",
        "models[0]: should be a valid string, not 1 ('models' is a non-empty list of model slugs); "
        "models[1]: should be a valid string, not 2.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: 5",
        "dataset: a file path or {rows: [{column: value, ...}, ...]}.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nparams: [1]",
        "params: should be a valid dictionary, not [1] ('params' may only set temperature",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "params: {temperature: hot}",
        "params.temperature: should be a valid number, not 'hot'",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "params: {temperature: 7}",
        "params.temperature: should be less than or equal to 2, not 7",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "params: {max_tokens: lots}",
        "params.max_tokens: should be a valid integer, not 'lots'",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nmapping: [a, b]",
        "mapping: should be a valid dictionary, not ['a', 'b'] ('mapping' maps template variables",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nprovider: 5",
        "provider: should be 'elumenta', 'demo' or 'openai_compatible', not 5.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nconcurrency: '8'",
        "concurrency: should be a valid integer, not '8'.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "assertions: {type: contains}",
        "assertions: should be a valid list, not {'type': 'contains'} ('assertions' is a list, one "
        "per line, like '- {type: contains, value: Paris}').",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "assertions: [{type: regex, value: '('}]",
        "assertions[0]: Invalid regex '('",
    ),
    (
        "template: {user: hi}\nmodels: [no-such-model]\ndataset: countries.csv",
        "Unknown model(s) for Demo (offline, simulated): no-such-model.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "assertions: [{type: llm_judge, value: Is terse.}]\njudge: no-such-judge",
        "Unknown model(s) for Demo (offline, simulated): no-such-judge.",
    ),
    (
        "template: {user: '{{ country'}\nmodels: [gpt-5-nano]\ndataset: countries.csv",
        "The user prompt template has a syntax error on line 1",
    ),
    (
        "template: {user: '{% for x in y %}'}\nmodels: [gpt-5-nano]\ndataset: countries.csv",
        "The user prompt template has a syntax error",
    ),
    (
        "template: {user: \"{{ ''.__class__.__mro__ }}\"}\nmodels: [gpt-5-nano]\n"
        "dataset: countries.csv",
        "The user prompt template uses an unsafe expression",
    ),
    (
        "template: {user: '{{ country.__class__ }}'}\nmodels: [gpt-5-nano]\ndataset: countries.csv",
        "The user prompt template uses an unsafe expression",
    ),
    (  # over the 200,000-character cap without building the gigabyte that 10**9 would
        "template: {user: \"{{ 'a' * 10**6 }}\"}\nmodels: [gpt-5-nano]\ndataset: countries.csv",
        "The user prompt template uses an unsafe expression",
    ),
    (
        'template: {user: "Capital of\\0 {{ country }}?"}\nmodels: [gpt-5-nano]\n'
        "dataset: countries.csv",
        "The user prompt template contains a NUL character (\\x00)",
    ),
    (
        "template: {user: '{{ missing }}'}\nmodels: [gpt-5-nano]\ndataset: countries.csv",
        "No dataset column for template variables: missing.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: binary.csv",
        "Line 1: the file is not UTF-8 text (byte 0x89)",
    ),
]


SUITE_IDS = [
    "list",
    "string",
    "empty",
    "yaml-syntax",
    "template-string",
    "template-user-int",
    "models-string",
    "models-ints",
    "dataset-int",
    "params-list",
    "temperature-text",
    "temperature-range",
    "max-tokens-text",
    "mapping-list",
    "provider-int",
    "concurrency-text",
    "assertions-mapping",
    "regex",
    "unknown-model",
    "unknown-judge",
    "unclosed-expression",
    "unclosed-block",
    "unsafe-mro",
    "unsafe-class",
    "huge-expression",
    "nul-template",
    "missing-variable",
    "binary-dataset",
]


@pytest.mark.parametrize(("content", "message"), SUITE_CASES, ids=SUITE_IDS)
def test_eval_refuses_a_malformed_suite_with_exit_2(
    cli_env: Path, monkeypatch: pytest.MonkeyPatch, content: str, message: str
) -> None:
    suite_file(cli_env)  # writes countries.csv
    (cli_env / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    path = cli_env / "bad.yaml"
    path.write_text(content)
    database = f"sqlite:///{cli_env / 'eval.sqlite3'}"
    set_env(monkeypatch, {"PLAYGROUND_DATABASE_URL": database})

    code, _, err = run_cli(["eval", str(path)])

    assert code == 2, err
    assert message in err
    assert not any(stored_rows(database).values())


def test_eval_refuses_a_suite_file_that_is_not_utf8(cli_env: Path) -> None:
    path = cli_env / "bad.yaml"
    path.write_bytes(b"title: caf\xe9\n")
    code, _, err = run_cli(["eval", str(path)])
    assert code == 2
    assert "is not UTF-8 text" in err


@pytest.mark.postgres
def test_eval_nul_in_a_dataset_or_template_never_reaches_the_database(
    cli_env: Path, postgres_module_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, {"PLAYGROUND_DATABASE_URL": postgres_module_url})
    with nothing_stored(postgres_module_url):
        for fields in (
            {"dataset": {"rows": [{"country": "Fr\x00ance"}]}},
            {"template": {"user": "Capital\x00 of {{ country }}?"}},
        ):
            code, _, err = run_cli(["eval", str(suite_file(cli_env, **fields))])
            assert code == 2, err
            assert NUL_MESSAGE in err


def test_yaml_dates_in_inline_rows_become_text(tmp_path: Path) -> None:
    path = suite_file(
        tmp_path,
        template={"user": "What happened on {{ day }}?"},
        dataset={"rows": [{"day": "2024-01-01"}]},
    )
    path.write_text(path.read_text().replace("'2024-01-01'", "2024-01-01"))

    suite = load_suite(path)

    assert suite.dataset.rows == ({"day": "2024-01-01"},)
    assert render(suite.template, suite.dataset.rows[0]).user == "What happened on 2024-01-01?"


# --- Datasets: the parser's rules -----------------------------------------------------------

OVER_10_MB = b"country\n" + b"y" * (MAX_DATASET_BYTES + 1)


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "csv",
            "Line 1: the file is not UTF-8 text (byte 0x89)",
        ),
        (
            "country\nCura\u00e7ao\n".encode("latin-1"),
            "csv",
            "Line 2: the file is not UTF-8 text (byte 0xe7)",
        ),
        (
            b"country\nFr\x00ance\n",
            "csv",
            "Line 2: a NUL character (\\x00). Is this a binary file?",
        ),
        (
            "country\nFr\x00ance\n",
            "auto",
            "Line 2: a NUL character (\\x00). Is this a binary file?",
        ),
        (b"\x00" * 4096, "auto", "Line 1: a NUL character"),
        (
            b'{"country": "Fr\\u0000ance"}\n',
            "jsonl",
            "Line 1: a NUL character (\\x00), which cannot",
        ),
        (OVER_10_MB, "auto", "The dataset is larger than 10 MB."),
        (
            "country,capital\nFrance,Paris\nItaly\n",
            "auto",
            "Line 3: 1 cells, but the header has 2 columns.",
        ),
        ("country,country\nFrance,Italy\n", "csv", "Duplicate column names: country."),
        ("a,b,a\n1,2,3\n", "auto", "Duplicate column names: a."),
        ("a,,b\n1,2,3\n", "auto", "A column has an empty name."),
        (
            '{"country": "France"}\n["Italy"]\n',
            "jsonl",
            "Line 2: expected a JSON object, got list.",
        ),
        ('{"country": "France"}\n"Italy"\n', "auto", "Line 2: expected a JSON object, got str."),
        ('{"country": "France"}\n{"country": \n', "jsonl", "Line 2: not valid JSON"),
        ('{"country": ' + "[" * 100_000 + "\n", "jsonl", "Line 1: the JSON is nested too deeply."),
        (
            "country\n" + "X\n" * (MAX_ROWS + 1),
            "csv",
            f"more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}.",
        ),
        (
            ",".join(f"c{i}" for i in range(20_000)) + "\n1\n",
            "auto",
            f"20,000 columns; the limit is {MAX_COLUMNS}.",
        ),
        ("country\n", "csv", "The dataset has no rows."),
        (b"", "csv", "The CSV has no header line"),
    ],
    ids=[
        "binary",
        "latin-1",
        "nul-file",
        "nul-pasted",
        "zeros",
        "nul-escaped-in-json",
        "over-10-mb",
        "ragged",
        "duplicate-columns",
        "duplicate-pasted",
        "empty-column-name",
        "jsonl-list",
        "jsonl-string",
        "bad-json",
        "deep-json",
        "too-many-rows",
        "too-many-columns",
        "header-only",
        "empty",
    ],
)
def test_a_malformed_dataset_is_refused_with_the_line_at_fault(
    data: str | bytes, fmt: DatasetFormat, message: str
) -> None:
    with pytest.raises(DatasetError) as raised:
        parse_dataset(data, fmt)
    assert message in str(raised.value)


def test_a_utf8_file_with_a_bom_is_read() -> None:
    dataset = parse_dataset(b'\xef\xbb\xbf{"country": "Cura\xc3\xa7ao"}\n')
    assert dataset.columns == ("country",)
    assert dataset.rows == ({"country": "Cura\u00e7ao"},)


# --- Evaluate page: datasets and templates --------------------------------------------------


@pytest.mark.postgres
def test_the_evaluate_page_explains_a_bad_dataset_and_saves_nothing(app_pg: str) -> None:
    at = open_tab(open_page("pages/evaluate.py"), "evaluate.tab", "Dataset")
    with nothing_stored(app_pg):
        ragged = "country,capital\nFrance,Paris\nItaly\n"
        at.text_area(key="evaluate.pasted").set_value(ragged).run()
        assert not at.exception
        assert "Line 3: 1 cells, but the header has 2 columns." in texts(at, "error")[0]
        assert at.text_area(key="evaluate.pasted").value == ragged
        assert "Save dataset" not in [b.label for b in at.button]

        at.file_uploader[0].upload("data.csv", b"\x89PNG\r\n\x1a\n\x00", "text/csv")
        at.run()
        assert not at.exception
        assert "Line 1: the file is not UTF-8 text (byte 0x89)." in texts(at, "error")[0]
        assert "Save dataset" not in [b.label for b in at.button]

        at.file_uploader[0].upload("data.jsonl", b'\xef\xbb\xbf{"country": "Cura\xc3\xa7ao"}\n')
        at.run()
        assert not at.exception
        assert "1 rows · columns: country" in texts(at, "caption")
        at.text_input(key="evaluate.dataset_name").set_value("count\x00ries")
        click(at, "Save dataset")
        assert not at.exception
        assert f"The dataset name contains a {NUL_MESSAGE}" in texts(at, "error")[0]
        assert at.text_input(key="evaluate.dataset_name").value == "count\x00ries"


@pytest.mark.postgres
def test_the_evaluate_page_explains_a_bad_template_and_saves_nothing(app_pg: str) -> None:
    at = open_page("pages/evaluate.py")
    with nothing_stored(app_pg):
        for name, user, message in [
            ("capitals", "Capital of {{ country", "The user prompt template has a syntax error"),
            (
                "capitals",
                "Capital of\x00 {{ country }}?",
                "The user prompt template contains a NUL",
            ),
            ("capi\x00tals", "Capital of {{ country }}?", "The template's name or note contains a"),
        ]:
            at.text_input(key="evaluate.template_name").set_value(name)
            at.text_area(key="evaluate.user").set_value(user)
            click(at, "Save version")

            assert not at.exception
            assert any(message in error for error in texts(at, "error")), texts(at, "error")
            assert at.text_area(key="evaluate.user").value == user


@pytest.mark.postgres
def test_an_unsafe_template_is_refused_when_loaded_and_compare_keeps_its_prompt(
    app_pg: str,
) -> None:
    version = evaluation.save_template("probe", "", "{{ ''.__class__.__mro__ }}")
    at = open_page()
    at.text_area(key=PROMPT).set_value("My own draft").run()
    at.switch_page("pages/evaluate.py").run()

    at.button(key=f"evaluate.load.{version.id}").click().run()

    assert not at.exception
    assert at.title[0].value == "Evaluate"
    assert any("uses an unsafe expression" in e for e in texts(at, "error")), texts(at, "error")
    at.switch_page("pages/compare.py").run()
    assert at.text_area(key=PROMPT).value == "My own draft"


# --- History: title, tags and note ----------------------------------------------------------


@pytest.mark.postgres
def test_a_nul_in_a_title_tag_or_note_is_explained_and_nothing_changes(app_pg: str) -> None:
    request = CompareRequest(
        messages=(Message("user", "Hello"),),
        targets=(ModelTarget("demo", "gpt-5-nano"),),
        title="Kept title",
    )
    run = compare.start_compare(request, runtime.connection_from()).wait(30)
    comparison_id = run.comparison_id
    assert comparison_id is not None
    bad = "bad\x00value"
    for what, title, tags, note in [
        ("The title", bad, [], ""),
        ("A tag", "Kept title", [bad], ""),
        ("The note", "Kept title", [], bad),
    ]:
        with pytest.raises(InvalidRequestError, match=f"{what} contains a NUL character"):
            history_service.annotate_comparison(comparison_id, title=title, tags=tags, note=note)

    at = open_page("pages/history.py")
    at.session_state["history.open"] = comparison_id
    at.run()
    at.text_area(key=f"history.note.{comparison_id}").set_value(bad)
    click(at, "Save")

    assert not at.exception
    assert f"The note contains a {NUL_MESSAGE}" in texts(at, "error")[0]
    stored = history_service.stored_comparison(comparison_id)
    assert stored is not None
    assert stored.request.title == "Kept title"
    assert (stored.request.tags, stored.request.note) == ((), "")
