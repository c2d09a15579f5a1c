"""A blind A/B vote in Chromium: names hidden until the vote, then revealed and ranked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import Page, expect

from playground.catalog import load_catalog
from tests.e2e.app_process import ROOT, app_environment
from tests.fake_elumenta.process import FakeServerProcess

pytestmark = pytest.mark.browser

ANSWERS = {
    "gpt-5-nano": "Lisbon is the capital of Portugal.",
    "claude-haiku-4.5": "The capital is Lisbon, on the Tagus.",
}


def test_blind_vote_hides_names_until_the_vote(
    app_page: Page, fake: FakeServerProcess, app_data_dir: Path, tmp_path: Path, artifacts: Path
) -> None:
    for slug, text in ANSWERS.items():
        fake.script(slug, {"text": text})
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "title": "portugal",
                "template": {"name": "capital", "user": "Capital of {{ country }}?"},
                "dataset": {"rows": [{"country": "Portugal"}]},
                "models": list(ANSWERS),
                "assertions": [{"type": "contains", "value": "Lisbon"}],
            }
        )
    )
    batch = subprocess.run(
        [sys.executable, "-m", "playground", "eval", str(suite)],
        cwd=ROOT,
        env=app_environment(fake, app_data_dir),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert batch.returncode == 0, batch.stdout + batch.stderr

    app_page.get_by_role("link", name="Evaluate").click()
    app_page.get_by_role("tab", name="Blind vote").click()
    app_page.get_by_role("button", name="Next round").click()
    vote_panel = app_page.get_by_role("tabpanel", name="Blind vote")
    expect(vote_panel.get_by_text("Answer A", exact=True)).to_be_visible()
    expect(vote_panel.get_by_text("Answer B", exact=True)).to_be_visible()
    for text in ANSWERS.values():
        expect(vote_panel.get_by_text(text)).to_be_visible()
    names = [load_catalog().name_of(slug) for slug in ANSWERS]
    for slug, name in zip(ANSWERS, names, strict=True):
        expect(vote_panel).not_to_contain_text(slug)
        expect(vote_panel).not_to_contain_text(name)
    app_page.screenshot(path=artifacts / "blind-vote.png")

    app_page.get_by_role("button", name="A is better").click()
    expect(vote_panel.get_by_text("Vote saved.", exact=False)).to_be_visible()
    for name in names:  # the display names, as on Compare
        expect(vote_panel).to_contain_text(name)
    expect(app_page.get_by_role("button", name="A is better")).to_have_count(0)

    app_page.get_by_role("link", name="Leaderboard").click()
    expect(app_page.get_by_role("heading", name="Leaderboard").first).to_be_visible()
    expect(app_page.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(app_page.get_by_test_id("stException")).to_have_count(0)
