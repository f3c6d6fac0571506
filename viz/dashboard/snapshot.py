"""The dashboard as one file that opens without a server: the page with its stylesheet,
script, state and graph inside, written to each run directory (`dashboard.html`)."""

from __future__ import annotations

import base64
import json
from importlib import resources

from viz.app.server import read_static
from viz.explore.page import script_text

from .state import DashboardState


def snapshot_html(state: DashboardState) -> str:
    """The dashboard page showing `state` as it is now, self-contained."""
    static = resources.files(__package__).joinpath("static")
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    style = static.joinpath("dashboard.css").read_text(encoding="utf-8")
    script = static.joinpath("dashboard.js").read_text(encoding="utf-8")
    data = f"window.DASHBOARD_SNAPSHOT = {json.dumps(state.snapshot(), allow_nan=False)};"
    if state.graph_svg is not None:
        uri = "data:image/svg+xml;base64," + base64.b64encode(state.graph_svg.encode()).decode()
        data += f"\nwindow.DASHBOARD_GRAPH = {json.dumps(uri)};"
    page = page.replace('<script src="dashboard.js" defer></script>\n', "")
    page = page.replace('<link rel="stylesheet" href="dashboard.css">', f"<style>\n{style}</style>")
    icon = "data:image/svg+xml;base64," + base64.b64encode(read_static("favicon.svg")).decode()
    page = page.replace('href="favicon.svg"', f'href="{icon}"')
    inline = f"<script>\n{script_text(data)}\n</script>\n<script>\n{script_text(script)}</script>\n</body>"
    return page.replace("</body>", inline)
