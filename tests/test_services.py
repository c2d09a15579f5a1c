"""The UI's process-wide objects: connection choice, cached providers and catalog, runs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from playground.errors import InvalidRequestError
from playground.principal import Principal
from playground.providers.base import GenerationParams, Message
from playground.results import CompareRequest, ModelTarget
from playground.runner import ColumnRef
from playground.services import compare, runtime
from tests.fake_elumenta import FakeElumenta, ModelScript
from ui.connection import (
    API_KEY_KEY,
    BASE_URL_KEY,
    PROVIDER_CHOICE_KEY,
    cached_balance,
    connection_from_state,
)


def request(*models: str, prompt: str = "Hi") -> CompareRequest:
    return CompareRequest(
        messages=(Message("user", prompt),),
        targets=tuple(ModelTarget("demo", m) for m in models),
        params=GenerationParams(),
    )


class TestConnection:
    def test_without_a_key_auto_means_the_demo(self, app_env: Path) -> None:
        connection = runtime.connection_from()
        assert connection.provider == "demo"
        assert connection.label == "Demo (offline, simulated)"
        assert connection.key_hint == "no API key"

    def test_an_environment_key_means_elumenta(
        self, app_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ELUMENTA_API_KEY", "nb_env_key_0000_abcd")
        runtime.reset()
        connection = runtime.connection_from()
        assert connection.provider == "elumenta"
        assert connection.label == "Elumenta · elumenta.ru"
        assert connection.key_hint == "nb_…abcd (from environment)"

    def test_session_choices_win_over_the_environment(
        self, app_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ELUMENTA_API_KEY", "nb_env_key_0000_abcd")
        runtime.reset()
        state = {
            API_KEY_KEY: "  nb_typed_key_000_wxyz ",
            BASE_URL_KEY: "http://127.0.0.1:9/api/v2/",
        }
        connection = connection_from_state(state)
        assert connection.api_key is not None
        assert connection.api_key.get_secret_value() == "nb_typed_key_000_wxyz"
        assert connection.key_hint == "nb_…wxyz (from session)"
        assert connection.elumenta_base_url == "http://127.0.0.1:9/api/v2"
        demo = connection_from_state({**state, PROVIDER_CHOICE_KEY: "demo"})
        assert demo.provider == "demo"
        assert demo.fingerprint != connection.fingerprint

    def test_a_changed_base_url_withholds_the_environment_key(
        self, app_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("ELUMENTA_API_KEY", "nb_env_key_0000_abcd")
        runtime.reset()
        elsewhere = {BASE_URL_KEY: "http://attacker.example/api/v2"}
        connection = connection_from_state(elsewhere)
        assert (connection.provider, connection.api_key) == ("elumenta", None)
        assert connection.key_withheld and connection.key_hint == "no API key"
        same = connection_from_state({BASE_URL_KEY: "https://elumenta.ru/api/v2/"})
        assert same.api_key is not None and not same.key_withheld

    def test_an_unconfigured_openai_compatible_provider_falls_back_to_the_demo(
        self, app_env: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("PLAYGROUND_PROVIDER", "openai_compatible")
        runtime.reset()
        assert runtime.connection_from().provider == "demo"


def test_providers_are_built_once_per_key(app_env: Path) -> None:
    demo = runtime.connection_from()
    keyed = connection_from_state({API_KEY_KEY: "nb_other_key_00001"})
    assert runtime.get_providers(demo) is runtime.get_providers(demo)
    assert runtime.get_providers(keyed) is not runtime.get_providers(demo)


def _catalog_costing(slug: str, cost: int) -> Path:
    """Write the catalog file with ``slug`` at ``cost`` billing tokens; returns its path."""
    path = runtime.get_settings().resolved_catalog_path
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(runtime.get_catalog().to_json())
    for model in doc["models"]:
        if model["slug"] == slug:
            model["token_cost"] = cost
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_the_catalog_is_reread_when_its_file_changes(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runtime.get_catalog().cost_of("gpt-5") == 2
    _catalog_costing("gpt-5", 7)
    # Another process's change shows once the file is looked at again.
    monkeypatch.setattr(runtime, "CATALOG_RECHECK_S", 0.0)

    assert runtime.get_catalog().cost_of("gpt-5") == 7
    assert runtime.get_runner().catalog is runtime.get_catalog()


def test_a_page_run_looks_at_the_catalog_file_at_most_once_a_second(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each look is a system call, after which a script thread under load waits for the
    interpreter lock: a page run asks for the catalog several times."""
    runtime.get_catalog()
    path = _catalog_costing("gpt-5", 7)
    looks: list[Path] = []
    real_stat = Path.stat

    def counted_stat(self: Path, **kwargs: object) -> object:
        if self == path:
            looks.append(self)
        return real_stat(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "stat", counted_stat)
    assert [runtime.get_catalog().cost_of("gpt-5") for _ in range(5)] == [2] * 5
    assert looks == []
    monkeypatch.setattr(runtime, "CATALOG_RECHECK_S", 0.0)
    assert runtime.get_catalog().cost_of("gpt-5") == 7
    assert looks


def test_a_catalog_refresh_by_this_process_shows_at_once(with_fake: None) -> None:
    catalog = runtime.get_catalog()
    assert catalog.cost_of("gpt-5") == 2
    connection = runtime.connection_from()
    refreshed, errors = runtime.refresh_model_catalog(connection)

    assert refreshed == len(catalog) and not errors
    assert runtime.get_catalog() is not catalog
    assert runtime.get_settings().resolved_catalog_path.exists()


def test_the_demo_balance_is_read_on_the_runner_loop(app_env: Path) -> None:
    balance = runtime.fetch_balance(runtime.connection_from())
    assert balance.plan == "Demo"
    assert balance.token_balance == 1000


def test_the_balance_is_cached_per_connection_and_errors_are_explained(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state: dict[str, object] = {}
    demo = runtime.connection_from()
    balance, error = cached_balance(state, demo)
    assert balance is not None and error is None
    calls: list[object] = []
    monkeypatch.setattr(runtime, "fetch_balance", lambda c: calls.append(c))
    assert cached_balance(state, demo) == (balance, None)
    assert calls == []

    monkeypatch.undo()
    no_key = connection_from_state({PROVIDER_CHOICE_KEY: "elumenta"})
    balance, error = cached_balance(state, no_key)
    assert balance is None
    assert error is not None and error.startswith("No Elumenta API key is configured.")


def test_a_run_can_be_found_again_and_one_column_rerun(app_env: Path) -> None:
    connection = runtime.connection_from()
    handle = compare.start_compare(request("gpt-5-nano", "gpt-5"), connection)
    handle.wait(10)
    columns = [ColumnRef(handle.run_id, 0), ColumnRef(handle.run_id, 1)]

    assert compare.open_run(handle.run_id) is handle
    state = compare.column_results(columns)
    assert state is not None
    assert [r.status for r in state[0]] == ["completed", "completed"]

    columns[1] = compare.rerun_column(columns[1], connection)
    assert columns[1].index == 0
    rerun = compare.open_run(columns[1].run_id)
    assert rerun is not None
    assert [t.model for t in rerun.request.targets] == ["gpt-5"]
    assert compare.column_results([ColumnRef("gone", 0)]) is None


def test_the_configured_prompt_limit_is_enforced(
    app_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYGROUND_MAX_PROMPT_CHARS", "10")
    runtime.reset()
    with pytest.raises(InvalidRequestError, match="the limit is 10"):
        compare.start_compare(request("gpt-5", prompt="x" * 11), runtime.connection_from())


def test_a_second_run_while_the_shown_one_streams_is_refused(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(text="slow", ttft_ms=1000))
    connection = runtime.connection_from()
    ask = replace(
        request(),
        targets=(ModelTarget("elumenta", "gpt-5-nano"), ModelTarget("elumenta", "gpt-5")),
    )
    first = compare.start_compare(ask, connection)
    shown = [ColumnRef(first.run_id, 0), ColumnRef(first.run_id, 1)]

    assert compare.still_running(shown)
    with pytest.raises(InvalidRequestError, match="still running"):
        compare.start_compare(ask, connection, shown=shown)
    first.wait(10)
    assert not compare.still_running(shown)
    compare.start_compare(ask, connection, shown=shown).wait(10)
    streams = [r for r in fake_elumenta.requests if r.path.endswith("/generate/stream")]
    assert len(streams) == 4  # two comparisons, the second once the first had finished


def test_stop_all_returns_once_the_stopped_answers_are_final(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    # The page drawn right after Stop all reads the columns: they must be final by then.
    words = " ".join(f"word{n}" for n in range(500))
    fake_elumenta.script("*", ModelScript(text=words, ttft_ms=10, delay_ms=100))
    models = ("gpt-5-nano", "gpt-5", "deepseek-v3")
    ask = replace(request(), targets=tuple(ModelTarget("elumenta", m) for m in models))
    handle = compare.start_compare(ask, runtime.connection_from())
    columns = [ColumnRef(handle.run_id, i) for i in range(len(models))]
    snapshot = handle.snapshot()
    while not all(r.content for r in snapshot.results):
        snapshot = handle.wait(0.05)

    compare.stop_columns(columns)

    state = compare.column_results(columns)
    assert state is not None
    results, done = state
    assert done
    assert [r.status for r in results] == ["cancelled"] * len(models)
    assert all(r.content.startswith("word0") for r in results)


def test_stop_all_leaves_another_users_run_alone(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(text="slow answer", ttft_ms=300))
    ask = replace(
        request(), targets=(ModelTarget("elumenta", "gpt-5-nano"),), owner="ana@example.org"
    )
    handle = compare.start_compare(ask, runtime.connection_from())
    bob = Principal(2, "bob@example.org", "Bob", "member")

    compare.stop_columns([ColumnRef(handle.run_id, 0)], bob, wait_s=0.2)

    assert not compare.may_stop(handle.run_id, bob)
    assert handle.wait(10).results[0].status == "completed"
