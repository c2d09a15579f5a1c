"""Helpers for the evaluation tests: a planned batch and providers pointing at the fake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import SecretStr

from playground.catalog import Catalog, load_catalog
from playground.datasets import parse_dataset
from playground.evaluation.assertions import AssertionSpec
from playground.evaluation.batch import BatchJob
from playground.evaluation.plan import BatchSpec, plan_batch
from playground.providers._http import RetryPolicy
from playground.providers.base import Provider
from playground.providers.elumenta import ElumentaProvider
from playground.results import ModelTarget
from playground.store import Store
from playground.store.eval_repository import save_dataset, save_template_version
from playground.templates import PromptTemplate

CATALOG: Catalog = load_catalog()
TEMPLATE = PromptTemplate("You are terse.", "What is the capital of {{ country }}?")


def elumenta_factory(base_url: str, api_key: str, *, max_retries: int = 0):  # type: ignore[no-untyped-def]
    """Fresh Elumenta providers for a job's runner (retries off: the batch handles 429s)."""

    def build() -> Mapping[str, Provider]:
        return {
            "elumenta": ElumentaProvider(
                api_key=SecretStr(api_key),
                base_url=base_url,
                catalog=CATALOG,
                retry=RetryPolicy(max_retries=max_retries, base_backoff_s=0.01),
            )
        }

    return build


def plan(
    store: Store,
    models: Sequence[str],
    rows: int,
    *,
    assertions: Sequence[AssertionSpec] = (),
    budget_tokens: int | None = None,
    concurrency: int = 4,
    judge: str | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
    provider: str = "elumenta",
) -> int:
    """A batch of ``rows`` countries × ``models`` on ``provider``; returns its id.

    ``columns``: more dataset columns, one value per row (CSV-quoted here).
    """
    extra = dict(columns or {})
    header = ",".join(["country", *extra])
    lines = [
        ",".join([f"Country {i}", *(_csv_cell(values[i]) for values in extra.values())])
        for i in range(rows)
    ]
    csv_text = header + "\n" + "".join(line + "\n" for line in lines)
    with store.session() as session, session.begin():
        version = save_template_version(session, "capitals", TEMPLATE)
        dataset_id = save_dataset(session, "countries", parse_dataset(csv_text))
        spec = BatchSpec(
            title="capitals",
            template_version_ids=(version.id,),
            dataset_id=dataset_id,
            targets=tuple(ModelTarget(provider, m) for m in models),
            assertions=tuple(assertions),
            budget_tokens=budget_tokens,
            concurrency=concurrency,
            judge=None if judge is None else ModelTarget(provider, judge),
        )
        return plan_batch(session, spec)


def _csv_cell(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def job(store: Store, batch_id: int, base_url: str, api_key: str, **options: object) -> BatchJob:
    """A job for ``batch_id`` against the fake at ``base_url`` (not started)."""
    return BatchJob(
        store,
        batch_id,
        CATALOG,
        elumenta_factory(base_url, api_key),
        **options,  # type: ignore[arg-type]
    )
