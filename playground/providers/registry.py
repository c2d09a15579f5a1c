"""Build the providers a session can use from the settings."""

from __future__ import annotations

from pydantic import SecretStr

from playground.catalog import Catalog
from playground.config import Settings
from playground.providers._http import RetryPolicy
from playground.providers.base import Provider
from playground.providers.demo import DemoProvider
from playground.providers.elumenta import ElumentaProvider
from playground.providers.openai_compatible import OpenAICompatibleProvider


def build_providers(
    settings: Settings,
    catalog: Catalog,
    *,
    elumenta_api_key: SecretStr | None = None,
) -> dict[str, Provider]:
    """Every provider the settings allow, keyed by name.

    The demo is always there; Elumenta is there even without a key (a call then fails with
    a clear "no key" error); OpenAI-compatible only when its base URL is configured.
    ``elumenta_api_key`` (e.g. typed into the Settings page) overrides the environment's.
    """
    retry = RetryPolicy(max_retries=settings.max_retries, max_wait_s=settings.max_retry_wait_s)
    providers: dict[str, Provider] = {
        "demo": DemoProvider(catalog, time_scale=settings.demo_time_scale),
        "elumenta": ElumentaProvider(
            api_key=elumenta_api_key or settings.elumenta_api_key,
            base_url=settings.elumenta_base_url,
            catalog=catalog,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_connections=settings.max_streams,
            retry=retry,
        ),
    }
    if settings.openai_base_url:
        providers["openai_compatible"] = OpenAICompatibleProvider(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model_names=settings.openai_model_list,
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            max_connections=settings.max_streams,
            retry=retry,
        )
    return providers
