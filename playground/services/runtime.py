"""The one place that builds process-wide objects for the UI: settings, catalog, runner, providers.

Streamlit reruns page scripts on every interaction and runs sessions in parallel threads;
everything here is built once per process (providers once per API key and base URL) under
a lock, so two sessions share one runner loop and its pooled HTTP clients.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from pydantic import SecretStr
from sqlalchemy.orm import Session

from playground import config
from playground.catalog import Catalog, load_catalog, refresh_catalog, save_catalog
from playground.config import ProviderName, Settings
from playground.errors import (
    APITimeoutError,
    ConfigError,
    PlaygroundError,
    SchemaNewerThanCodeError,
)
from playground.providers.base import Balance, Provider
from playground.providers.elumenta import ElumentaProvider
from playground.providers.registry import build_providers, environment_key_for
from playground.redact import mask_secret, mask_url
from playground.results import Recorder
from playground.runner import Runner
from playground.store import (
    Store,
    StoreRecorder,
    open_configured_store,
)
from playground.store.db import check_database_url
from playground.store.spending import provider_tokens_spent

ProviderChoice = Literal["auto", "elumenta", "demo", "openai_compatible"]
PROVIDER_LABELS: dict[str, str] = {
    "elumenta": "Elumenta",
    "demo": "Demo (offline, simulated)",
    "openai_compatible": "OpenAI-compatible",
}
BALANCE_TIMEOUT_S = 15.0
CATALOG_REFRESH_TIMEOUT_S = 120.0
MAX_PROVIDER_SETS = 32
CATALOG_RECHECK_S = 1.0
"""How long the catalog file is trusted unchanged: a page run asks for the catalog several
times, and each look at the file is a system call, on which a script thread under load
waits for the interpreter lock again (seen as a tenth of the script threads' time with 20
users). A refresh by this process forgets it at once; another process's, within a second."""

_lock = threading.RLock()
_runner: Runner | None = None
_settle_memory = False
_catalog: tuple[tuple[str, int], Catalog] | None = None
_catalog_checked_at = 0.0
_store: Store | None = None
_providers: OrderedDict[tuple[str, str, tuple[str, int]], dict[str, Provider]] = OrderedDict()


@dataclass(frozen=True)
class Connection:
    """Which provider a session uses and how it reaches Elumenta."""

    provider: ProviderName
    elumenta_base_url: str
    api_key: SecretStr | None
    key_source: Literal["session", "environment"] | None
    # ELUMENTA_API_KEY is set but not sent: the session changed the base URL.
    key_withheld: bool = False
    # The OpenAI-compatible server typed in Settings (``None``/empty: the environment's).
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_models: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The provider's name for the sidebar, e.g. ``Demo (offline, simulated)``."""
        if self.provider == "elumenta":
            host = urlsplit(self.elumenta_base_url).netloc or self.elumenta_base_url
            return f"Elumenta · {host}"
        return PROVIDER_LABELS[self.provider]

    @property
    def fingerprint(self) -> str:
        """A digest that changes with provider, base URL or key (safe to keep in a session)."""
        return hashlib.sha256(self._identity().encode()).hexdigest()

    def _identity(self) -> str:
        """Everything that decides where requests go and with which keys, in one string."""
        key = self.api_key.get_secret_value() if self.api_key else ""
        openai_key = self.openai_api_key.get_secret_value() if self.openai_api_key else ""
        return "\n".join(
            [
                self.provider,
                self.elumenta_base_url,
                key,
                self.openai_base_url or "",
                openai_key,
                ",".join(self.openai_models),
            ]
        )

    @property
    def key_hint(self) -> str:
        """The key in use, masked (``nb_…a1b2``), and where it came from."""
        if self.api_key is None:
            return "no API key"
        return f"{mask_secret(self.api_key)} (from {self.key_source})"


def get_settings() -> Settings:
    """The process's settings (read once from the environment; :func:`reset` re-reads)."""
    return config.get_settings()


def connection_from(
    choice: ProviderChoice = "auto",
    base_url: str = "",
    typed_key: str = "",
    openai_base_url: str = "",
    openai_api_key: str = "",
    openai_models: str = "",
) -> Connection:
    """The connection for choices made on the Settings page, over the environment's.

    ``auto`` means ``PLAYGROUND_PROVIDER`` if set, else Elumenta with a key, else the demo.
    A key typed into Settings wins over ``ELUMENTA_API_KEY``, which is used only with the
    configured base URL: with another one the key must be typed (``key_withheld``).
    ``openai_models`` is comma-separated.
    """
    settings = get_settings()
    typed_key = typed_key.strip()
    base_url = base_url.strip().rstrip("/") or settings.elumenta_base_url
    api_key = SecretStr(typed_key) if typed_key else environment_key_for(settings, base_url)
    key_source: Literal["session", "environment"] | None = None
    if typed_key:
        key_source = "session"
    elif api_key is not None:
        key_source = "environment"
    provider: ProviderName
    if choice != "auto":
        provider = choice
    elif settings.provider is not None:
        provider = settings.provider
    else:
        provider = "elumenta" if typed_key or settings.elumenta_api_key else "demo"
    openai_url = openai_base_url.strip().rstrip("/") or None
    openai_key = openai_api_key.strip()
    models = tuple(m.strip() for m in openai_models.split(",") if m.strip())
    if provider == "openai_compatible" and not (openai_url or settings.openai_base_url):
        provider = "demo"
    withheld = api_key is None and settings.elumenta_api_key is not None
    return Connection(
        provider,
        base_url,
        api_key,
        key_source,
        key_withheld=withheld,
        openai_base_url=openai_url,
        openai_api_key=SecretStr(openai_key) if openai_key else None,
        openai_models=models,
    )


def get_catalog() -> Catalog:
    """The model catalog, re-read when its file changes (e.g. after a refresh)."""
    global _catalog, _catalog_checked_at
    path = get_settings().resolved_catalog_path
    now = time.monotonic()
    with _lock:
        if (
            _catalog is not None
            and _catalog[0][0] == str(path)
            and now - _catalog_checked_at < CATALOG_RECHECK_S
        ):
            return _catalog[1]
    version = (str(path), path.stat().st_mtime_ns if path.exists() else 0)
    with _lock:
        if _catalog is None or _catalog[0] != version:
            _catalog = (version, load_catalog(path))
        _catalog_checked_at = now
        return _catalog[1]


def _forget_catalog() -> None:
    """Read the catalog file again on the next :func:`get_catalog` (this process saved it)."""
    global _catalog
    with _lock:
        _catalog = None


def _catalog_version() -> tuple[str, int]:
    get_catalog()
    assert _catalog is not None
    return _catalog[0]


GC_YOUNG_THRESHOLD = 10_000
"""Allocations between two young-generation collections in the app process (Python's
default: 700). Measured with 20 load users (30 s): the collector's CPU fell from 1.4 s
(gen0 0.47, gen1 0.24, four full collections 0.67 s, each pausing every thread) to 0.3 s,
with no full collection; resident memory unchanged (~155 MB)."""


def settle_memory() -> None:
    """Make the garbage collector cheap for a long-lived app process: collect once, move
    what survives (modules, classes, caches: ~170k objects) out of the collector's sight
    (``gc.freeze``), so a full collection walks only what was made since, and collect the
    young generation less often (:data:`GC_YOUNG_THRESHOLD`). Called once, when the
    app's runner starts in a served app (:func:`settle_memory_when_serving`)."""
    gc.collect()
    gc.freeze()
    _young, *older = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *older)


def settle_memory_when_serving() -> None:
    """Have :func:`get_runner` settle the process's memory when it creates the runner: by
    then the app's modules are loaded. Only the served app asks (``serve.py``), not the
    command line or a test process."""
    global _settle_memory
    _settle_memory = True


def get_runner() -> Runner:
    """The process's single runner (its loop thread outlives every script rerun)."""
    global _runner
    settings = get_settings()
    catalog = get_catalog()
    with _lock:
        if _runner is None:
            if _settle_memory:
                settle_memory()
            _runner = Runner.from_settings(catalog, settings)
        # Prices of new runs follow a refreshed catalog.
        _runner.catalog = catalog
        return _runner


def get_providers(connection: Connection) -> dict[str, Provider]:
    """Every provider available to ``connection``, built once per key, base URL and catalog."""
    settings = get_settings()
    key = connection.api_key.get_secret_value() if connection.api_key else ""
    cache_key = (
        hashlib.sha256(connection._identity().encode()).hexdigest(),
        connection.elumenta_base_url,
        _catalog_version(),
    )
    with _lock:
        providers = _providers.get(cache_key)
        if providers is None:
            providers = build_providers(
                settings,
                get_catalog(),
                elumenta_api_key=_key_or_none(key),
                elumenta_base_url=connection.elumenta_base_url,
                openai_api_key=connection.openai_api_key,
                openai_base_url=connection.openai_base_url,
                openai_models=list(connection.openai_models) or None,
                demo_spent=demo_tokens_spent,
            )
            _providers[cache_key] = providers
            while len(_providers) > MAX_PROVIDER_SETS:
                _close_later(_providers.popitem(last=False)[1], settings)
        _providers.move_to_end(cache_key)
        return providers


def _key_or_none(key: str) -> SecretStr | None:
    return SecretStr(key) if key else None


def _close_later(providers: Mapping[str, Provider], settings: Settings) -> None:
    # A run may still stream through these; no run outlives model_timeout_s.
    runner = get_runner()

    def close() -> None:
        for provider in providers.values():
            runner.loop.create_task(provider.aclose())

    runner.loop.call_soon_threadsafe(runner.loop.call_later, settings.model_timeout_s, close)


def get_store() -> Store:
    """The process's history database, opened (migrated, crashed runs recovered) once."""
    global _store
    with _lock:
        if _store is None:
            _store = open_configured_store(get_settings())
        return _store


def demo_tokens_spent() -> int:
    """The demo tokens the process's history recorded: what the one demo balance is
    :data:`~playground.providers.demo.DEMO_STARTING_BALANCE` minus, for every entry point."""
    return provider_tokens_spent(get_store().engine, "demo")


def check_schema_not_newer() -> None:
    """Raise :class:`SchemaNewerThanCodeError` if a newer release migrated the database.

    Opens the store for that; any other failure to open it is left to the page that needs
    the database, which says so where the user acts (an outage must not hide every page).
    """
    try:
        get_store()
    except SchemaNewerThanCodeError:
        raise
    except PlaygroundError:
        return


def check_configuration() -> None:
    """Raise a ``PlaygroundError`` for a bad setting, database URL or catalog, or a database
    that a newer release migrated (:func:`check_schema_not_newer`).

    The app calls it before drawing any page. Connects to the database only for the schema
    check, and a database that does not answer is not an error here.
    """
    check_database_url(get_settings().resolved_database_url)
    get_catalog()
    check_schema_not_newer()


def get_recorder(
    owner: str | None = None,
    *,
    before_start: Callable[[Session], None] | None = None,
    after_start: Callable[[Session, int], None] | None = None,
) -> Recorder:
    """Where runs are recorded: the history store, pricing results from the current catalog.

    With an ``owner`` (hosted mode) cached answers come only from that user's own history.
    ``before_start`` and ``after_start`` (the new comparison's id) run in the transaction
    that stores a comparison, around its rows: what they raise stores nothing.
    """
    store = get_store()
    return StoreRecorder(
        store.engine,
        get_catalog().cost_of,
        owner=owner,
        writes=store.writes,
        before_start=before_start,
        after_start=after_start,
    )


def fetch_balance(connection: Connection) -> Balance:
    """The balance and quota of the connection's provider; raises a ``PlaygroundError``."""
    provider = get_providers(connection)[connection.provider]
    try:
        balance: Balance = get_runner().run_coroutine(
            asyncio.wait_for(provider.balance(), BALANCE_TIMEOUT_S), timeout=BALANCE_TIMEOUT_S + 5
        )
    except TimeoutError as exc:
        raise APITimeoutError(
            f"The balance check took longer than {BALANCE_TIMEOUT_S:g} s."
        ) from exc
    return balance


def refresh_model_catalog(connection: Connection) -> tuple[int, dict[str, str]]:
    """Update every model's price from ``GET /models/{slug}`` and save the catalog file.

    Returns how many models were refreshed and the error of each one that was not. Raises
    ``ConfigError`` without a key: the catalog can only be refreshed from the API.
    """
    if connection.api_key is None:
        raise ConfigError("Enter an Elumenta API key first: prices are read from the API.")
    elumenta = get_providers(connection)["elumenta"]
    if not isinstance(elumenta, ElumentaProvider):
        raise ConfigError("The Elumenta provider is not available.")
    catalog = get_catalog()
    try:
        refreshed, errors = get_runner().run_coroutine(
            asyncio.wait_for(
                refresh_catalog(catalog, elumenta.model_details), CATALOG_REFRESH_TIMEOUT_S
            ),
            timeout=CATALOG_REFRESH_TIMEOUT_S + 5,
        )
    except TimeoutError as exc:
        raise APITimeoutError("Refreshing the catalog took too long; try again.") from exc
    if len(errors) < len(catalog):
        save_catalog(refreshed, get_settings().resolved_catalog_path)
        _forget_catalog()
    return len(catalog) - len(errors), errors


def database_label() -> str:
    """The database URL in use, with any password masked."""
    return mask_url(get_settings().resolved_database_url)


def reset() -> None:
    """Close and forget every process-wide object; the next call rebuilds from the environment.

    Tests use it to apply new environment settings between app runs.
    """
    global _runner, _catalog, _store
    with _lock:
        if _store is not None:
            _store.close()
            _store = None
        if _runner is not None:
            for providers in _providers.values():
                for provider in providers.values():
                    _runner.run_coroutine(provider.aclose(), timeout=5)
            _runner.close()
        _runner, _catalog = None, None
        _providers.clear()
        config.get_settings.cache_clear()
