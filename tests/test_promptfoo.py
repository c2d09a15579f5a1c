"""promptfoo configs run unchanged: the corpus in tests/promptfoo_corpus against the fake.

The expected verdicts below are written by hand from promptfoo's documented semantics
(an assertion scores 1 or 0, ``not-`` inverts it; a test's score is the weighted mean;
without a threshold every assertion must pass, with one the score must reach it; an
assert-set is scored the same way and counts as one assertion with its weight).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from playground.cli.main import main
from playground.config import Settings
from tests.fake_elumenta import FakeElumenta, ModelScript

CORPUS = Path(__file__).parent / "promptfoo_corpus"
TEXT, JSON_ANSWER = "Hello World from Ada", '{"name": "Ada", "age": 36}'


@pytest.fixture
def settings(tmp_path: Path, fake_elumenta: FakeElumenta, store_url: str) -> Settings:
    fake_elumenta.script("gpt-5-nano", ModelScript(text=TEXT))
    fake_elumenta.script("json-model", ModelScript(text=JSON_ANSWER))
    fake_elumenta.script("gpt-5", ModelScript(judge_verdict="PASS"))
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        provider="elumenta",
        elumenta_api_key=SecretStr(fake_elumenta.api_key),
        elumenta_base_url=fake_elumenta.base_url,
        openai_base_url=fake_elumenta.openai_base_url,
        data_dir=tmp_path,
        database_url=store_url,
        max_retries=0,
    )


def config(tmp_path: Path, name: str, fake: FakeElumenta | None = None) -> Path:
    folder = tmp_path / name
    shutil.copytree(CORPUS / name, folder)
    path = folder / "promptfooconfig.yaml"
    if fake is not None:
        path.write_text(path.read_text().replace("OPENAI_BASE", fake.openai_base_url))
    return path


def run(argv: list[str], settings: Settings) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, settings=settings, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def verdicts(document: dict[str, Any]) -> dict[tuple[str, str, int], bool]:
    """(provider label, test description or number, prompt label) → success."""
    return {
        (
            r["provider"]["label"],
            r["testCase"].get("description") or str(r["testIdx"]),
            r["prompt"]["label"],
        ): r["success"]
        for r in document["results"]["results"]
    }


def eval_json(path: Path, settings: Settings) -> tuple[int, dict[str, Any]]:
    code, out, err = run(["eval", str(path), "--json"], settings)
    assert "Traceback" not in err
    assert code in (0, 100), err
    return code, json.loads(out)


NANO, JSONM = "elumenta:gpt-5-nano", "openai:json-model"
ASSERT_VERDICTS: dict[str, tuple[bool, bool]] = {  # description → (nano, json-model)
    "equals text": (True, False),
    "equals object": (False, True),
    "contains": (True, False),
    "icontains": (True, False),
    "contains-any": (True, True),
    "contains-all": (True, False),
    "icontains-any": (True, True),
    "icontains-all": (True, False),
    "starts-with": (True, False),
    "regex": (False, True),
    "is-json": (False, True),
    "is-json schema": (False, False),
    "contains-json schema": (False, True),
    "levenshtein 3": (True, False),
    "levenshtein default": (True, False),
    "not-starts-with": (False, True),
    "not-icontains": (False, False),
    "not-is-json": (True, False),
    "latency": (True, True),
    "cost": (True, True),
    "not-cost": (False, False),
    "llm-rubric": (True, True),
    "not-llm-rubric": (False, False),
    "var in value": (True, True),
}


def test_every_assertion_type_gives_promptfoos_verdict(
    tmp_path: Path, settings: Settings, fake_elumenta: FakeElumenta, store_url: str
) -> None:
    code, document = eval_json(config(tmp_path, "asserts"), settings)

    found = verdicts(document)
    expected = {
        (label, name, "Introduce {{ name }}."): verdict
        for name, pair in ASSERT_VERDICTS.items()
        for label, verdict in zip((NANO, JSONM), pair, strict=True)
    }
    assert found == expected
    assert code == 100
    # llm-rubric went to our judge (4 answers x 2 rubrics), and its cost is counted.
    judged = [r for r in fake_elumenta.requests if (r.json or {}).get("model") == "gpt-5"]
    assert len(judged) == 4
    stats = document["results"]["stats"]
    assert stats["tokenUsage"]["assertions"] > 0
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        judge_tokens = connection.execute(sa.text("SELECT SUM(judge_tokens) FROM batch_cells"))
        assert judge_tokens.scalar() == stats["tokenUsage"]["assertions"]
    engine.dispose()


def test_weights_thresholds_and_assert_sets_score_as_promptfoo(
    tmp_path: Path, settings: Settings
) -> None:
    code, document = eval_json(config(tmp_path, "scoring"), settings)

    by_name = {r["testCase"]["description"]: r for r in document["results"]["results"]}
    expected = {  # description → (success, score), worked out by hand
        "half passes a 0.5 threshold": (True, 0.5),
        "half misses a 0.75 threshold": (False, 0.5),
        "weighted, no threshold": (False, 0.75),
        "weighted, threshold 0.7": (True, 0.75),
        "assert-set with its own threshold": (True, 0.75),
        "assert-set without a threshold, weighted": (False, 0.625),
        "threshold 0 passes any score": (True, 0.5),
    }
    assert {k: (r["success"], r["score"]) for k, r in by_name.items()} == expected
    # metric: the weighted mean of its assertions' scores (starts-with 1, Bob 0).
    assert by_name["weighted, no threshold"]["namedScores"] == {"style": 0.5}
    assert code == 100


def test_basics_prompts_providers_csv_and_list_vars(
    tmp_path: Path, settings: Settings, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("answer-json", ModelScript(text='{"city": "Rome"}'))
    fake_elumenta.script("gpt-5-nano", ModelScript(text="Paris, I think."))
    code, document = eval_json(config(tmp_path, "basics", fake_elumenta), settings)

    expected_per_prompt = {  # test → (nano, answer-json)
        "france": (True, False),
        "1": (False, True),  # Italy (a list var expands into one test per value)
        "2": (False, True),  # Spain
        "3": (True, False),  # CSV: __expected "contains: Paris"
        "4": (False, True),  # CSV: __expected "is-json"
    }
    expected = {
        (label, test, prompt): verdict
        for prompt in ("Capital of {{ country }}?", "file://chat.json")
        for test, pair in expected_per_prompt.items()
        for label, verdict in zip(("nano", "openai:chat:answer-json"), pair, strict=True)
    }
    assert verdicts(document) == expected
    assert code == 100
    # The chat file's system message and the provider's temperature and key were sent.
    chat = [r for r in fake_elumenta.requests if "Which city" in json.dumps(r.json)]
    assert chat and all("Be terse." in json.dumps(r.json) for r in chat)
    openai = [r for r in fake_elumenta.requests if r.json.get("model") == "answer-json"]
    assert openai and all(r.json.get("temperature") == 0 for r in openai)
    assert all(r.headers.get("authorization") == "Bearer sk-test" for r in openai)
    # ...but the key is never echoed into the results (they get shared) or the database.
    assert "sk-test" not in json.dumps(document)
    assert "sk-test" not in _database_text(settings)


def _database_text(settings: Settings) -> str:
    engine = sa.create_engine(settings.resolved_database_url)
    try:
        with engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            return " ".join(
                str(row)
                for t in tables
                for row in connection.execute(sa.text(f'SELECT * FROM "{t}"'))
            )
    finally:
        engine.dispose()


def test_files_for_prompts_tests_and_vars(tmp_path: Path, settings: Settings) -> None:
    code, document = eval_json(config(tmp_path, "files"), settings)

    results = document["results"]["results"]
    assert {r["prompt"]["label"] for r in results} == {
        "file://prompts.txt: Greet {{ who }}.",
        "file://prompts.txt: Say hi to {{ who }}: {{ text }}",
        "summary",
    }
    assert {(r["testCase"]["description"], r["success"]) for r in results} == {
        ("from yaml", True),  # "Hello World from Ada" icontains "hello"
        ("from jsonl", False),  # ... does not contain "Bob"
    }
    assert results[0]["vars"]["text"] == "A note from a file.\n"
    assert code == 100


def test_results_file_has_promptfoos_shape(tmp_path: Path, settings: Settings) -> None:
    path = config(tmp_path, "files")
    output = tmp_path / "results.json"
    code, _, err = run(["eval", str(path), "-o", str(output)], settings)

    assert code == 100, err
    document = json.loads(output.read_text())
    result = document["results"]["results"][0]
    assert set(result) >= {
        "success",
        "score",
        "gradingResult",
        "vars",
        "prompt",
        "provider",
        "response",
        "latencyMs",
        "promptIdx",
        "testIdx",
    }
    assert result["response"]["output"] == TEXT
    assert result["response"]["tokenUsage"]["total"] >= 0
    assert result["gradingResult"]["componentResults"][0]["assertion"]["type"] == "icontains"
    assert document["results"]["stats"] == {
        "successes": 3,
        "failures": 3,
        "errors": 0,
        "tokenUsage": document["results"]["stats"]["tokenUsage"],
    }


def test_a_config_that_passes_exits_0(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "promptfooconfig.yaml"
    path.write_text(
        "prompts: ['Hi {{ x }}']\nproviders: [elumenta:gpt-5-nano]\n"
        "tests: [{vars: {x: a}, assert: [{type: contains, value: Ada}]}]\n"
    )
    code, out, _ = run(["eval", str(path)], settings)
    assert code == 0
    assert "1 passed, 0 failed, 0 errors" in out


def test_the_configured_openai_key_never_goes_to_a_config_s_other_url(
    tmp_path: Path, settings: Settings, fake_elumenta: FakeElumenta
) -> None:
    settings = settings.model_copy(
        update={
            "openai_base_url": "http://127.0.0.1:9/v1",  # the operator's endpoint
            "openai_api_key": SecretStr("sk-operator"),
        }
    )
    path = tmp_path / "promptfooconfig.yaml"
    provider = {"id": "openai:json-model", "config": {"apiBaseUrl": fake_elumenta.openai_base_url}}
    path.write_text(f"prompts: [hi]\nproviders: [{json.dumps(provider)}]\n")
    code, _, err = run(["eval", str(path)], settings)

    assert code == 0, err
    sent = [r for r in fake_elumenta.requests if r.path.endswith("/chat/completions")]
    assert sent and all("sk-operator" not in str(r.headers) for r in sent)


BAD_CONFIGS: list[tuple[str, str]] = [
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests:\n  - vars: {}\n"
        "    assert:\n      - type: javascript\n        value: output.length > 1\n",
        "tests[0].assert[0] (line 6): assertion type 'javascript' is not supported",
    ),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests:\n  - assert:\n"
        "      - {type: similar, value: hello}\n",
        "(line 5): assertion type 'similar' is not supported (embedding similarity",
    ),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests:\n  - assert:\n"
        "      - {type: factuality, value: hello}\n",
        "assertion type 'factuality' is not supported",
    ),
    (
        "prompts: [hi]\nproviders:\n  - id: anthropic:messages:claude\n",
        "providers[0] (line 3): provider 'anthropic:messages:claude' is not supported",
    ),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\nscenarios: []\n",
        "unsupported key(s) scenarios",
    ),
    (
        "prompts: ['{{ items | dump }}']\nproviders: [elumenta:gpt-5-nano]\n",
        "the Nunjucks filter 'dump' has no equivalent",
    ),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests:\n  - assert:\n"
        "      - {type: llm-rubric, value: Is polite.}\n",
        "llm-rubric needs a grading model: set defaultTest.options.provider",
    ),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests:\n  - assert:\n"
        "      - {type: llm-rubric, value: Is polite., provider: openai:gpt-4}\n",
        "a per-assertion 'provider' is not supported",
    ),
    (
        "prompts: [file://missing.txt]\nproviders: [elumenta:gpt-5-nano]\n",
        "cannot read file://missing.txt",
    ),
    ("prompts: [hi]\nproviders: [elumenta:no-such-model]\n", "unknown model 'no-such-model'"),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests: [{vars: {x: 1}, asert: []}]\n",
        "unsupported key(s) asert",
    ),
    ("prompts: [\n", "is not valid YAML"),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests: [{vars: [1]}]\n",
        "'vars' must be a mapping",
    ),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\ntests: [{assert: {type: is-json}}]\n",
        "'assert' must be a list",
    ),
    (
        "prompts: [hi]\nproviders: [elumenta:gpt-5-nano]\n"
        "tests: [{assert: [{type: is-json, metric: [1]}]}]\n",
        "'metric' is a name",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_CONFIGS)
def test_what_cannot_run_is_named_before_anything_is_sent(
    tmp_path: Path, settings: Settings, fake_elumenta: FakeElumenta, content: str, message: str
) -> None:
    path = tmp_path / "promptfooconfig.yaml"
    path.write_text(content)
    code, _, err = run(["eval", str(path)], settings)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert fake_elumenta.requests == []
