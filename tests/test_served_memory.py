"""The served app tunes Python's garbage collector for a long-lived process; nothing else
does. A full collection walks every object the process holds (~170k after the app's
imports) while every thread waits: the served app collects once, freezes what survives
and collects its young generation less often."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from playground.services.runtime import GC_YOUNG_THRESHOLD

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import gc, sys
from playground.services import runtime
if sys.argv[1] == "served":
    runtime.settle_memory_when_serving()
runtime.get_runner().close()
print(gc.get_threshold()[0], gc.get_freeze_count() > 0)
"""


@pytest.mark.parametrize(
    ("how", "expected"), [("served", f"{GC_YOUNG_THRESHOLD} True"), ("other", "700 False")]
)
def test_only_the_served_app_settles_its_memory(tmp_path: Path, how: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYGROUND_")}
    env["PLAYGROUND_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, how],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == expected
