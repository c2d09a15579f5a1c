"""Planning a batch: what to run (:class:`BatchSpec`), its cells, and what it will cost.

A batch is template versions × dataset rows × models. Planning validates everything that
can be checked before a request is sent: every template renders for every row, every
variable has a column, every assertion is well-formed, also with the values it takes from
a dataset column (a JSON Schema in each row is checked against Draft 2020-12).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from playground.datasets import Dataset, map_columns, row_values
from playground.errors import InvalidRequestError
from playground.evaluation.assertions import (
    AssertionSpec,
    check_dataset_values,
    parse_assertion,
)
from playground.providers.base import Balance, GenerationParams
from playground.results import ModelTarget
from playground.store.eval_repository import (
    CellKey,
    TemplateVersion,
    create_batch,
    get_dataset,
    get_template_version,
)
from playground.templates import RenderedPrompt, render


@dataclass(frozen=True)
class BatchSpec:
    """Everything a batch needs; stored as JSON with the batch so it can be resumed."""

    title: str
    template_version_ids: tuple[int, ...]
    dataset_id: int
    targets: tuple[ModelTarget, ...]
    mapping: Mapping[str, str] = field(default_factory=dict)
    assertions: tuple[AssertionSpec, ...] = ()
    params: GenerationParams = field(default_factory=GenerationParams)
    concurrency: int = 8
    budget_tokens: int | None = None
    judge: ModelTarget | None = None
    use_cache: bool = True

    def to_json(self) -> dict[str, Any]:
        """The JSON form kept in ``eval_batches.spec_json``."""
        return {
            "title": self.title,
            "template_version_ids": list(self.template_version_ids),
            "dataset_id": self.dataset_id,
            "targets": [{"provider": t.provider, "model": t.model} for t in self.targets],
            "mapping": dict(self.mapping),
            "assertions": [a.to_dict() for a in self.assertions],
            "params": self.params.to_dict(),
            "concurrency": self.concurrency,
            "budget_tokens": self.budget_tokens,
            "judge": None
            if self.judge is None
            else {"provider": self.judge.provider, "model": self.judge.model},
            "use_cache": self.use_cache,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BatchSpec:
        """Read back :meth:`to_json`."""
        judge = data.get("judge")
        return cls(
            title=data["title"],
            template_version_ids=tuple(data["template_version_ids"]),
            dataset_id=data["dataset_id"],
            targets=tuple(ModelTarget(t["provider"], t["model"]) for t in data["targets"]),
            mapping=dict(data.get("mapping", {})),
            assertions=tuple(parse_assertion(a) for a in data.get("assertions", [])),
            params=GenerationParams(**data.get("params", {})),
            concurrency=int(data.get("concurrency", 8)),
            budget_tokens=data.get("budget_tokens"),
            judge=None if judge is None else ModelTarget(judge["provider"], judge["model"]),
            use_cache=bool(data.get("use_cache", True)),
        )


@dataclass(frozen=True)
class BatchInputs:
    """A spec's template versions and dataset, loaded once, able to render any cell."""

    spec: BatchSpec
    versions: Mapping[int, TemplateVersion]
    dataset: Dataset
    mappings: Mapping[int, Mapping[str, str]]
    # Each pair rendered once: loading renders them all to check them, and a batch then
    # needs each again to send it and to grade its answers (Jinja compiles on every render).
    _rendered: dict[tuple[int, int], RenderedPrompt] = field(
        default_factory=dict, compare=False, repr=False
    )

    def render(self, version_id: int, row_index: int) -> RenderedPrompt:
        """The prompt of one (version, row) pair."""
        key = (version_id, row_index)
        prompt = self._rendered.get(key)
        if prompt is None:
            values = row_values(self.dataset.rows[row_index], self.mappings[version_id])
            prompt = self._rendered[key] = render(self.versions[version_id].template, values)
        return prompt

    def cells(self) -> list[CellKey]:
        """Every cell in matrix order: version, then row, then model."""
        return [
            CellKey(version_id, row_index, target.provider, target.model)
            for version_id in self.spec.template_version_ids
            for row_index in range(len(self.dataset.rows))
            for target in self.spec.targets
        ]


def load_inputs(session: Session, spec: BatchSpec) -> BatchInputs:
    """Load and check the spec's versions and dataset; every (version, row) must render.

    Raises :class:`InvalidRequestError` naming the first problem (row numbers are 1-based).
    """
    if not spec.targets:
        raise InvalidRequestError("Pick at least one model.")
    if not spec.template_version_ids:
        raise InvalidRequestError("Pick at least one template version.")
    if spec.concurrency < 1:
        raise InvalidRequestError("Concurrency must be at least 1.")
    if spec.judge is None and any(a.kind == "llm_judge" for a in spec.assertions):
        raise InvalidRequestError("An llm_judge assertion needs a judge model to grade it.")
    found = get_dataset(session, spec.dataset_id)
    if found is None:
        raise InvalidRequestError(f"No dataset #{spec.dataset_id}.")
    dataset = found[1]
    check_dataset_values(spec.assertions, dataset)
    versions: dict[int, TemplateVersion] = {}
    mappings: dict[int, dict[str, str]] = {}
    for version_id in spec.template_version_ids:
        version = get_template_version(session, version_id)
        if version is None:
            raise InvalidRequestError(f"No template version #{version_id}.")
        versions[version_id] = version
        mappings[version_id] = map_columns(dataset, set(version.variables), spec.mapping)
    inputs = BatchInputs(spec, versions, dataset, mappings)
    for version_id in spec.template_version_ids:
        for row_index in range(len(dataset.rows)):
            try:
                inputs.render(version_id, row_index)
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"Dataset row {row_index + 1}: {exc}") from exc
    return inputs


def plan_batch(session: Session, spec: BatchSpec, owner: str | None = None) -> int:
    """Check ``spec`` and store the batch with every cell ``pending``; returns the batch id."""
    inputs = load_inputs(session, spec)
    return create_batch(
        session,
        title=spec.title,
        spec=spec.to_json(),
        cells=inputs.cells(),
        dataset_id=spec.dataset_id,
        budget_tokens=spec.budget_tokens,
        owner=owner,
    )


@dataclass(frozen=True)
class BatchEstimate:
    """What a batch will ask of the account, shown before it starts."""

    requests: int
    judge_requests: int
    tokens: int  # the most it can cost, the judge's share included
    unknown_price_models: tuple[str, ...]
    balance: int | None
    remaining_hour: int | None
    remaining_day: int | None
    warnings: tuple[str, ...]
    judge_tokens: int = 0


def estimate(
    models: Sequence[str],
    cost_of: Callable[[str], int | None],
    *,
    judge_model: str | None = None,
    judged_cells: int = 0,
    balance: Balance | None = None,
    budget_tokens: int | None = None,
) -> BatchEstimate:
    """Requests and billing tokens for cells of ``models`` (one entry per cell to run).

    Cached answers may make it cheaper; the figure is the most it can cost. Warnings say
    when it exceeds the balance, the budget or the remaining hourly/daily quota.
    """
    counts = Counter(models)
    tokens, unknown = 0, []
    for model, count in counts.items():
        price = cost_of(model)
        if price is None:
            unknown.append(model)
        else:
            tokens += price * count
    judge_price = cost_of(judge_model) if judge_model else None
    judge_tokens = (judge_price or 0) * judged_cells
    tokens += judge_tokens
    requests = len(models) + (judged_cells if judge_model else 0)
    warnings = []
    token_balance = balance.token_balance if balance else None
    limits = balance.rate_limit if balance else None
    if token_balance is not None and tokens > token_balance:
        warnings.append(f"Up to {tokens:,} tokens, but the balance is {token_balance:,}.")
    if budget_tokens is not None and tokens > budget_tokens:
        warnings.append(f"Up to {tokens:,} tokens: the budget of {budget_tokens:,} stops it early.")
    remaining_hour = limits.remaining_hour if limits else None
    remaining_day = limits.remaining_day if limits else None
    if remaining_hour is not None and requests > remaining_hour:
        warnings.append(
            f"{requests:,} requests, {remaining_hour:,} left this hour: "
            "the batch will wait for the quota to reset."
        )
    if remaining_day is not None and requests > remaining_day:
        warnings.append(f"{requests:,} requests, only {remaining_day:,} left today.")
    if unknown:
        warnings.append(f"No price known for: {', '.join(sorted(unknown))}.")
    return BatchEstimate(
        requests=requests,
        judge_requests=judged_cells if judge_model else 0,
        tokens=tokens,
        unknown_price_models=tuple(sorted(unknown)),
        balance=token_balance,
        remaining_hour=remaining_hour,
        remaining_day=remaining_day,
        warnings=tuple(warnings),
        judge_tokens=judge_tokens,
    )
