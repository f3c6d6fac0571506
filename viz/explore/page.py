"""The viewer as one HTML file: its stylesheet, script, the vendored Graphviz (viz.js)
and the data inlined, so it opens from disk with no server and no network."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib import resources
from typing import Any

STATIC = resources.files(__package__).joinpath("static")
VENDORED = "vendor/viz-global.js"  # viz.js 3.31.0: Graphviz compiled to WebAssembly (see vendor/LICENSE)


def _static(name: str) -> str:
    return STATIC.joinpath(name).read_text(encoding="utf-8")


def script_text(text: str) -> str:
    """Script text (JavaScript or JSON) that cannot end its <script> element early."""
    return text.replace("</", "<\\/")


def page_html(data: dict[str, Any]) -> str:
    """The viewer page showing `data` (see `view.view_data`)."""
    payload = json.dumps(data, allow_nan=False, separators=(",", ":"))
    scripts = (f'<script id="graph-data" type="application/json">{script_text(payload)}</script>\n'
               f"<script>{script_text(_static(VENDORED))}</script>\n"
               f"<script>{script_text(_static('explorer.js'))}</script>")
    page = _static("explorer.html").replace("__STYLE__", f"<style>\n{_static('explorer.css')}</style>")
    return page.replace("__TITLE__", html.escape(data["title"])).replace("__SCRIPTS__", scripts)


def content_security_policy(page: str) -> str:
    """A policy for serving `page`: its own inline scripts and style (by hash) and
    WebAssembly run, nothing fetched from anywhere."""
    def hashes(tag: str) -> str:
        bodies = re.findall(rf"<{tag}>(.*?)</{tag}>", page, flags=re.S)
        return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'" for b in bodies)
    return (f"default-src 'none'; script-src {hashes('script')} 'wasm-unsafe-eval'; style-src {hashes('style')}; "
            "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
