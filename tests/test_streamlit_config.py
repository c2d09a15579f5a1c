"""``.streamlit/config.toml`` keeps Streamlit's protections on and its limits in line with ours.

Every key must be a real Streamlit option: a misspelt one (``enableXSRFProtection``) would be
ignored silently, leaving the default in force.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from streamlit import config as streamlit_config

from playground.datasets import MAX_DATASET_BYTES

CONFIG = Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def options() -> dict[str, Any]:
    """The file's options as ``section.name`` keys."""
    parsed = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    return {
        f"{section}.{name}": value
        for section, table in parsed.items()
        for name, value in table.items()
    }


def test_every_key_is_a_streamlit_option(options: dict[str, Any]) -> None:
    known = streamlit_config.get_config_options()
    assert sorted(set(options) - set(known)) == []


def test_xsrf_protection_stays_on(options: dict[str, Any]) -> None:
    assert options["server.enableXsrfProtection"] is True


def test_cors_protection_is_not_turned_off(options: dict[str, Any]) -> None:
    # enableCORS=false makes Streamlit accept a WebSocket from any origin; XSRF protection
    # does not cover the WebSocket, so a hostile page could drive a signed-in session.
    assert options.get("server.enableCORS", True) is True
    assert options.get("server.corsAllowedOrigins", []) == []
    assert options.get("global.developmentMode", False) is False


def test_the_app_listens_on_loopback_by_default(options: dict[str, Any]) -> None:
    # Local mode has no sign-in; `make run HOST=…` or --server.address exposes it on purpose.
    assert options["server.address"] == "127.0.0.1"


def test_users_never_see_tracebacks(options: dict[str, Any]) -> None:
    assert options["client.showErrorDetails"] == "none"


def test_request_size_limits_fit_the_largest_dataset(options: dict[str, Any]) -> None:
    upload_mb = options["server.maxUploadSize"]
    message_mb = options["server.maxMessageSize"]
    # A dataset file up to the parser's limit uploads; a pasted one (UTF-8, in one WebSocket
    # message with its framing) fits twice over; neither limit is the 200 MB default.
    assert MAX_DATASET_BYTES <= upload_mb * MB < 200 * MB
    assert 2 * MAX_DATASET_BYTES <= message_mb * MB < 200 * MB
