"""The live column's code (``ui/components/live_column``), served by the app's own route.

Each live column element carries only a small loader (``loader.js``); the component's
JavaScript and CSS are fetched from this app once per page (``GET /_live/<file>``), under
names that hold a hash of their content, so a browser may keep them for good and a new
version is a new name. A page run while six columns stream sent the whole code in each
column's element before (about 13 KB each). Nothing is fetched from anywhere but the app.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

ASSETS = Path(__file__).parent / "components" / "live_column"
CODE_PREFIX = "/_live/"


def _compact(source: str) -> str:
    # loader.js keeps each comment on a line of its own and no text literal over lines.
    lines = (line.strip() for line in source.splitlines())
    return "\n".join(line for line in lines if line and not line.startswith("//")) + "\n"


LOADER = _compact((ASSETS / "loader.js").read_text(encoding="utf-8"))
"""What each live column element carries: ``loader.js`` (which imports the served code)
without its comments, blank lines and indentation, which every page run would send again
for each column."""


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str


def _hashed(file: str, media_type: str) -> tuple[str, _Asset]:
    body = (ASSETS / file).read_bytes()
    stem, suffix = file.rsplit(".", 1)
    return f"{stem}.{hashlib.sha256(body).hexdigest()[:16]}.{suffix}", _Asset(body, media_type)


# Read once, like the component's code was when it was sent inline: a server serves the
# version it started with.
_JS_NAME, _JS = _hashed("live_column.js", "text/javascript; charset=utf-8")
_CSS_NAME, _CSS = _hashed("live_column.css", "text/css; charset=utf-8")
_SERVED = {_JS_NAME: _JS, _CSS_NAME: _CSS}


def _base(base_url_path: str) -> str:
    return f"/{base_url_path.strip('/')}" if base_url_path.strip("/") else ""


def code_urls(base_url_path: str = "") -> dict[str, str]:
    """The paths (under Streamlit's ``server.baseUrlPath``) of the component's JS and CSS
    (``js``, ``css``); the loader reads them as ``code_js`` and ``code_css`` of its data."""
    base = _base(base_url_path)
    return {"js": f"{base}{CODE_PREFIX}{_JS_NAME}", "css": f"{base}{CODE_PREFIX}{_CSS_NAME}"}


def code_routes(base_url_path: str = "") -> list[BaseRoute]:
    """The route serving the component's two files (see ``serve.py``)."""
    return [Route(f"{_base(base_url_path)}{CODE_PREFIX}{{name}}", _serve, methods=["GET"])]


async def _serve(request: Request) -> Response:
    # Only the two known names, from memory: no path from the request reaches the disk.
    asset = _SERVED.get(request.path_params["name"])
    if asset is None:
        return PlainTextResponse("Not found", status_code=404)
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={
            # The name changes with the content, so the file at a name never does.
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
