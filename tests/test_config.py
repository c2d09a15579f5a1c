"""Settings: env names, safe defaults, and the key never printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from playground.config import Settings, load_settings
from playground.errors import ConfigError


def test_defaults_work_with_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ELUMENTA_API_KEY", "PLAYGROUND_DATABASE_URL", "PLAYGROUND_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.elumenta_base_url == "https://elumenta.ru/api/v2"
    assert settings.default_provider == "demo"
    assert settings.resolved_database_url.startswith("sqlite:///")


def test_env_names_are_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ELUMENTA_API_KEY", "nb_secret_value_123")
    monkeypatch.setenv("ELUMENTA_BASE_URL", "http://127.0.0.1:9/api/v2/")
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("PLAYGROUND_DATA_DIR", str(tmp_path))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.default_provider == "elumenta"
    assert settings.elumenta_base_url == "http://127.0.0.1:9/api/v2"
    assert settings.resolved_database_url == "postgresql+psycopg://u@h/db"
    assert settings.resolved_catalog_path == tmp_path / "models.json"


def test_api_key_is_not_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ELUMENTA_API_KEY", "nb_secret_value_123")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert "nb_secret_value_123" not in repr(settings)
    assert "nb_secret_value_123" not in str(settings)
    assert "nb_secret_value_123" not in settings.model_dump_json()


DATABASE_PASSWORD = "hunter2-db-password"
DATABASE_URL = f"postgresql+psycopg://app:{DATABASE_PASSWORD}@db.internal:5432/pg"


@pytest.mark.parametrize(
    "url", [DATABASE_URL, f"postgresql+psycopg://app@db.internal/pg?password={DATABASE_PASSWORD}"]
)
def test_the_database_password_is_never_printed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", url)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    printed = {
        "repr": repr(settings),
        "str": str(settings),
        "field": f"{settings.database_url} {settings.database_url!r}",
        "model_dump": str(settings.model_dump()),
        "model_dump(json)": str(settings.model_dump(mode="json")),
        "model_dump_json": settings.model_dump_json(),
    }
    for where, text in printed.items():
        assert DATABASE_PASSWORD not in text, where
    assert "db.internal" in printed["repr"]  # masked, not hidden: the host still shows
    assert settings.resolved_database_url == url  # what opens the database is the real URL
    assert settings.uses_postgresql


def test_a_settings_error_never_repeats_the_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("PLAYGROUND_MAX_CONCURRENCY", "0")
    with pytest.raises(ConfigError) as invalid:
        load_settings()
    assert "PLAYGROUND_MAX_CONCURRENCY" in str(invalid.value)
    assert DATABASE_PASSWORD not in f"{invalid.value} {invalid.value.__cause__}"


def test_invalid_values_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_MAX_CONCURRENCY", "0")
    with pytest.raises(ValueError, match=r"max_concurrency|PLAYGROUND_MAX_CONCURRENCY"):
        Settings(_env_file=None)  # type: ignore[call-arg]


def test_worker_execution_refuses_sqlite_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"needs a PostgreSQL database.*leave it at in_process"):
        Settings(_env_file=None, data_dir=tmp_path, batch_execution="worker")  # type: ignore[call-arg]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="postgresql+psycopg://u@h/db",
        batch_execution="worker",
    )
    assert (settings.batch_execution, settings.batch_shards) == ("worker", 4)
    assert Settings(_env_file=None).batch_execution == "in_process"  # type: ignore[call-arg]


def test_a_stale_threshold_within_one_heartbeat_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLAYGROUND_BATCH_HEARTBEAT_S", "10")
    monkeypatch.setenv("PLAYGROUND_BATCH_STALE_AFTER_S", "5")
    with pytest.raises(ValueError, match="PLAYGROUND_BATCH_STALE_AFTER_S"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("secret", [None, "", "short-secret"])
def test_proxy_mode_refuses_to_start_without_a_proxy_secret(
    monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    monkeypatch.setenv("PLAYGROUND_AUTH", "proxy")
    if secret is None:
        monkeypatch.delenv("PLAYGROUND_PROXY_SECRET", raising=False)
    else:
        monkeypatch.setenv("PLAYGROUND_PROXY_SECRET", secret)
    with pytest.raises(ConfigError, match="PLAYGROUND_AUTH=proxy needs PLAYGROUND_PROXY_SECRET"):
        load_settings()


def test_the_proxy_secret_is_not_in_repr_or_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "proxy-secret-value-0123456789"
    monkeypatch.setenv("PLAYGROUND_AUTH", "proxy")
    monkeypatch.setenv("PLAYGROUND_PROXY_SECRET", secret)
    monkeypatch.setenv("PLAYGROUND_MAX_STREAMS", "0")  # an error elsewhere in the same settings
    with pytest.raises(ConfigError) as caught:
        load_settings()
    monkeypatch.delenv("PLAYGROUND_MAX_STREAMS")
    settings = load_settings()
    assert settings.proxy_secret is not None
    assert settings.proxy_secret.get_secret_value() == secret
    assert secret not in repr(settings) + str(settings) + settings.model_dump_json()
    assert secret not in str(caught.value)
