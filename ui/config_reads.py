"""Read the Streamlit options asked for on every message or page run without Streamlit's
config lock.

Streamlit (1.67) takes one process-wide lock in each ``config.get_option`` call. It asks
for ``global.minCachedMessageSize`` on every message a script run sends (whether to cache
it), for ``global.appTest`` on most elements, and for a dozen more options once per page
run: ~2,000 option reads a second with 20 users streaming. The lock's holders include
each page run's theme message, which walks every option under it. A script thread that
the interpreter switches out while it holds the lock (its switch interval is 5 ms) makes
every other script thread that reads an option wait for it in turn: the script threads
spent 29 % of their wall time waiting there (py-spy, ``benchmarks/bench_load.py``).

:func:`read_hot_options_without_lock` answers the options in :data:`HOT_OPTIONS` from
values read once (under the lock) and forgotten whenever Streamlit's options change: a
value set (``_set_option``, which ``set_option`` and the config files' parsing both go
through) or the config files parsed again. Every other option is read as before, among
them those whose default Streamlit works out from the environment or the working
directory (``server.headless``, ``secrets.files``). The six theme sections each page run's
first message walks (``get_options_for_section("theme…")``, every option of the server
under the lock, each time) are kept the same way, and each caller gets its own copy.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from streamlit import config

_LOGGER = logging.getLogger(__name__)
THEME_SECTIONS = "theme"
_PATCHED = "_playground_hot_options_without_lock"
HOT_OPTIONS = frozenset(
    {
        # Every message or element.
        "global.minCachedMessageSize",
        "global.appTest",
        "browser.gatherUsageStats",
        # Every page run (values from the config files, flags or built-in defaults).
        "client.disableDataExport",
        "client.showErrorLinks",
        "client.showSidebarNavigation",
        "client.toolbarMode",
        "global.maxCachedMessageAge",
        "runner.enforceSerializableSessionState",
        "runner.parallelMaxWorkers",
        "runner.postScriptGC",
        "server.allowRunOnSave",
        "ui.hideTopBar",
    }
)


def read_hot_options_without_lock() -> None:
    """Patch ``streamlit.config`` once per process (see the module's docstring)."""
    if getattr(config, _PATCHED, False):
        return
    lock = getattr(config, "_config_lock", None)
    set_option = getattr(config, "_set_option", None)
    needed = ("on_config_parsed", "get_options_for_section")
    if lock is None or set_option is None or not all(hasattr(config, n) for n in needed):
        # Another Streamlit: nothing to patch (tests/test_config_reads.py fails then).
        _LOGGER.warning("Streamlit changed: every option read takes the config lock")
        return
    values: dict[str, Any] = {}
    read = config.get_option

    @functools.wraps(read)
    def get_option(key: str) -> Any:
        if key not in HOT_OPTIONS:
            return read(key)
        try:
            return values[key]
        except KeyError:
            pass
        # Read and kept under the lock: a change (which holds it) cannot come in between.
        with lock:
            value = values[key] = read(key)
        return value

    sections: dict[str, dict[str, Any]] = {}
    read_section = config.get_options_for_section

    @functools.wraps(read_section)
    def get_options_for_section(section: str) -> dict[str, Any]:
        if not section.startswith(THEME_SECTIONS):
            return read_section(section)
        found = sections.get(section)
        if found is None:
            with lock:
                found = sections[section] = read_section(section)
        return dict(found)

    def forget() -> None:
        values.clear()
        sections.clear()

    config.get_option = get_option
    config.get_options_for_section = get_options_for_section
    config._set_option = _forgetting(set_option, forget)
    # Called with the lock held, once the files' options are all in place.
    config.on_config_parsed(forget, force_connect=True)
    setattr(config, _PATCHED, True)


def _forgetting(set_option: Callable[..., None], forget: Callable[[], None]) -> Callable[..., None]:
    @functools.wraps(set_option)
    def set_and_forget(key: str, value: Any, where_defined: str) -> None:
        try:
            set_option(key, value, where_defined)
        finally:
            forget()

    return set_and_forget
