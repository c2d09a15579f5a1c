"""The option-read patch (``ui/config_reads.py``): the two options Streamlit reads on every
message are answered without its config lock, and follow every change of Streamlit's
options; it applies to the Streamlit the app runs on.

Its effect under load is measured by ``benchmarks/bench_load.py``; every browser test of
the app runs with it (``serve.py`` applies it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit import config

from ui.config_reads import HOT_OPTIONS, read_hot_options_without_lock

SIZE = "global.minCachedMessageSize"


@pytest.fixture(autouse=True)
def patched() -> Iterator[None]:
    read_hot_options_without_lock()
    before = config.get_option(SIZE)
    yield
    config.set_option(SIZE, before)


def while_the_lock_is_held(read: Callable[[], object]) -> tuple[bool, object]:
    """Call ``read`` on a thread while another thread holds Streamlit's config lock: whether
    it finished within a second, and what it returned."""
    held, release = threading.Event(), threading.Event()
    got: list[object] = []

    def hold() -> None:
        with config._config_lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    held.wait(5)
    reader = threading.Thread(target=lambda: got.append(read()), daemon=True)
    reader.start()
    reader.join(1.0)
    finished = not reader.is_alive()
    release.set()
    holder.join(5)
    reader.join(5)
    return finished, got[0] if got else None


def read_while_the_lock_is_held(key: str) -> tuple[bool, object]:
    return while_the_lock_is_held(lambda: config.get_option(key))


def read_section_while_the_lock_is_held(section: str) -> tuple[bool, object]:
    return while_the_lock_is_held(lambda: config.get_options_for_section(section))


@pytest.mark.parametrize("key", sorted(HOT_OPTIONS))
def test_the_hot_options_are_read_without_waiting_for_the_lock(key: str) -> None:
    config.get_option(key)  # the first read takes the lock
    assert read_while_the_lock_is_held(key) == (True, config.get_option(key))


@pytest.mark.parametrize("key", ["server.headless", "secrets.files", "server.port"])
def test_any_other_option_still_waits_for_the_lock(key: str) -> None:
    """As Streamlit wants: some defaults follow the environment or the working directory."""
    config.get_option(key)
    assert read_while_the_lock_is_held(key)[0] is False


@pytest.mark.parametrize("section", ["theme", "theme.light", "theme.dark.sidebar"])
def test_the_theme_sections_are_read_without_waiting_for_the_lock(section: str) -> None:
    first = config.get_options_for_section(section)
    finished, again = read_section_while_the_lock_is_held(section)
    assert finished and again == first
    assert again is not first  # each caller gets its own copy
    # Any other section still waits for the lock.
    assert read_section_while_the_lock_is_held("server")[0] is False


def test_a_theme_option_set_is_seen_in_its_section(monkeypatch: pytest.MonkeyPatch) -> None:
    before = config.get_option("theme.primaryColor")
    assert config.get_options_for_section("theme")["primaryColor"] == before
    config.set_option("theme.primaryColor", "#123456")
    try:
        assert config.get_options_for_section("theme")["primaryColor"] == "#123456"
    finally:
        config.set_option("theme.primaryColor", before)
    assert config.get_options_for_section("theme")["primaryColor"] == before


def test_a_set_option_is_seen_at_once() -> None:
    assert config.get_option(SIZE) == 10_000
    config.set_option(SIZE, 123)
    assert config.get_option(SIZE) == 123
    assert read_while_the_lock_is_held(SIZE) == (True, 123)


def test_the_config_files_parsed_again_are_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config.get_option(SIZE) == 10_000
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text("[global]\nminCachedMessageSize = 777\n")
    monkeypatch.chdir(tmp_path)
    config.get_config_options(force_reparse=True)
    assert config.get_option(SIZE) == 777
    monkeypatch.undo()
    config.get_config_options(force_reparse=True)
    assert config.get_option(SIZE) == 10_000


def test_patching_twice_wraps_once() -> None:
    patched_read = config.get_option
    read_hot_options_without_lock()
    assert config.get_option is patched_read
