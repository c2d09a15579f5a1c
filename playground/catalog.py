"""The model catalog: which models exist, their tier and billing price per request.

The catalog is data (``playground/data/models.json``); a user copy in the data directory
(or ``PLAYGROUND_CATALOG_PATH``) overrides it and is where :func:`refresh_catalog` writes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from playground.errors import ConfigError

PACKAGED_CATALOG = Path(__file__).parent / "data" / "models.json"


@dataclass(frozen=True)
class DemoProfile:
    """How the offline demo provider simulates this model's speed."""

    ttft_ms: float = 400.0
    chars_per_s: float = 300.0


@dataclass(frozen=True)
class ModelInfo:
    """One model: its slug, display name, plan tier and billing tokens per request."""

    slug: str
    name: str
    tier: str
    token_cost: int
    min_token_cost: int | None = None
    max_token_cost: int | None = None
    supports_streaming: bool = True
    uses: tuple[str, ...] = ()
    demo: DemoProfile = field(default_factory=DemoProfile)

    @property
    def label(self) -> str:
        """Human label for pickers: ``GPT-5 Nano · Starter · 1 token``."""
        unit = "token" if self.token_cost == 1 else "tokens"
        return f"{self.name} · {self.tier} · {self.token_cost} {unit}"


class TokenPrice(BaseModel):
    """What a model not billed by Elumenta costs, in billing tokens per 1,000 of its own
    prompt and completion tokens (``PLAYGROUND_OPENAI_PRICES``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt_per_1k: float = Field(ge=0)
    completion_per_1k: float = Field(ge=0)

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> int | None:
        """Billing tokens for one answer, rounded up; ``None`` when the server sent no usage."""
        if prompt_tokens is None and completion_tokens is None:
            return None
        raw = (prompt_tokens or 0) * self.prompt_per_1k + (completion_tokens or 0) * (
            self.completion_per_1k
        )
        return math.ceil(raw / 1000 - 1e-9)


def _model_from_dict(raw: Mapping[str, Any]) -> ModelInfo:
    try:
        demo_raw = raw.get("demo") or {}
        return ModelInfo(
            slug=str(raw["slug"]),
            name=str(raw.get("name") or raw["slug"]),
            tier=str(raw.get("tier") or "unknown"),
            token_cost=int(raw["token_cost"]),
            min_token_cost=_optional_int(raw.get("min_token_cost")),
            max_token_cost=_optional_int(raw.get("max_token_cost")),
            supports_streaming=bool(raw.get("supports_streaming", True)),
            uses=tuple(str(u) for u in raw.get("uses") or ()),
            demo=DemoProfile(
                ttft_ms=float(demo_raw.get("ttft_ms", 400.0)),
                chars_per_s=float(demo_raw.get("chars_per_s", 300.0)),
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid model entry in the catalog: {raw!r:.200}") from exc


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


class Catalog:
    """An ordered, slug-indexed set of :class:`ModelInfo`."""

    def __init__(self, models: Iterable[ModelInfo]) -> None:
        self._models: dict[str, ModelInfo] = {m.slug: m for m in models}

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models.values())

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, slug: object) -> bool:
        return slug in self._models

    @property
    def slugs(self) -> list[str]:
        """All model slugs in catalog order."""
        return list(self._models)

    def get(self, slug: str) -> ModelInfo | None:
        """The model with this slug, or ``None``."""
        return self._models.get(slug)

    def name_of(self, slug: str) -> str:
        """The display name of ``slug`` (the slug itself for a model not in the catalog)."""
        model = self._models.get(slug)
        return model.name if model else slug

    def cost_of(self, slug: str) -> int | None:
        """Billing tokens one request to ``slug`` costs, or ``None`` for an unknown model."""
        model = self._models.get(slug)
        return model.token_cost if model else None

    def with_model(self, model: ModelInfo) -> Catalog:
        """A copy with ``model`` added or replaced (keeps position when replacing)."""
        models = dict(self._models)
        models[model.slug] = model
        return Catalog(models.values())

    def to_json(self) -> str:
        """The catalog in the file format read by :func:`load_catalog`."""
        models = []
        for m in self._models.values():
            raw = asdict(m)
            raw["uses"] = list(m.uses)
            models.append(raw)
        return json.dumps({"models": models}, indent=2, ensure_ascii=False) + "\n"


def load_catalog(path: Path | None = None) -> Catalog:
    """Read a catalog file; ``None`` (or a missing file) means the packaged seed catalog."""
    source = path if path is not None and path.exists() else PACKAGED_CATALOG
    try:
        doc = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"Cannot read the model catalog {source}: {exc}") from exc
    raw_models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(raw_models, list) or not raw_models:
        raise ConfigError(f"The model catalog {source} has no 'models' list.")
    return Catalog(_model_from_dict(raw) for raw in raw_models)


def save_catalog(catalog: Catalog, path: Path) -> None:
    """Write ``catalog`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(catalog.to_json(), encoding="utf-8")
    tmp.replace(path)


def merge_model_details(model: ModelInfo, details: Mapping[str, Any]) -> ModelInfo:
    """``model`` updated with the fields of a ``GET /models/{slug}`` answer."""
    updates: dict[str, Any] = {}
    for key in ("token_cost", "min_token_cost", "max_token_cost"):
        if details.get(key) is not None:
            updates[key] = int(details[key])
    if details.get("supports_streaming") is not None:
        updates["supports_streaming"] = bool(details["supports_streaming"])
    if details.get("name"):
        updates["name"] = str(details["name"])
    return replace(model, **updates)


async def refresh_catalog(
    catalog: Catalog, fetch_details: Callable[[str], Awaitable[Mapping[str, Any]]]
) -> tuple[Catalog, dict[str, str]]:
    """Ask the API for each model's current price; returns the new catalog and per-slug errors.

    A model whose lookup fails keeps its old entry, so a flaky network never empties the list.
    """
    refreshed = catalog
    errors: dict[str, str] = {}
    for model in catalog:
        try:
            details = await fetch_details(model.slug)
        except Exception as exc:  # noqa: BLE001 - reported per model, the rest still refresh
            errors[model.slug] = str(exc)
            continue
        refreshed = refreshed.with_model(merge_model_details(model, details))
    return refreshed, errors
