"""The command line, ``python -m playground ...``: ``main`` parses and dispatches to the
``eval``, ``worker``, ``keys``, ``doctor`` and ``backup`` subcommands."""

import sys

# httpx imports its own command line (click, rich, pygments: ~50 ms) when it can; no
# command here uses it, and every one pays for it before its first request. A None entry
# makes that import fail, and httpx then leaves it out.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
