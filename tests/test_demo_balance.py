"""One demo balance: the app, Settings, a restart, the CLI's compare and eval, and queue
workers all read it from the history."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from playground.config import Settings
from playground.providers.demo import DEMO_STARTING_BALANCE
from playground.runner import Runner
from playground.services import runtime
from playground.store.eval_repository import set_batch_status
from playground.store.stats import balance_points
from playground.workers.worker import Worker
from tests.app_harness import click, open_page, run_compare, texts
from tests.evaluation_fixtures import plan
from tests.fake_elumenta.process import ROOT, playground_environment
from tests.test_cli import run
from tests.test_evaluate_first_day import run_the_example


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


def recorded_demo_balances() -> list[int]:
    """The balances demo answers reported, oldest first: what Costs charts."""
    with runtime.get_store().session() as session:
        points = balance_points(session)
    return [int(b) for b in points[points["provider"] == "demo"]["balance_remaining"]]


def assert_reported_the_rest_of(
    balance: int, spent: int, reported: list[int], *, answers: int
) -> None:
    """``answers`` answers that spent ``spent`` each reported what was left of ``balance``
    (answers in flight together may report the same figure), not of a balance their own."""
    assert len(reported) == answers
    # Below ``balance`` (a balance of their own would start at the full demo balance) and
    # never below what is left at the end. Not "the last one reports exactly what is left":
    # answers finishing together each read the history before the others are recorded.
    assert all(balance - spent <= b < balance for b in reported), reported


def test_a_cli_eval_draws_on_the_apps_demo_balance(app_env: Path) -> None:
    run_compare(open_page(), "Which journal mode?", ["demo:gpt-5-nano", "demo:gpt-5"])
    after_app = DEMO_STARTING_BALANCE - 3
    env = playground_environment(
        PLAYGROUND_DATA_DIR=str(app_env / "data"), PLAYGROUND_DEMO_TIME_SCALE="0.01"
    )
    offline = ROOT / "examples" / "offline.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "playground", "eval", str(offline), "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=app_env,  # no developer's .env
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # the example's documented failures
    spent = json.loads(proc.stdout)["spent_tokens"]
    assert spent > 0

    runtime.reset()
    assert settings_balance().startswith(f"Balance: **{after_app - spent}** ")
    assert_reported_the_rest_of(after_app, spent, recorded_demo_balances()[2:], answers=20)


def test_a_worker_batch_draws_on_the_apps_demo_balance(app_env: Path) -> None:
    run_compare(open_page(), "Which journal mode?", ["demo:gpt-5-nano"])
    after_app = DEMO_STARTING_BALANCE - 1
    store, settings, catalog = runtime.get_store(), runtime.get_settings(), runtime.get_catalog()
    batch_id = plan(store, ["gpt-5-nano", "gpt-5"], rows=3, concurrency=2, provider="demo")
    with store.session() as session, session.begin():  # as queued for the workers
        set_batch_status(session, batch_id, "running", execution="worker")
    runner = Runner.from_settings(catalog, settings)
    try:
        outcome = Worker(store, settings, catalog, runner, concurrency=2).run_shard(batch_id)
    finally:
        runner.close()
    assert outcome == "done"
    spent = 3 * (1 + 2)

    runtime.reset()
    assert settings_balance().startswith(f"Balance: **{after_app - spent}** ")
    assert_reported_the_rest_of(after_app, spent, recorded_demo_balances()[1:], answers=6)


def test_a_batch_on_the_evaluate_page_draws_on_the_same_demo_balance(app_env: Path) -> None:
    run_compare(open_page(), "Which journal mode?", ["demo:gpt-5-nano", "demo:gpt-5"])
    after_app = DEMO_STARTING_BALANCE - 3
    run_the_example()
    spent = 28  # the offline example's 20 answers
    assert settings_balance().startswith(f"Balance: **{after_app - spent}** ")
    assert_reported_the_rest_of(after_app, spent, recorded_demo_balances()[2:], answers=20)
