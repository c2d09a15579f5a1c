"""The running app keeps Streamlit's request protections: XSRF on uploads, origin checks on
the WebSocket. (The settings themselves are checked in ``tests/test_streamlit_config.py``.)"""

from __future__ import annotations

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.browser


def test_an_upload_without_the_xsrf_token_is_refused(app_url: str) -> None:
    response = httpx.put(
        f"{app_url}/_stcore/upload_file/some-session/some-file",
        files={"file": ("rows.csv", b"country\nFrance\n", "text/csv")},
        timeout=10,
    )
    assert response.status_code == 403
    assert "XSRF" in response.text


def test_a_websocket_from_another_origin_is_refused(app_url: str) -> None:
    stream = app_url.replace("http://", "ws://", 1) + "/_stcore/stream"
    with pytest.raises(InvalidStatus) as refused:
        connect(stream, origin="http://evil.example", open_timeout=10).close()  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    with connect(stream, origin=app_url, open_timeout=10):  # type: ignore[arg-type]
        pass  # the app's own origin is let in
