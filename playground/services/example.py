"""The offline example a first visit to Evaluate gets: a template, a dataset, a ready batch.

It is ``examples/offline.yaml``, whose checks mean something with the demo provider (see
the README, "Trying it without a key"), so a newcomer without a key can run a batch,
read its results and vote blind right away.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from playground.evaluation.suite import load_suite
from playground.principal import Principal
from playground.services import ownership, runtime
from playground.store.eval_repository import (
    list_templates,
    save_dataset,
    save_template_version,
)

EXAMPLE_SUITE = Path(__file__).resolve().parents[2] / "examples" / "offline.yaml"


@dataclass(frozen=True)
class ExampleBatch:
    """What the Run batch form is filled with: the example's version, dataset and checks."""

    version_label: str
    dataset_id: int
    dataset_label: str
    models: tuple[str, ...]
    assertions_yaml: str
    budget_tokens: int | None


def add_offline_example(*, viewer: Principal | None = None) -> ExampleBatch | None:
    """Save the offline example's template and dataset if ``viewer`` sees no template yet.

    Returns the batch to fill in, or ``None`` when templates exist already, the viewer may
    not create any (role viewer), or the example file is not there (an installed copy
    without ``examples/``).
    """
    if (viewer is not None and not viewer.can_run) or not EXAMPLE_SUITE.is_file():
        return None
    with runtime.get_store().session() as session, session.begin():
        if list_templates(session, viewer=viewer):
            return None
        suite = load_suite(EXAMPLE_SUITE)
        owner = ownership.creator(viewer)
        version = save_template_version(session, suite.template_name, suite.template, owner=owner)
        dataset_id = save_dataset(session, suite.dataset_name, suite.dataset, owner=owner)
    assertions = [a.to_dict() for a in suite.assertions]
    return ExampleBatch(
        version_label=f"{version.name} v{version.version}",
        dataset_id=dataset_id,
        dataset_label=f"#{dataset_id} {suite.dataset_name} ({len(suite.dataset.rows)} rows)",
        models=suite.models,
        assertions_yaml=yaml.safe_dump(assertions, sort_keys=False, allow_unicode=True),
        budget_tokens=suite.budget_tokens,
    )
