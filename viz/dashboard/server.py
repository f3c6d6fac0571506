"""The dashboard's HTTP server: the digit app's bounded asyncio server with other routes
(GET / the page, /state the JSON state, /graph.svg the model's graph, /graph.html the graph
viewer); started in a daemon thread beside the training loop."""

from __future__ import annotations

import json
from http import HTTPStatus
from importlib import resources
from typing import Any

from viz.app.server import DigitAppServer, Response, read_static
from viz.explore.serve import ViewerPage

from .state import DashboardState

PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
              "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
              "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}


class DashboardServer(DigitAppServer):
    """Serves `state` read-only; POST is refused."""

    name = "tinygrad_lenet-dashboard"

    def __init__(self, address: tuple[str, int], state: DashboardState, quiet: bool = True, **limits: Any):
        super().__init__(address, predictor=None, quiet=quiet, **limits)  # type: ignore[arg-type]
        self.state = state
        self.static = {path: (resources.files(__package__).joinpath("static", name).read_bytes(), kind)
                       for path, (name, kind) in PAGE_FILES.items()}
        self.static["/favicon.svg"] = (read_static("favicon.svg"), "image/svg+xml")  # the digit app's icon
        self.viewer = None if state.graph_html is None else ViewerPage(state.graph_html)

    def _get(self, path: str) -> Response:
        if path in self.static:
            body, kind = self.static[path]
            return Response(HTTPStatus.OK, body, kind)
        if path == "/state":
            return Response(HTTPStatus.OK, json.dumps(self.state.snapshot(), allow_nan=False).encode(),
                            "application/json")
        if path == "/graph.svg" and self.state.graph_svg is not None:
            return Response(HTTPStatus.OK, self.state.graph_svg.encode(), "image/svg+xml")
        if path == "/graph.html" and self.viewer is not None:
            return self.viewer.response()
        return Response.error(HTTPStatus.NOT_FOUND, f"no such page: {path}")


def start_dashboard(state: DashboardState, port: int = 0, host: str = "127.0.0.1") -> DashboardServer:
    """A running dashboard server (a daemon thread): `.url`, and `.shutdown()` when training ends."""
    return DashboardServer((host, port), state).serve_in_background("dashboard")
