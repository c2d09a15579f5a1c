"""Bad input sweep: empty, huge and binary prompts, malformed datasets, templates and suites,
invalid settings. Each goes through the path a user takes (the Compare and Evaluate pages in
AppTest, ``python -m playground`` as a process) and must end in a clear message, no
traceback, the typed text still in the editor and no half-written row in the database, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import make_url
from streamlit.testing.v1 import AppTest

from playground import services
from playground.evaluation import app as evaluation
from playground.evaluation.datasets import MAX_COLUMNS, MAX_ROWS
from playground.providers.base import Message
from playground.results import CompareRequest, ModelTarget
from tests.app_harness import APP, click, open_page, run_until_done, texts
from tests.fake_elumenta import FakeElumenta, ModelScript

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "compare.prompt"
MODELS = "compare.models"
HISTORY_TABLES = ("comparisons", "results")
EVAL_TABLES = ("prompt_templates", "prompt_template_versions", "datasets", "eval_batches")
NUL_MESSAGE = "NUL character (\\x00)"


def stored_rows(url: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Rows per table (0 for a table or SQLite file not created yet: nothing was written)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return dict.fromkeys(tables, 0)
    engine = sa.create_engine(url)
    try:
        existing = set(sa.inspect(engine).get_table_names())
        with engine.connect() as connection:
            return {
                table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                if table in existing
                else 0
                for table in tables
            }
    finally:
        engine.dispose()


def nothing_stored(url: str, tables: tuple[str, ...]) -> bool:
    return not any(stored_rows(url, tables).values())


@pytest.fixture
def app_db(store_url: str, app_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app (demo provider) recording into a fresh SQLite or PostgreSQL database.

    ``store_url`` comes first: ``app_env`` clears every PLAYGROUND_ variable, the test
    PostgreSQL URL included.
    """
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", store_url)
    services.reset()
    yield store_url
    services.reset()


# --- Compare page -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "text", "message"),
    [
        (PROMPT, "", "The prompt is empty"),
        (PROMPT, " \n\t  \n", "The prompt is empty"),
        (PROMPT, "x" * 200_001, "The prompt is 200,001 characters; the limit is 200,000."),
        (PROMPT, "hello\x00world", f"The prompt contains a {NUL_MESSAGE}"),
        (PROMPT, "\x00", f"The prompt contains a {NUL_MESSAGE}"),
        ("compare.system", "Be brief.\x00", f"The system prompt contains a {NUL_MESSAGE}"),
    ],
    ids=["empty", "whitespace", "huge", "nul", "only-nul", "nul-in-system"],
)
def test_compare_refuses_bad_prompts_and_keeps_the_editor(
    app_db: str, field: str, text: str, message: str
) -> None:
    at = open_page()
    if field != PROMPT:
        at.text_area(key=PROMPT).set_value("A fine question")
    at.text_area(key=field).set_value(text)
    at.multiselect(key=MODELS).set_value(["demo:gpt-5-nano"])
    click(at.run(), "Run")

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert at.text_area(key=field).value == text
    assert at.multiselect(key=MODELS).value == ["demo:gpt-5-nano"]
    assert "compare.columns" not in at.session_state
    assert nothing_stored(app_db, HISTORY_TABLES)


def test_compare_refuses_a_prompt_over_the_configured_limit(
    app_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_MAX_PROMPT_CHARS", "10")
    services.reset()
    at = open_page()
    at.text_area(key="compare.system").set_value("Sys")
    at.text_area(key=PROMPT).set_value("12345678")
    at.multiselect(key=MODELS).set_value(["demo:gpt-5-nano"])
    click(at.run(), "Run")

    assert not at.exception
    assert "The prompt is 11 characters; the limit is 10. Shorten it." in texts(at, "error")[0]
    assert at.text_area(key=PROMPT).value == "12345678"
    assert nothing_stored(app_db, HISTORY_TABLES)


def test_a_nul_in_an_earlier_turn_is_named(app_db: str) -> None:
    at = open_page()
    click(at, "Add user turn")
    (turn,) = at.session_state["compare.turns"]
    at.text_area(key=f"compare.turn.{turn}.content").set_value("pasted\x00bytes")
    at.text_area(key=PROMPT).set_value("And now?")
    at.multiselect(key=MODELS).set_value(["demo:gpt-5-nano"])
    click(at.run(), "Run")

    assert not at.exception
    assert f"Turn 1 (user) contains a {NUL_MESSAGE}" in texts(at, "error")[0]
    assert at.text_area(key=f"compare.turn.{turn}.content").value == "pasted\x00bytes"
    assert nothing_stored(app_db, HISTORY_TABLES)


def test_other_control_characters_are_sent_and_stored_unchanged(app_db: str) -> None:
    prompt = "bell\x07 escape\x1b[31m tab\t form\x0c del\x7f zero-width\u200b done"
    at = open_page()
    at.text_area(key=PROMPT).set_value(prompt)
    at.multiselect(key=MODELS).set_value(["demo:gpt-5-nano"])
    click(at.run(), "Run")
    run_until_done(at)

    assert not at.exception
    comparison = services.stored_comparison(int(at.query_params["comparison"][0]))
    assert comparison is not None
    assert comparison.request.messages[-1].content == prompt
    assert [r.status for r in comparison.results] == ["completed"]


def test_an_unreachable_database_is_a_clear_error_without_its_password(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PLAYGROUND_DATABASE_URL", "postgresql+psycopg://app:hunter2secret@127.0.0.1:1/history"
    )
    services.reset()
    at = open_page()
    at.text_area(key=PROMPT).set_value("Still here?")
    at.multiselect(key=MODELS).set_value(["demo:gpt-5-nano"])
    click(at.run(), "Run")

    assert not at.exception
    (error,) = texts(at, "error")
    assert "Cannot open the history database postgresql+psycopg://app:***@127.0.0.1:1/history" in (
        error
    )
    assert "hunter2secret" not in error
    assert at.text_area(key=PROMPT).value == "Still here?"


# --- Invalid settings: the app and the CLI ------------------------------------------------

BAD_SETTINGS = [
    (
        {"PLAYGROUND_MAX_CONCURRENCY": "abc"},
        "Invalid configuration: PLAYGROUND_MAX_CONCURRENCY='abc': Input should be a valid integer",
    ),
    (
        {"PLAYGROUND_AUTH": "bogus"},
        "PLAYGROUND_AUTH='bogus': Input should be 'none', 'oidc' or 'proxy'.",
    ),
    (
        {"PLAYGROUND_DEMO_TIME_SCALE": "-1"},
        "PLAYGROUND_DEMO_TIME_SCALE='-1': Input should be greater than or equal to 0.",
    ),
    (
        {"PLAYGROUND_BATCH_HEARTBEAT_S": "30", "PLAYGROUND_BATCH_STALE_AFTER_S": "10"},
        "PLAYGROUND_BATCH_STALE_AFTER_S must be longer than PLAYGROUND_BATCH_HEARTBEAT_S",
    ),
    (
        {"PLAYGROUND_DATABASE_URL": "mysql://app:hunter2secret@db/history"},
        "Unsupported database 'mysql': use a sqlite:/// path or postgresql+psycopg://.",
    ),
    (
        {"PLAYGROUND_DATABASE_URL": "not a url at all"},
        "The database URL is not valid",
    ),
]
BAD_SETTING_IDS = ["concurrency", "auth", "time-scale", "stale-after", "mysql", "garbage-url"]


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS, ids=BAD_SETTING_IDS)
def test_the_app_explains_a_bad_setting_instead_of_a_traceback(
    app_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    services.reset()

    at = AppTest.from_file(str(APP), default_timeout=10).run()

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert not any("hunter2secret" in error for error in texts(at, "error"))


def test_a_bad_trusted_proxy_is_named_at_sign_in(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_AUTH", "proxy")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")
    monkeypatch.setenv("PLAYGROUND_TRUSTED_PROXIES", "127.0.0.1,not-an-ip")
    services.reset()

    at = AppTest.from_file(str(APP), default_timeout=10).run()

    assert not at.exception
    assert texts(at, "error") == [
        "PLAYGROUND_TRUSTED_PROXIES: 'not-an-ip' is not an IP address or network."
    ]


def cli(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[str]:
    """``python -m playground ARGS`` with the demo provider, data in ``tmp_path``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PLAYGROUND_", "ELUMENTA_", "OPENAI_COMPATIBLE_"))
    }
    clean.update(
        PYTHONPATH=str(ROOT),
        PLAYGROUND_DATA_DIR=str(tmp_path / "data"),
        PLAYGROUND_PROVIDER="demo",
        PLAYGROUND_DEMO_TIME_SCALE="0.01",
    )
    clean.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "playground", *args],
        cwd=tmp_path,  # no developer's .env
        env=clean,
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def assert_clean_failure(proc: subprocess.CompletedProcess[str], code: int, message: str) -> None:
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS, ids=BAD_SETTING_IDS)
def test_the_cli_explains_a_bad_setting_instead_of_a_traceback(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    proc = cli(["compare", "-m", "gpt-5-nano", "-p", "hi"], tmp_path, env)

    assert_clean_failure(proc, 1, message)
    assert "hunter2secret" not in proc.stderr


def test_a_corrupt_model_catalog_is_named_by_the_app_and_the_cli(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = app_env / "models.json"
    catalog.write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("PLAYGROUND_CATALOG_PATH", str(catalog))
    services.reset()
    message = f"Cannot read the model catalog {catalog}"

    at = AppTest.from_file(str(APP), default_timeout=10).run()
    proc = cli(["models"], app_env, {"PLAYGROUND_CATALOG_PATH": str(catalog)})

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert_clean_failure(proc, 1, message)


def test_the_cli_names_an_unreachable_database_without_its_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://app:hunter2secret@127.0.0.1:1/history"
    proc = cli(["history"], tmp_path, {"PLAYGROUND_DATABASE_URL": url})

    assert_clean_failure(
        proc, 1, "Cannot open the history database postgresql+psycopg://app:***@127.0.0.1:1/history"
    )
    assert "hunter2secret" not in proc.stderr


# --- The compare command ------------------------------------------------------------------


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
    tmp_path: Path, store_url: str, args: list[str], stdin: bytes, message: str
) -> None:
    env = {"PLAYGROUND_DATABASE_URL": store_url, "PLAYGROUND_MAX_PROMPT_CHARS": "200"}
    proc = cli(["compare", "-m", "gpt-5-nano", "--json", *args], tmp_path, env, stdin)

    assert_clean_failure(proc, 2, message)
    assert proc.stdout == ""
    assert nothing_stored(store_url, HISTORY_TABLES)


def test_a_nul_in_a_model_answer_is_stored_as_a_replacement_character(
    tmp_path: Path, store_url: str, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("gpt-5-nano", ModelScript(deltas=["bin", "ary\x00out", "put"]))
    env = {
        "PLAYGROUND_DATABASE_URL": store_url,
        "PLAYGROUND_PROVIDER": "elumenta",
        "ELUMENTA_API_KEY": fake_elumenta.api_key,
        "ELUMENTA_BASE_URL": fake_elumenta.base_url,
    }
    proc = cli(["compare", "-m", "gpt-5-nano", "-p", "hi", "--json"], tmp_path, env)

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["content"] == "binary\x00output"  # shown as it came
    assert "History not saved" not in proc.stderr
    history = cli(["history", "--json"], tmp_path, env)
    assert json.loads(history.stdout)["content"] == "binary\ufffdoutput"  # stored safely


def test_compare_command_accepts_a_prompt_at_exactly_the_limit(tmp_path: Path) -> None:
    env = {"PLAYGROUND_MAX_PROMPT_CHARS": "200"}
    proc = cli(["compare", "-m", "gpt-5-nano", "--json", "-p", "-"], tmp_path, env, b"y" * 200)
    assert proc.returncode == 0, proc.stderr


# --- Eval suites --------------------------------------------------------------------------

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


DATASET_FILES: dict[str, bytes] = {
    "binary.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "latin1.csv": "country\nCura\u00e7ao\n".encode("latin-1"),
    "nul.csv": b"country\nFr\x00ance\n",
    "ragged.csv": b"country,capital\nFrance,Paris\nItaly\n",
    "dupes.csv": b"country,country\nFrance,Italy\n",
    "non-object.jsonl": b'{"country": "France"}\n["Italy"]\n',
    "bad-json.jsonl": b'{"country": "France"}\n{"country": \n',
    "deep.jsonl": b'{"country": ' + b"[" * 100_000 + b"\n",
    "too-many-rows.csv": b"country\n" + b"X\n" * (MAX_ROWS + 1),
    "too-many-columns.csv": ",".join(f"c{i}" for i in range(20_000)).encode() + b"\n1\n",
    "header-only.csv": b"country\n",
    "empty.csv": b"",
}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("binary.csv", "Line 1: the file is not UTF-8 text (byte 0x89)"),
        ("latin1.csv", "Line 2: the file is not UTF-8 text (byte 0xe7)"),
        ("nul.csv", "Line 2: a NUL character (\\x00). Is this a binary file?"),
        ("ragged.csv", "Line 3: 1 cells, but the header has 2 columns."),
        ("dupes.csv", "Duplicate column names: country."),
        ("non-object.jsonl", "Line 2: expected a JSON object, got list."),
        ("bad-json.jsonl", "Line 2: not valid JSON"),
        ("deep.jsonl", "Line 1: the JSON is nested too deeply."),
        ("too-many-rows.csv", f"more than {MAX_ROWS:,} rows; the limit is {MAX_ROWS:,}."),
        ("too-many-columns.csv", f"20,000 columns; the limit is {MAX_COLUMNS}."),
        ("header-only.csv", "The dataset has no rows."),
        ("empty.csv", "The CSV has no header line"),
    ],
)
def test_eval_refuses_a_malformed_dataset_file_with_exit_2(
    tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / name).write_bytes(DATASET_FILES[name])
    path = suite_file(tmp_path, dataset=name)
    database = f"sqlite:///{tmp_path / 'eval.sqlite3'}"

    proc = cli(["eval", str(path)], tmp_path, {"PLAYGROUND_DATABASE_URL": database})

    assert_clean_failure(proc, 2, message)
    assert nothing_stored(database, EVAL_TABLES)


SUITE_CASES: list[tuple[str, str]] = [
    ("- a list\n- not a mapping\n", "the suite must be a YAML mapping."),
    ("just a string", "the suite must be a YAML mapping."),
    ("", "the suite must be a YAML mapping."),
    ("models: [", "is not valid YAML"),
    ("template: 'Capital?'\nmodels: [gpt-5-nano]\ndataset: countries.csv", "'template' needs"),
    ("template: {user: 5}\nmodels: [gpt-5-nano]\ndataset: countries.csv", "'template' needs"),
    ("template: {user: hi}\nmodels: gpt-5-nano\ndataset: countries.csv", "'models' must be"),
    ("template: {user: hi}\nmodels: [1, 2]\ndataset: countries.csv", "'models' must be"),
    ("template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: 5", "'dataset' must be a file path"),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nparams: [1]",
        "'params' may only set temperature and max_tokens.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "params: {temperature: hot}",
        "'params.temperature' must be a number from 0 to 2, not 'hot'.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "params: {temperature: 7}",
        "'params.temperature' must be a number from 0 to 2, not 7.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "params: {max_tokens: lots}",
        "'params.max_tokens' must be a positive whole number, not 'lots'.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nmapping: [a, b]",
        "'mapping' must map template variables to dataset columns.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nprovider: 5",
        "'provider' must be one of elumenta, demo, openai_compatible, not 5.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\nconcurrency: '8'",
        "'concurrency' must be a positive whole number, not '8'.",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "assertions: {type: contains}",
        "'assertions' must be a list of mappings",
    ),
    (
        "template: {user: hi}\nmodels: [gpt-5-nano]\ndataset: countries.csv\n"
        "assertions: [{type: regex, value: '('}]",
        "Invalid regex '('",
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
    (
        "template: {user: \"{{ 'a' * 10**9 }}\"}\nmodels: [gpt-5-nano]\ndataset: countries.csv",
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
]


@pytest.mark.parametrize(("content", "message"), SUITE_CASES, ids=SUITE_IDS)
def test_eval_refuses_a_malformed_suite_with_exit_2(
    tmp_path: Path, content: str, message: str
) -> None:
    suite_file(tmp_path)  # writes countries.csv
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    database = f"sqlite:///{tmp_path / 'eval.sqlite3'}"

    proc = cli(["eval", str(path)], tmp_path, {"PLAYGROUND_DATABASE_URL": database})

    assert_clean_failure(proc, 2, message)
    assert nothing_stored(database, EVAL_TABLES + HISTORY_TABLES)


def test_eval_refuses_a_suite_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"title: caf\xe9\n")
    assert_clean_failure(cli(["eval", str(path)], tmp_path), 2, "is not UTF-8 text")


def test_eval_nul_in_a_dataset_or_template_never_reaches_the_database(
    tmp_path: Path, store_url: str
) -> None:
    env = {"PLAYGROUND_DATABASE_URL": store_url}
    inline_nul = suite_file(tmp_path, dataset={"rows": [{"country": "Fr\x00ance"}]})
    assert_clean_failure(cli(["eval", str(inline_nul)], tmp_path, env), 2, NUL_MESSAGE)
    template_nul = suite_file(tmp_path, template={"user": "Capital\x00 of {{ country }}?"})
    assert_clean_failure(cli(["eval", str(template_nul)], tmp_path, env), 2, NUL_MESSAGE)
    assert nothing_stored(store_url, EVAL_TABLES + HISTORY_TABLES)


def test_yaml_dates_in_inline_rows_become_text(tmp_path: Path) -> None:
    path = suite_file(
        tmp_path,
        template={"user": "What happened on {{ day }}?"},
        dataset={"rows": [{"day": "2024-01-01"}]},
    )
    path.write_text(path.read_text().replace("'2024-01-01'", "2024-01-01"))
    proc = cli(["eval", str(path), "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "What happened on 2024-01-01?" in proc.stdout


# --- Evaluate page: datasets and templates ------------------------------------------------

PASTED = [
    ("country,capital\nFrance,Paris\nItaly\n", "Line 3: 1 cells, but the header has 2 columns."),
    ('{"country": "France"}\n"Italy"\n', "Line 2: expected a JSON object, got str."),
    ('{"country": "France"}\n{"country": "Italy"\n', "Line 2: not valid JSON"),
    ("a,b,a\n1,2,3\n", "Duplicate column names: a."),
    ("a,,b\n1,2,3\n", "A column has an empty name."),
    ("country\n" + "X\n" * (MAX_ROWS + 1), f"more than {MAX_ROWS:,} rows"),
    (",".join(f"c{i}" for i in range(20_000)) + "\n1\n", "20,000 columns; the limit is 100."),
    ("country\nFr\x00ance\n", "Line 2: a NUL character (\\x00). Is this a binary file?"),
]


@pytest.mark.parametrize(
    ("text", "message"),
    PASTED,
    ids=["ragged", "non-object", "bad-json", "dupes", "empty-name", "rows", "columns", "nul"],
)
def test_a_malformed_pasted_dataset_is_explained_and_not_saved(
    app_db: str, text: str, message: str
) -> None:
    at = open_page("pages/evaluate.py")
    at.text_area(key="evaluate.pasted").set_value(text).run()

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert at.text_area(key="evaluate.pasted").value == text
    assert "Save dataset" not in [b.label for b in at.button]
    assert nothing_stored(app_db, EVAL_TABLES)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (DATASET_FILES["binary.csv"], "Line 1: the file is not UTF-8 text (byte 0x89)."),
        (DATASET_FILES["latin1.csv"], "Line 2: the file is not UTF-8 text (byte 0xe7)."),
        (DATASET_FILES["nul.csv"], "Line 2: a NUL character"),
        (b"\x00" * 4096, "Line 1: a NUL character"),
        (b"country\n" + b"y" * (11 * 1024 * 1024), "The dataset is larger than 10 MB."),
    ],
    ids=["png", "latin-1", "nul", "zeros", "over-10-mb"],
)
def test_an_uploaded_binary_or_oversized_file_is_explained_and_not_saved(
    app_db: str, content: bytes, message: str
) -> None:
    at = open_page("pages/evaluate.py")
    at.file_uploader[0].upload("data.csv", content, "text/csv")
    at.run()

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert "Save dataset" not in [b.label for b in at.button]
    assert nothing_stored(app_db, EVAL_TABLES)


def test_an_uploaded_utf8_file_with_a_bom_is_read(app_db: str) -> None:
    at = open_page("pages/evaluate.py")
    at.file_uploader[0].upload("data.jsonl", b'\xef\xbb\xbf{"country": "Cura\xc3\xa7ao"}\n')
    at.run()
    assert not at.exception
    assert "1 rows · columns: country" in texts(at, "caption")


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("Capital of {{ country", "The user prompt template has a syntax error on line 1"),
        ("{% if x %}open", "The user prompt template has a syntax error"),
        ("Capital of\x00 {{ country }}?", "The user prompt template contains a NUL character"),
    ],
    ids=["unclosed", "unclosed-block", "nul"],
)
def test_a_malformed_template_is_explained_and_not_saved(
    app_db: str, user: str, message: str
) -> None:
    at = open_page("pages/evaluate.py")
    at.text_input(key="evaluate.template_name").set_value("capitals")
    at.text_area(key="evaluate.user").set_value(user)
    click(at, "Save version")

    assert not at.exception
    assert any(message in error for error in texts(at, "error")), texts(at, "error")
    assert at.text_area(key="evaluate.user").value == user
    assert evaluation.templates() == {}
    assert nothing_stored(app_db, EVAL_TABLES)


def test_an_unsafe_template_is_refused_when_loaded_and_compare_keeps_its_prompt(
    app_db: str,
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


def test_a_nul_in_a_template_or_dataset_name_is_explained_and_not_saved(app_db: str) -> None:
    at = open_page("pages/evaluate.py")
    at.text_input(key="evaluate.template_name").set_value("capi\x00tals")
    at.text_area(key="evaluate.user").set_value("Capital of {{ country }}?")
    click(at, "Save version")
    assert not at.exception
    assert f"The template's name or note contains a {NUL_MESSAGE}" in texts(at, "error")[0]

    at.text_area(key="evaluate.pasted").set_value("country\nFrance\n").run()
    at.text_input(key="evaluate.dataset_name").set_value("count\x00ries")
    click(at, "Save dataset")
    assert not at.exception
    assert f"The dataset name contains a {NUL_MESSAGE}" in texts(at, "error")[0]
    assert at.text_input(key="evaluate.dataset_name").value == "count\x00ries"
    assert nothing_stored(app_db, EVAL_TABLES)


# --- History: title, tags and note --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message"),
    [("title", "The title"), ("tags", "A tag"), ("note", "The note")],
)
def test_a_nul_in_a_title_tag_or_note_is_explained_and_nothing_changes(
    app_db: str, field: str, message: str
) -> None:
    request = CompareRequest(
        messages=(Message("user", "Hello"),),
        targets=(ModelTarget("demo", "gpt-5-nano"),),
        title="Kept title",
    )
    run = services.start_compare(request, services.connection_from_state({})).wait(30)
    assert run.comparison_id is not None
    at = open_page("pages/history.py")
    at.session_state["history.open"] = run.comparison_id
    at.run()
    widget = at.text_area if field == "note" else at.text_input
    widget(key=f"history.{field}.{run.comparison_id}").set_value("bad\x00value")
    click(at, "Save")

    assert not at.exception
    assert f"{message} contains a {NUL_MESSAGE}" in texts(at, "error")[0]
    stored = services.stored_comparison(run.comparison_id)
    assert stored is not None
    request = stored.request
    assert (request.title, request.tags, request.note) == ("Kept title", (), "")
