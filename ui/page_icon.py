"""The app's favicon as a ``data:`` URL, read once per process.

A file, not ``":material/…"``: Streamlit fetches a material favicon from
fonts.gstatic.com, and an internal tool asks nothing of the internet. Given the file,
Streamlit reads and encodes it again on every page run (system calls on the way to every
page under load); given this URL, it passes it on as it is.
"""

from __future__ import annotations

import base64
from pathlib import Path

_SVG = (Path(__file__).parent / "favicon.svg").read_bytes()
FAVICON_URL = "data:image/svg+xml;base64," + base64.b64encode(_SVG).decode("ascii")
