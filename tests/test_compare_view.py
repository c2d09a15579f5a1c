"""The Compare page's pure helpers: options, request building, cost, highlights, diffs, links."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import SecretStr

from playground.catalog import load_catalog
from playground.config import Settings
from playground.errors import InvalidRequestError, RateLimitInfo
from playground.presenters.compare import (
    Composer,
    ModelOption,
    balance_after_run,
    budget_summary,
    budget_warnings,
    build_compare_request,
    column_header,
    column_notice,
    continue_with,
    diff_answers,
    estimate_cost,
    highlights,
    metrics,
    model_options,
    moved,
    options_from_param,
    redraw_interval_s,
    result_cost,
    row_layout,
    share_url,
    status_label,
)
from playground.providers.base import Balance, GenerationParams, Message, Provider
from playground.providers.registry import build_providers
from playground.results import ModelResult

NANO = ModelOption("elumenta", "gpt-5-nano", "GPT-5 Nano", "GPT-5 Nano · Starter · 1 token", 1)
GPT5 = ModelOption("elumenta", "gpt-5", "GPT-5", "GPT-5 · Basic+ · 2 tokens", 2)
LOCAL = ModelOption("openai_compatible", "llama3", "llama3", "llama3 · not billed", None)


def result(index: int = 0, **changes: object) -> ModelResult:
    base = ModelResult(
        index=index, provider="elumenta", model="gpt-5", params=GenerationParams(), request_hash="h"
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class TestModelOptions:
    def providers(self) -> dict[str, Provider]:
        settings = Settings(
            _env_file=None,
            openai_base_url="http://localhost:11434/v1",
            openai_models="llama3, qwen2",
        )
        return build_providers(
            settings, load_catalog(), elumenta_api_key=SecretStr("nb_x"), demo_spent=None
        )

    def test_primary_models_come_first_with_catalog_labels_then_openai_compatible(self) -> None:
        options = model_options(self.providers(), "elumenta")
        assert options[0] == NANO
        assert [o.key for o in options[-2:]] == [
            "openai_compatible:llama3",
            "openai_compatible:qwen2",
        ]
        assert options[-1].label == "qwen2 · OpenAI-compatible · not billed"
        assert options[-1].token_cost is None

    def test_a_models_parameter_picks_known_slugs_of_the_provider_in_order(self) -> None:
        options = model_options(self.providers(), "demo")
        keys = options_from_param(" gpt-5 ,nope,gpt-5-nano,gpt-5,", options, "demo")
        assert keys == ["demo:gpt-5", "demo:gpt-5-nano"]
        assert options_from_param("llama3", options, "demo") == []

    def test_demo_models_say_they_are_simulated(self) -> None:
        options = model_options(self.providers(), "demo")
        assert options[0].label == "GPT-5 Nano · Starter · 1 token · simulated"
        assert options[0].key == "demo:gpt-5-nano"


class TestBuildCompareRequest:
    def test_turns_then_prompt_with_shared_params_and_overrides(self) -> None:
        composer = Composer(
            system_prompt="  Be brief.  ",
            turns=(Message("user", "Hi"), Message("assistant", "   "), Message("assistant", "Yo")),
            prompt="Next?",
            picked=(NANO, GPT5),
            temperature=0.3,
            max_tokens=100,
            overrides={
                GPT5.key: GenerationParams(temperature=1.5),
                NANO.key: GenerationParams(),
            },
        )
        request = build_compare_request(composer)

        assert request.system_prompt == "Be brief."
        assert request.messages == (
            Message("user", "Hi"),
            Message("assistant", "Yo"),
            Message("user", "Next?"),
        )
        assert request.targets[0].params is None
        assert request.generation_request(0).params == GenerationParams(0.3, 100)
        assert request.generation_request(1).params == GenerationParams(1.5, 100)

    @pytest.mark.parametrize(
        ("prompt", "picked", "message"),
        [("Hi", (), "Pick at least one model."), (" \n ", (NANO,), "The prompt is empty")],
    )
    def test_missing_model_or_prompt_is_refused(
        self, prompt: str, picked: tuple[ModelOption, ...], message: str
    ) -> None:
        with pytest.raises(InvalidRequestError, match=message):
            build_compare_request(Composer("", (), prompt, picked))


def test_continue_with_appends_the_prompt_and_the_answer() -> None:
    turns = (Message("user", "a"), Message("assistant", "b"))
    assert continue_with(turns, "c", "d") == (
        *turns,
        Message("user", "c"),
        Message("assistant", "d"),
    )


@pytest.mark.parametrize(
    ("position", "offset", "expected"),
    [(1, -1, [2, 1, 3]), (1, 1, [1, 3, 2]), (0, -1, [1, 2, 3]), (2, 1, [1, 2, 3])],
)
def test_moved_swaps_neighbours_and_stops_at_the_ends(
    position: int, offset: int, expected: list[int]
) -> None:
    assert moved([1, 2, 3], position, offset) == expected


class TestBudget:
    def test_cost_is_the_sum_of_catalog_prices_and_unbilled_models_are_free(self) -> None:
        assert estimate_cost([NANO, GPT5, LOCAL]) == 3

    def test_summary_names_cost_balance_quota_and_plan(self) -> None:
        quota = RateLimitInfo(remaining_hour=97, remaining_day=997)
        assert budget_summary([NANO], Balance(996, plan="VIP", rate_limit=quota)) == (
            "Estimated cost **1 billing token** · balance **996** · **97** requests left this "
            "hour · **997** today · plan VIP"
        )
        assert budget_summary([NANO, GPT5], None) == "Estimated cost **3 billing tokens**"

    def test_no_warning_when_everything_fits(self) -> None:
        quota = RateLimitInfo(remaining_hour=5, remaining_day=5)
        assert budget_warnings([NANO, GPT5], Balance(3, rate_limit=quota)) == []
        assert budget_warnings([NANO, GPT5], None) == []

    def test_warns_about_balance_and_each_quota_separately(self) -> None:
        quota = RateLimitInfo(remaining_hour=1, remaining_day=0)
        warnings = budget_warnings([NANO, GPT5, LOCAL], Balance(2, rate_limit=quota))
        assert warnings == [
            "This run costs about 3 billing tokens but the balance is 2: some models will fail "
            "with “insufficient tokens”.",
            "This run sends 2 requests but only 1 are left this hour: the rest will be "
            "rate-limited.",
            "This run sends 2 requests but only 0 are left this day: the rest will be "
            "rate-limited.",
        ]


def answered(
    balance: int | None,
    hour: int | None = None,
    *,
    status: str = "completed",
    provider: str = "elumenta",
    cached: bool = False,
) -> ModelResult:
    """A finished answer that reported ``balance`` and ``hour`` requests left."""
    return ModelResult(
        index=0,
        provider=provider,
        model="gpt-5",
        params=GenerationParams(),
        request_hash="h",
        status=status,  # type: ignore[arg-type]
        balance_remaining=balance,
        rate_limit=None if hour is None else RateLimitInfo(remaining_hour=hour, remaining_day=900),
        cached=cached,
    )


class TestBalanceAfterRun:
    BEFORE = Balance(
        100, plan="VIP", rate_limit=RateLimitInfo(remaining_hour=50, remaining_day=950)
    )

    def test_the_lowest_reported_balance_and_quota_are_the_latest(self) -> None:
        after = balance_after_run(self.BEFORE, "elumenta", [answered(97, 48), answered(95, 47)])
        assert after == replace(
            self.BEFORE,
            token_balance=95,
            rate_limit=RateLimitInfo(remaining_hour=47, remaining_day=900),
        )

    def test_cached_answers_and_other_providers_charged_nothing(self) -> None:
        others = [answered(3, 1, cached=True), answered(1, 1, provider="demo")]
        assert balance_after_run(self.BEFORE, "elumenta", others) == self.BEFORE
        mixed = [*others, answered(97, 48)]
        assert balance_after_run(self.BEFORE, "elumenta", mixed).token_balance == 97  # type: ignore[union-attr]

    @pytest.mark.parametrize(
        "results",
        [
            [answered(97, 48), answered(None, status="failed")],  # charged? only the API knows
            [answered(97, 48), answered(96, 47, status="partial")],
            [answered(None, 48)],  # a completed answer that reported no balance
            [answered(97)],  # the quota was known before and no answer reported it
        ],
    )
    def test_only_the_provider_can_tell(self, results: list[ModelResult]) -> None:
        assert balance_after_run(self.BEFORE, "elumenta", results) is None

    def test_no_quota_to_follow_when_none_was_known(self) -> None:
        before = Balance(100)
        assert balance_after_run(before, "elumenta", [answered(98)]) == Balance(98)


@pytest.mark.parametrize(
    ("count", "rows"),
    [
        (0, []),
        (1, [[0]]),
        (3, [[0, 1, 2]]),
        (4, [[0, 1], [2, 3]]),
        (6, [[0, 1, 2], [3, 4, 5]]),
        (7, [[0, 1, 2], [3, 4, 5], [6]]),
    ],
)
def test_row_layout_keeps_at_most_three_per_row_and_balances_rows(
    count: int, rows: list[list[int]]
) -> None:
    assert row_layout(count) == rows


class TestHighlights:
    def test_marks_the_fastest_and_all_tied_cheapest_completed_columns(self) -> None:
        results = [
            result(0, status="completed", latency_ms=900.0, tokens_used=1),
            result(1, status="completed", latency_ms=300.0, tokens_used=2),
            result(2, status="completed", latency_ms=500.0, tokens_used=1),
            result(3, status="failed", latency_ms=10.0, tokens_used=None),
        ]
        marks = highlights(results)
        assert marks.fastest == {1}
        assert marks.cheapest == {0, 2}

    def test_marks_nothing_for_a_single_answer_or_all_equal(self) -> None:
        one = highlights([result(status="completed", latency_ms=1.0, tokens_used=1)])
        assert one.fastest == one.cheapest == frozenset()
        same = [result(i, status="completed", latency_ms=5.0, tokens_used=1) for i in range(2)]
        assert highlights(same).cheapest == frozenset()


def test_result_cost_uses_the_report_else_the_price_only_when_completed() -> None:
    assert result_cost(result(status="completed", tokens_used=3, price_tokens=2)) == 3
    assert result_cost(result(status="completed", price_tokens=2)) == 2
    assert result_cost(result(status="failed", price_tokens=2)) is None


def test_status_label_says_when_an_answer_came_from_the_cache() -> None:
    assert status_label(result(status="running")) == ("Streaming…", "blue")
    assert status_label(result(status="completed", cached=True))[0] == "Done (cached, not billed)"


def test_column_header_is_one_markdown_with_name_status_marks_and_label() -> None:
    header = column_header("GPT-5", "GPT-5 · Basic+ · 2 tokens", result(status="running"))
    assert header == "**GPT-5** :blue-badge[Streaming…]  \n:gray[:small[GPT-5 · Basic+ · 2 tokens]]"
    marked = column_header("A", "a", result(status="completed"), fastest=True, cheapest=True)
    assert marked.split("  \n")[0] == (
        "**A** :green-badge[Done] :violet-badge[:material/bolt: Fastest] "
        ":green-badge[:material/savings: Cheapest]"
    )


def test_column_header_shows_a_hostile_model_name_literally() -> None:
    header = column_header("[x](http://evil.example)", "![i](http://evil.example/i.png)", result())
    assert header.startswith("**\\[x\\]\\(http\\://evil.example\\)** ")
    assert "\\!\\[i\\]\\(http\\://evil.example/i.png\\)]]" in header


def test_live_comparisons_are_redrawn_less_often_as_more_run_in_the_process() -> None:
    assert [redraw_interval_s(n) for n in (0, 1, 2)] == [0.1, 0.1, 0.1]
    assert redraw_interval_s(10) == pytest.approx(0.5)
    assert redraw_interval_s(20) == redraw_interval_s(500) == 1.0
    intervals = [redraw_interval_s(n) for n in range(30)]
    assert intervals == sorted(intervals)


class TestColumnNotice:
    def test_nothing_for_running_or_completed(self) -> None:
        assert column_notice(result(status="running")) is None
        assert column_notice(result(status="completed")) is None

    def test_stopping_is_information_and_mentions_kept_text(self) -> None:
        assert column_notice(result(status="cancelled", content="abc")) == (
            "info",
            "Stopped by you. The text received so far is kept.",
        )
        assert column_notice(result(status="cancelled")) == ("info", "Stopped by you.")

    def test_a_rate_limit_shows_the_wait_and_the_remaining_quota(self) -> None:
        limited = result(
            status="failed",
            error_code="rate_limit_exceeded",
            error_message="Rate limit reached.",
            retry_after=30.0,
            rate_limit=RateLimitInfo(remaining_hour=0, remaining_day=12),
        )
        assert column_notice(limited) == (
            "error",
            "Rate limit reached. Retry in 30 s. (0 left this hour, 12 left this day) "
            "[rate_limit_exceeded]",
        )

    def test_a_partial_answer_is_a_warning_that_keeps_the_text(self) -> None:
        partial = result(status="partial", error_code="stream_interrupted", error_message="Cut.")
        assert column_notice(partial) == (
            "warning",
            "Cut. [stream_interrupted] The partial text is kept.",
        )

    def test_the_apis_error_text_is_shown_literally_not_as_markdown(self) -> None:
        hostile = "See ![status](https://evil.example/pixel.png) or [docs](javascript:x)"
        level, message = column_notice(result(status="failed", error_message=hostile)) or ("", "")
        assert level == "error"
        assert "](" not in message and "![" not in message
        assert message.replace("\\", "") == hostile


def test_metrics_are_readable_with_units() -> None:
    done = result(
        status="completed",
        content="x" * 500,
        latency_ms=1500.0,
        ttft_ms=500.0,
        tokens_used=1,
    )
    assert metrics(done) == [
        ("Latency", "1.50 s"),
        ("TTFT", "500 ms"),
        ("Speed", "500 chars/s"),
        ("Tokens used", "1"),
        ("Cost", "1 token"),
    ]
    estimated = metrics(result(status="completed", price_tokens=4))
    assert estimated[0] == ("Latency", "—")
    assert estimated[-1] == ("Cost", "4 tokens (catalog)")


class TestDiff:
    def test_identical_answers_have_no_diff(self) -> None:
        diff = diff_answers("Same. Text.", "Same. Text.", "a", "b")
        assert diff.unified == ""
        assert diff.similarity == 1.0

    def test_sentences_are_diffed_one_per_line(self) -> None:
        diff = diff_answers("One. Two. Three.", "One. Deux. Three.", "GPT-5", "Claude")
        lines = diff.unified.splitlines()
        assert lines[:2] == ["--- GPT-5", "+++ Claude"]
        assert "-Two." in lines
        assert "+Deux." in lines
        assert " One." in lines
        assert 0 < diff.similarity < 1


@pytest.mark.parametrize(
    ("page_url", "expected"),
    [
        (None, "?comparison=abc"),
        ("http://host:8501/compare?comparison=old&x=1", "http://host:8501/compare?comparison=abc"),
        ("http://host:8501", "http://host:8501/?comparison=abc"),
    ],
)
def test_share_url_points_at_the_page_with_only_the_comparison(
    page_url: str | None, expected: str
) -> None:
    assert share_url(page_url, "abc") == expected


def test_the_diff_keeps_a_numbered_list_item_with_its_text() -> None:
    first = "1. Use WAL. It lets readers go on.\n2. Keep checkpoints short, e.g. every 1000 pages."
    second = "1. Use WAL. It lets readers go on.\n2. Keep checkpoints long."
    diff = diff_answers(first, second, "a", "b").unified
    assert "-2. Keep checkpoints short, e.g. every 1000 pages." in diff
    assert "+2. Keep checkpoints long." in diff
    assert "\n-2.\n" not in diff and "\n+2.\n" not in diff
