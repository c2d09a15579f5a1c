"""The live column's code goes to a browser once: each element carries only a small loader,
and the app serves the component's JavaScript and CSS from its own route (real HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from playground.presenters.compare_state import MODELS, PROMPT
from tests.app_harness import SIX_MODELS, click, open_page, run_until_done
from tests.fake_elumenta import FakeElumenta, ModelScript
from tests.fake_elumenta.process import served_in_thread
from ui import live_code

COMPONENT = Path(live_code.__file__).parent / "components" / "live_column"


def test_a_page_run_while_six_columns_stream_sends_the_loader_not_the_code(
    with_fake: None, fake_elumenta: FakeElumenta
) -> None:
    fake_elumenta.script("*", ModelScript(text="slow answer " * 40, ttft_ms=50, delay_ms=200))
    at = open_page()
    at.text_area(key=PROMPT).set_value("Hello")
    at.multiselect(key=MODELS).set_value(SIX_MODELS)
    click(at.run(), "Run")
    at.run()  # what any click while the columns stream costs

    live = [
        e.proto for e in at.main.get("bidi_component") if "live_column" in e.proto.component_name
    ]
    assert len(live) == 6
    code = (COMPONENT / "live_column.js").read_text(encoding="utf-8")
    style = (COMPONENT / "live_column.css").read_text(encoding="utf-8")
    for element in live:
        assert element.js_content == live_code.LOADER
        assert len(element.js_content) < len(code) // 4
        assert "function drawFrame" not in element.js_content
        assert not element.css_content and not element.css_source_path
        data = json.loads(element.json)
        assert (data["code_js"], data["code_css"]) == tuple(live_code.code_urls().values())
        # Only scalars: Streamlit checks any other value for a data frame on every page
        # run, importing pandas and pyarrow the first time (~0.2 s of the page run).
        assert all(v is None or isinstance(v, str | int | float | bool) for v in data.values())
    assert len(code) + len(style) > 10_000  # what each element carried before
    click(at, "Stop all")
    run_until_done(at)


@pytest.fixture
def code_url() -> Iterator[str]:
    """The code route served by uvicorn on a free port, under a base URL path."""
    with served_in_thread(Starlette(routes=live_code.code_routes("/team/"))) as url:
        yield url


def test_the_route_serves_the_components_files_under_names_that_change_with_them(
    code_url: str,
) -> None:
    urls = live_code.code_urls("/team/")
    assert urls["js"].startswith("/team/_live/live_column.") and urls["js"].endswith(".js")
    with httpx.Client(base_url=code_url, timeout=10) as client:
        for kind, file, media in (
            ("js", "live_column.js", "text/javascript"),
            ("css", "live_column.css", "text/css"),
        ):
            response = client.get(urls[kind])
            assert response.status_code == 200
            assert response.content == (COMPONENT / file).read_bytes()
            assert response.headers["content-type"].startswith(media)
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "immutable" in response.headers["cache-control"]
        # Only those two names: no other file, no path, no older version.
        for path in (
            "/team/_live/live_column.js",
            "/team/_live/loader.js",
            "/team/_live/..%2F..%2Flive_code.py",
            "/team/_live/live_column.0000000000000000.js",
            urls["js"].removeprefix("/team"),
        ):
            assert client.get(path).status_code == 404, path
