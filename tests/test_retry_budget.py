"""One retry budget per answer, shared by every layer that retries (README "Retries").

A model that answers 429 for ever receives ``PLAYGROUND_MAX_RETRIES + 1`` requests from a
batch cell and from a comparison column: the batch's re-queueing and the provider's own
retries draw on the same count, whether the provider waits out a short ``retry-after``
itself or gives a long one back to the batch (which pauses, then sends what is left).
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from playground.catalog import load_catalog
from playground.config import Settings
from playground.evaluation.batch import BatchJob
from playground.providers._http import RetryPolicy
from playground.providers.base import Message, Provider
from playground.providers.elumenta import ElumentaProvider
from playground.providers.openai_compatible import OpenAICompatibleProvider
from playground.results import CompareRequest, ModelTarget
from playground.runner import Runner
from playground.store import Store
from tests.evaluation_fixtures import plan
from tests.fake_elumenta import FakeElumenta, ModelScript

SETTINGS = Settings(max_retries=3, max_retry_wait_s=0.05)
BUDGET = SETTINGS.max_retries + 1  # the documented budget: 4 requests by default
RETRY = RetryPolicy(max_retries=SETTINGS.max_retries, max_wait_s=SETTINGS.max_retry_wait_s)


def elumenta(fake: FakeElumenta) -> ElumentaProvider:
    """The provider as the registry builds it from ``SETTINGS``: it waits out a retry-after
    of up to 0.05 s itself and gives a longer one back to its caller."""
    return ElumentaProvider(
        api_key=SecretStr(fake.api_key), base_url=fake.base_url, catalog=load_catalog(), retry=RETRY
    )


def _sent(fake: FakeElumenta, suffix: str) -> int:
    return sum(r.path.endswith(suffix) for r in fake.requests)


@pytest.mark.parametrize(
    "retry_after_s", [0.01, 0.2], ids=["provider-waits", "batch-pauses-for-a-long-wait"]
)
def test_a_batch_cell_rate_limited_for_ever_sends_the_budget(
    store: Store, fake_elumenta: FakeElumenta, retry_after_s: float
) -> None:
    fake_elumenta.script("gpt-5-nano", ModelScript(status=429, retry_after_s=retry_after_s))
    batch_id = plan(store, ["gpt-5-nano"], rows=1, concurrency=1)

    def providers() -> dict[str, Provider]:
        return {"elumenta": elumenta(fake_elumenta)}

    batch_job = BatchJob(store, batch_id, load_catalog(), providers, settings=SETTINGS)
    progress = batch_job.start().wait(60)
    assert progress.failed == 1
    assert _sent(fake_elumenta, "/generate/stream") == BUDGET


@pytest.mark.parametrize("provider", ["elumenta", "openai_compatible"])
def test_a_compare_column_rate_limited_for_ever_sends_the_budget(
    fake_elumenta: FakeElumenta, provider: str
) -> None:
    fake_elumenta.script("gpt-5", ModelScript(status=429, retry_after_s=0.01))
    providers = {
        "elumenta": elumenta(fake_elumenta),
        "openai_compatible": OpenAICompatibleProvider(
            base_url=fake_elumenta.openai_base_url,
            api_key=None,
            model_names=["gpt-5"],
            retry=RETRY,
        ),
    }
    runner = Runner(load_catalog())
    try:
        request = CompareRequest(
            messages=(Message("user", "hi"),), targets=(ModelTarget(provider, "gpt-5"),)
        )
        (result,) = runner.start(request, providers).wait(30).results
        for each in providers.values():
            runner.run_coroutine(each.aclose())
    finally:
        runner.close()
    assert (result.status, result.error_code) == ("failed", "rate_limit_exceeded")
    assert result.requests_sent == BUDGET
    suffix = "/generate/stream" if provider == "elumenta" else "/chat/completions"
    assert _sent(fake_elumenta, suffix) == BUDGET
