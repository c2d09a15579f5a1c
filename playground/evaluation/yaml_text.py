"""Reading YAML documents (suites, promptfoo configs) quickly and safely.

An eval suite with its dataset inline is thousands of lines; PyYAML's pure-Python parser
takes tens of milliseconds on it, before any request of a CI run goes out. libyaml's
parser (when PyYAML was built with it) builds the same values about eight times faster.
"""

from __future__ import annotations

from typing import Any

import yaml

_FAST_LOADER: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """``yaml.safe_load(text)``, parsed by libyaml when available.

    Invalid YAML raises the :class:`yaml.YAMLError` the pure-Python parser raises (its
    message quotes the offending line, libyaml's does not).
    """
    try:
        return yaml.load(text, Loader=_FAST_LOADER)  # noqa: S506 (a safe loader)
    except yaml.YAMLError:
        if _FAST_LOADER is yaml.SafeLoader:
            raise
    return yaml.safe_load(text)
