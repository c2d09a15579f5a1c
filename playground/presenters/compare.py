"""Pure helpers behind the Compare page: picker options, the request, cost, highlights, diffs.

Nothing here does I/O or knows Streamlit; the page reads widgets, calls these and draws.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlencode, urlsplit, urlunsplit

from rapidfuzz.distance import Indel

from playground.errors import InvalidRequestError, RateLimitInfo
from playground.providers.base import Balance, GenerationParams, Message, Provider
from playground.results import (
    STATUS_STYLES,
    BadgeColour,
    CompareRequest,
    ModelResult,
    ModelTarget,
    answer_cost,
)
from playground.safe_text import escape_markdown

SHARE_PARAM = "comparison"
# ``?models=gpt-5,claude-haiku-4.5`` preselects models: a bookmarkable model set.
MODELS_PARAM = "models"
# Hosted mode: the unguessable token that lets someone else open a shared comparison.
TOKEN_PARAM = "token"  # noqa: S105  (a query parameter name, not a secret)
MAX_COLUMNS_PER_ROW = 3
EXTRA_PROVIDERS = ("openai_compatible",)


@dataclass(frozen=True)
class ModelOption:
    """One entry of the model picker: a provider's model with a readable label."""

    provider: str
    slug: str
    name: str
    label: str
    token_cost: int | None
    """Billing tokens per request; ``None`` for models that are not billed in tokens."""

    @property
    def key(self) -> str:
        """A stable id for widgets and overrides: ``provider:slug``."""
        return option_key(self.provider, self.slug)


REDRAW_S = 0.1
"""How often a live comparison is redrawn while few run in the app process (10 Hz)."""
REDRAWS_PER_S = 20.0
"""Redraws per second one app process spends on all its live comparisons together."""
MAX_REDRAW_S = 1.0


def redraw_interval_s(live_runs: int) -> float:
    """How often to redraw a live comparison while ``live_runs`` stream in the process.

    Every redraw is a script run (a new thread) and a few dozen messages, all passing
    through the app's one event loop: with 20 users at 10 Hz that loop fell seconds behind
    and answers showed up late. Beyond two live runs they share :data:`REDRAWS_PER_S` (4
    live: every 0.2 s), so a busy page stays current within :data:`MAX_REDRAW_S`.
    """
    return min(MAX_REDRAW_S, max(REDRAW_S, live_runs / REDRAWS_PER_S))


def option_key(provider: str, slug: str) -> str:
    """The picker key of ``slug`` served by ``provider``."""
    return f"{provider}:{slug}"


def model_options(providers: Mapping[str, Provider], primary: str) -> list[ModelOption]:
    """The primary provider's models, then those of any extra configured provider.

    Labels carry name, tier and billing price (``ModelInfo.label``); simulated models say
    so, and OpenAI-compatible models say they are not billed in Elumenta tokens.
    """
    names = [primary, *(n for n in EXTRA_PROVIDERS if n in providers and n != primary)]
    options = []
    for name in names:
        provider = providers[name]
        for info in provider.models():
            if name == "openai_compatible":
                label, cost = f"{info.name} · {provider.label} · not billed", None
            elif name == "demo":
                label, cost = f"{info.label} · simulated", info.token_cost
            else:
                label, cost = info.label, info.token_cost
            options.append(ModelOption(name, info.slug, info.name, label, cost))
    return options


@dataclass(frozen=True)
class Composer:
    """What the user entered on the Compare page, already read from the widgets."""

    system_prompt: str
    turns: tuple[Message, ...]
    prompt: str
    picked: tuple[ModelOption, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    overrides: Mapping[str, GenerationParams] | None = None
    """Per-model parameters by :attr:`ModelOption.key`; ``None`` fields mean "shared"."""


def build_compare_request(composer: Composer) -> CompareRequest:
    """The comparison to run; raises :class:`InvalidRequestError` for no model or no prompt.

    Earlier turns left blank are skipped; the prompt becomes the final user message. Ranges
    (temperature, size) are checked by the runner when it starts.
    """
    if not composer.picked:
        raise InvalidRequestError("Pick at least one model.")
    if not composer.prompt.strip():
        raise InvalidRequestError("The prompt is empty: write your message in the Prompt box.")
    overrides = composer.overrides or {}
    targets = tuple(
        ModelTarget(option.provider, option.slug, _non_empty(overrides.get(option.key)))
        for option in composer.picked
    )
    messages = (
        *(turn for turn in composer.turns if turn.content.strip()),
        Message("user", composer.prompt),
    )
    return CompareRequest(
        messages=messages,
        targets=targets,
        system_prompt=composer.system_prompt.strip(),
        params=GenerationParams(temperature=composer.temperature, max_tokens=composer.max_tokens),
    )


def _non_empty(params: GenerationParams | None) -> GenerationParams | None:
    return params if params is not None and params.to_dict() else None


def continue_with(turns: Sequence[Message], prompt: str, answer: str) -> tuple[Message, ...]:
    """The conversation after keeping ``answer``: old turns, the prompt, then the answer.

    The caller clears the prompt box, which becomes the next (empty) user turn.
    """
    return (*turns, Message("user", prompt), Message("assistant", answer))


def moved(items: Sequence[int], position: int, offset: int) -> list[int]:
    """``items`` with the element at ``position`` moved by ``offset`` (clamped to the ends)."""
    out = list(items)
    target = max(0, min(len(out) - 1, position + offset))
    out.insert(target, out.pop(position))
    return out


def estimate_cost(picked: Sequence[ModelOption]) -> int:
    """Billing tokens the run will cost by the catalog: the sum of the picked models' prices."""
    return sum(option.token_cost or 0 for option in picked)


def budget_warnings(picked: Sequence[ModelOption], balance: Balance | None) -> list[str]:
    """Why the run may fail before it starts: not enough balance or request quota left."""
    if balance is None:
        return []
    warnings = []
    cost = estimate_cost(picked)
    if balance.token_balance is not None and cost > balance.token_balance:
        warnings.append(
            f"This run costs about {cost} billing tokens but the balance is "
            f"{balance.token_balance}: some models will fail with “insufficient tokens”."
        )
    quota = balance.rate_limit
    requests = sum(1 for option in picked if option.token_cost is not None)
    if quota is not None:
        for remaining, period in ((quota.remaining_hour, "hour"), (quota.remaining_day, "day")):
            if remaining is not None and requests > remaining:
                warnings.append(
                    f"This run sends {requests} requests but only {remaining} are left "
                    f"this {period}: the rest will be rate-limited."
                )
    return warnings


def budget_summary(picked: Sequence[ModelOption], balance: Balance | None) -> str:
    """One markdown line: the run's estimated cost, the balance, quota left and plan."""
    cost = estimate_cost(picked)
    parts = [f"Estimated cost **{cost} billing token{'' if cost == 1 else 's'}**"]
    if balance is None:
        return parts[0]
    quota = balance.rate_limit
    if balance.token_balance is not None:
        parts.append(f"balance **{balance.token_balance}**")
    if quota is not None and quota.remaining_hour is not None:
        parts.append(f"**{quota.remaining_hour}** requests left this hour")
    if quota is not None and quota.remaining_day is not None:
        parts.append(f"**{quota.remaining_day}** today")
    if balance.plan:
        parts.append(f"plan {balance.plan}")
    return " · ".join(parts)


def balance_after_run(
    balance: Balance, provider: str, results: Sequence[ModelResult]
) -> Balance | None:
    """The balance of ``provider``'s account once ``results`` have finished, from what
    their answers reported, or ``None`` when only the provider can tell.

    ``results`` must be runs this session sent with the account ``balance`` was read for,
    after reading it: each completed answer carries the balance after its charge and the
    quota its response left, so the lowest figures are the latest. Answers from the cache
    (or other providers) charged nothing. An answer that did not complete may have been
    charged without saying so, and a quota no answer reported cannot be worked out: then
    ``None`` (read the balance again).
    """
    charged = [r for r in results if r.provider == provider and not r.cached]
    if not charged:
        return balance
    if any(r.status != "completed" or r.balance_remaining is None for r in charged):
        return None
    quotas = [r.rate_limit for r in charged if r.rate_limit is not None]
    if not quotas and balance.rate_limit is not None:
        return None
    return replace(
        balance,
        token_balance=min(r.balance_remaining for r in charged if r.balance_remaining is not None),
        rate_limit=min(quotas, key=_quota_left) if quotas else None,
    )


def _quota_left(quota: RateLimitInfo) -> tuple[float, float]:
    """Order quotas by requests left, the hour's first (an unreported figure last)."""
    hour, day = quota.remaining_hour, quota.remaining_day
    return (math.inf if hour is None else hour, math.inf if day is None else day)


def row_layout(count: int, max_per_row: int = MAX_COLUMNS_PER_ROW) -> list[list[int]]:
    """Column positions grouped into balanced rows of at most ``max_per_row`` (4 → 2 + 2)."""
    if count <= 0:
        return []
    rows = math.ceil(count / max_per_row)
    per_row = math.ceil(count / rows)
    return [list(range(start, min(count, start + per_row))) for start in range(0, count, per_row)]


@dataclass(frozen=True)
class Highlights:
    """Column positions to mark: the fastest and cheapest completed answers."""

    fastest: frozenset[int]
    cheapest: frozenset[int]


def highlights(results: Sequence[ModelResult]) -> Highlights:
    """The fastest (lowest latency) and cheapest completed columns.

    Nothing is marked unless at least two answers completed and they differ, since a
    "fastest" badge on every column says nothing.
    """
    latency = {i: r.latency_ms for i, r in enumerate(results) if r.status == "completed"}
    cost = {i: result_cost(r) for i, r in enumerate(results) if r.status == "completed"}
    return Highlights(fastest=_minimum(latency), cheapest=_minimum(cost))


def _minimum(values: Mapping[int, float | int | None]) -> frozenset[int]:
    known = {i: v for i, v in values.items() if v is not None}
    if len(known) < 2 or len(set(known.values())) < 2:
        return frozenset()
    best = min(known.values())
    return frozenset(i for i, v in known.items() if v == best)


def result_cost(result: ModelResult) -> int | None:
    """Billing tokens the answer cost (see :func:`~playground.results.answer_cost`)."""
    return answer_cost(result.status, result.tokens_used, result.price_tokens)


STATUS_LABELS: dict[str, tuple[str, BadgeColour]] = {
    status: (style.label, style.badge) for status, style in STATUS_STYLES.items()
}


def status_label(result: ModelResult) -> tuple[str, BadgeColour]:
    """A short status text and a badge colour for a column header."""
    text, colour = STATUS_LABELS.get(result.status, (result.status, "gray"))
    if result.cached and result.status == "completed":
        text = "Done (cached, not billed)"
    if result.truncated and result.status == "completed":
        text, colour = "Cut at max tokens", "orange"
    return text, colour


def column_header(
    name: str,
    label: str,
    result: ModelResult,
    *,
    fastest: bool = False,
    cheapest: bool = False,
    status: bool = True,
) -> str:
    """A column's header as one markdown text: the model's name, its status badge (unless
    ``status`` is false: a live column shows its own), the Fastest/Cheapest marks, and the
    picker label small underneath.

    One element instead of a row of five: a polled live column is redrawn up to ten times
    a second for every user, and each element is a message from the app process to the
    browser.
    """
    text, colour = status_label(result)
    badges = [f":{colour}-badge[{text}]"] if status else []
    if fastest:
        badges.append(":violet-badge[:material/bolt: Fastest]")
    if cheapest:
        badges.append(":green-badge[:material/savings: Cheapest]")
    title = " ".join([f"**{escape_markdown(name)}**", *badges])
    return f"{title}  \n:gray[:small[{escape_markdown(label)}]]"


def column_notice(result: ModelResult) -> tuple[str, str] | None:
    """``(level, message)`` to show under a column, level ``error``, ``warning`` or ``info``.

    The message is markdown; the API's error text in it is escaped (it is untrusted).
    """
    if result.status == "cancelled":
        kept = " The text received so far is kept." if result.content else ""
        return "info", f"Stopped by you.{kept}"
    if result.truncated and result.status == "completed":
        return "warning", (
            "The answer was cut at max tokens: the model had more to say. "
            "Raise max tokens to get all of it."
        )
    if result.status not in ("failed", "partial", "interrupted"):
        return None
    message = escape_markdown(result.error_message or "The model did not finish.")
    if result.retry_after is not None and "Retry in" not in message:
        message = f"{message} Retry in {result.retry_after:g} s."
    quota = result.rate_limit
    if result.error_code == "rate_limit_exceeded" and quota is not None:
        left = [
            f"{value} left this {period}"
            for value, period in ((quota.remaining_hour, "hour"), (quota.remaining_day, "day"))
            if value is not None
        ]
        if left:
            message = f"{message} ({', '.join(left)})"
    code = f" [{result.error_code}]" if result.error_code else ""
    if result.status == "failed":
        return "error", f"{message}{code}"
    return "warning", f"{message}{code} The partial text is kept."


def metrics(result: ModelResult) -> list[tuple[str, str]]:
    """``(name, value)`` pairs for a finished column: latency, TTFT, speed, tokens, cost."""
    cost = result_cost(result)
    cost_text = "—" if cost is None else f"{cost} token{'' if cost == 1 else 's'}"
    if result.tokens_used is None and cost is not None:
        cost_text += " (catalog)"
    return [
        ("Latency", _seconds(result.latency_ms)),
        ("TTFT", _seconds(result.ttft_ms)),
        ("Speed", "—" if result.chars_per_s is None else f"{result.chars_per_s:,.0f} chars/s"),
        ("Tokens used", "—" if result.tokens_used is None else str(result.tokens_used)),
        ("Cost", cost_text),
    ]


def _seconds(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"


@dataclass(frozen=True)
class AnswerDiff:
    """A readable comparison of two answers."""

    unified: str
    """A unified diff (``-`` first answer, ``+`` second); empty when the answers are equal."""
    similarity: float
    """0 (nothing in common) to 1 (identical): twice the longest common subsequence of
    characters over the two lengths (rapidfuzz's normalized Indel similarity)."""


_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


# A piece that only ends like a sentence: a list marker ("1.", "b)") or "e.g.", "i.e.".
_NOT_A_SENTENCE = re.compile(r"(\d+|[A-Za-z])[.)]|.*\b(e\.g|i\.e|etc|vs|cf)\.", re.IGNORECASE)


def _sentences(line: str) -> list[str]:
    pieces: list[str] = []
    carried = ""
    for piece in _SENTENCE_END.split(line):
        piece = f"{carried} {piece}" if carried else piece
        carried = piece if _NOT_A_SENTENCE.fullmatch(piece) else ""
        if not carried:
            pieces.append(piece)
    return [*pieces, carried] if carried else pieces


def _diff_lines(text: str) -> list[str]:
    # Prose often comes as one long paragraph per line; diffing sentences keeps hunks small.
    return [s for line in text.splitlines() for s in _sentences(line)]


def diff_answers(first: str, second: str, first_name: str, second_name: str) -> AnswerDiff:
    """Compare two answers sentence by sentence."""
    a, b = _diff_lines(first), _diff_lines(second)
    unified = "\n".join(
        difflib.unified_diff(a, b, fromfile=first_name, tofile=second_name, lineterm="")
    )
    similarity = Indel.normalized_similarity(first, second)
    return AnswerDiff(unified=unified, similarity=similarity)


def share_ref(run_id: str, comparison_id: int | None) -> str:
    """The id a share link carries: the stored comparison's id, else the live run's id."""
    return str(comparison_id) if comparison_id is not None else run_id


def share_url(page_url: str | None, ref: str, token: str | None = None) -> str:
    """A link that reopens comparison ``ref`` (relative when the page URL is unknown).

    In hosted mode ``token`` is the comparison's share token: without it the link opens
    the comparison only for people who can already see it.
    """
    query = urlencode({SHARE_PARAM: ref, **({TOKEN_PARAM: token} if token else {})})
    if not page_url:
        return f"?{query}"
    scheme, netloc, path, _, _ = urlsplit(page_url)
    return urlunsplit((scheme, netloc, path or "/", query, ""))


def carry_over(
    picked: Sequence[str], options: Sequence[ModelOption]
) -> tuple[list[str], list[str]]:
    """The picked option keys that still exist among ``options``, and the slugs dropped.

    After a provider switch a model the new provider also offers stays picked (its key
    moves to the new provider); the others are dropped and named, so nothing goes silently.
    """
    by_key = {option.key: option for option in options}
    by_slug: dict[str, str] = {}
    for option in options:
        by_slug.setdefault(option.slug, option.key)
    kept: list[str] = []
    dropped: list[str] = []
    for key in picked:
        slug = key.partition(":")[2]
        found = key if key in by_key else by_slug.get(slug)
        if found is None:
            dropped.append(slug or key)
        elif found not in kept:
            kept.append(found)
    return kept, dropped


def options_from_param(value: str, options: Sequence[ModelOption], provider: str) -> list[str]:
    """Option keys for a comma-separated list of slugs, on ``provider`` (unknown slugs
    are skipped), in the order given."""
    by_slug = {o.slug: o.key for o in options if o.provider == provider}
    slugs = [s.strip() for s in value.split(",") if s.strip()]
    return list(dict.fromkeys(by_slug[s] for s in slugs if s in by_slug))
