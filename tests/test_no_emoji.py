"""The pages draw no emoji: a stock Debian Chromium has no emoji font and shows boxes.

Icons come from the Material Symbols font Streamlit bundles (``icon=":material/…:"``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMOJI = re.compile("[\U0001f000-\U0001ffff]")
DRAWN = sorted([ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").glob("*.py")])


@pytest.mark.parametrize("path", DRAWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_page_draws_an_emoji(path: Path) -> None:
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if EMOJI.search(line)
    ]
    assert not found
