"""Build the providers a session can use from the settings."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from pydantic import SecretStr

from playground.catalog import Catalog
from playground.config import Settings
from playground.providers._http import RetryPolicy
from playground.providers.base import Provider
from playground.providers.demo import DemoProvider
from playground.providers.elumenta import ElumentaProvider
from playground.providers.openai_compatible import OpenAICompatibleProvider


def environment_key_for(settings: Settings, base_url: str) -> SecretStr | None:
    """``ELUMENTA_API_KEY``, but only for the base URL it was configured with.

    Anyone who can change the base URL in a session (the Settings page) must not be able
    to send the server's key to a host of their choosing: any other URL gets no key.
    """
    return _key_for(base_url, settings.elumenta_base_url, settings.elumenta_api_key)


def openai_environment_key_for(settings: Settings, base_url: str) -> SecretStr | None:
    """``OPENAI_COMPATIBLE_API_KEY``, only for ``OPENAI_COMPATIBLE_BASE_URL`` (as above)."""
    return _key_for(base_url, settings.openai_base_url, settings.openai_api_key)


def _key_for(base_url: str, configured_url: str | None, key: SecretStr | None) -> SecretStr | None:
    if configured_url is None or base_url.strip().rstrip("/") != configured_url:
        return None
    return key


def withheld_key_message(settings: Settings, base_url: str) -> str:
    """What to tell a user whose changed base URL gets no key from the environment."""
    return (
        f"The Elumenta base URL was changed to {_host(base_url)}: the API key from the "
        f"environment is sent only to {_host(settings.elumenta_base_url)}. Enter the API key "
        "for this server in Settings."
    )


def key_format_warning(key: str) -> str | None:
    """A warning when ``key`` does not have the form of an Elumenta API key (``nb_…``), or
    ``None``. The key itself is never part of the message."""
    key = key.strip()
    if not key or key.startswith("nb_"):
        return None
    return (
        "This does not look like an Elumenta API key: they start with `nb_`. "
        "It is kept, but runs will likely fail with “bad or expired key”. "
        "Copy the key again from your Elumenta account page."
    )


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def build_providers(
    settings: Settings,
    catalog: Catalog,
    *,
    elumenta_api_key: SecretStr | None = None,
    elumenta_base_url: str | None = None,
    openai_api_key: SecretStr | None = None,
    openai_base_url: str | None = None,
    openai_models: list[str] | None = None,
    demo_spent: Callable[[], int] | None,
) -> dict[str, Provider]:
    """Every provider the settings allow, keyed by name.

    The demo is always there; Elumenta is there even without a key (a call then fails with
    a clear "no key" error); OpenAI-compatible only when its base URL is configured.
    ``elumenta_api_key`` and ``elumenta_base_url`` (e.g. typed into the Settings page)
    override the environment's; the environment's key never goes to another base URL
    (see :func:`environment_key_for`). The same holds for the OpenAI-compatible server's
    ``openai_*`` overrides (:func:`openai_environment_key_for`). ``demo_spent`` reads the
    demo tokens the history recorded, so the demo balance is one persisted figure (see
    ``DemoProvider``); it is required so that no entry point keeps a demo balance of its
    own by omission: ``None`` only where nothing the demo answers is recorded.
    """
    base_url = (elumenta_base_url or settings.elumenta_base_url).strip().rstrip("/")
    api_key = elumenta_api_key or environment_key_for(settings, base_url)
    withheld = api_key is None and settings.elumenta_api_key is not None
    retry = RetryPolicy(max_retries=settings.max_retries, max_wait_s=settings.max_retry_wait_s)
    providers: dict[str, Provider] = {
        "demo": DemoProvider(catalog, time_scale=settings.demo_time_scale, spent=demo_spent),
        "elumenta": ElumentaProvider(
            api_key=api_key,
            base_url=base_url,
            catalog=catalog,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_connections=settings.max_streams,
            retry=retry,
            missing_key_message=withheld_key_message(settings, base_url) if withheld else None,
        ),
    }
    openai_url = (openai_base_url or settings.openai_base_url or "").strip().rstrip("/")
    if openai_url:
        providers["openai_compatible"] = OpenAICompatibleProvider(
            base_url=openai_url,
            api_key=openai_api_key or openai_environment_key_for(settings, openai_url),
            model_names=openai_models or settings.openai_model_list,
            prices=settings.openai_prices,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_connections=settings.max_streams,
            retry=retry,
        )
    return providers
