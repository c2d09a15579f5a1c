"""One demo balance: the app, Settings, a restart and the CLI all read it from the history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from playground.config import Settings
from playground.providers.demo import DEMO_STARTING_BALANCE
from playground.services import runtime
from tests.app_harness import click, open_page, run_compare, texts
from tests.test_cli import run


def settings_balance() -> str:
    at = click(open_page("pages/settings.py"), "Check balance")
    (shown,) = [t for t in texts(at, "success") if t.startswith("Balance:")]
    return shown


def test_the_demo_balance_is_the_same_everywhere_and_survives_a_restart(
    app_env: Path,
) -> None:
    run_compare(open_page(), "Which journal mode?", ["demo:gpt-5-nano", "demo:gpt-5"])
    after_app = DEMO_STARTING_BALANCE - 3  # 1 + 2 billing tokens
    assert settings_balance().startswith(f"Balance: **{after_app}** ")

    runtime.reset()  # a restart of the app
    assert settings_balance().startswith(f"Balance: **{after_app}** ")

    cli_settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        provider="demo",
        demo_time_scale=0.02,
        data_dir=app_env / "data",
        elumenta_api_key=None,
    )
    code, out, err = run(["compare", "-m", "gpt-5-nano", "-p", "hi", "--json"], cli_settings)
    assert code == 0, err
    assert json.loads(out)["balance_remaining"] == after_app - 1

    runtime.reset()
    assert settings_balance().startswith(f"Balance: **{after_app - 1}** ")


@pytest.mark.usefixtures("app_env")
def test_a_cached_answer_costs_the_demo_balance_nothing() -> None:
    at = open_page()
    at.toggle(key="compare.use_cache").set_value(True)
    run_compare(at, "Same question", ["demo:gpt-5-nano"])
    run_compare(at, "Same question", ["demo:gpt-5-nano"])
    assert settings_balance().startswith(f"Balance: **{DEMO_STARTING_BALANCE - 1}** ")
