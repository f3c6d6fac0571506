"""Serve the viewer page on loopback: the digit app's bounded server with one page,
answered with a Content-Security-Policy that allows only the page's own inline
scripts and style (by hash) and its WebAssembly."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from viz.app.server import DigitAppServer, Response

from .page import content_security_policy


class ViewerPage:
    """The viewer page as served: its bytes, and its Content-Security-Policy, hashed once."""

    def __init__(self, page: str):
        self.body, self.policy = page.encode("utf-8"), content_security_policy(page)

    def response(self) -> Response:
        return Response(HTTPStatus.OK, self.body, "text/html; charset=utf-8", **{"Content-Security-Policy": self.policy})


class ExplorerServer(DigitAppServer):
    """Serves one viewer page at / (and /graph.html); POST is refused."""

    name = "tinygrad_lenet-graph-viewer"

    def __init__(self, address: tuple[str, int], page: str, quiet: bool = True, **limits: Any):
        super().__init__(address, predictor=None, quiet=quiet, **limits)  # type: ignore[arg-type]
        self.page = ViewerPage(page)
        self.static = {}

    def _get(self, path: str) -> Response:
        if path in ("/", "/graph.html"):
            return self.page.response()
        return Response.error(HTTPStatus.NOT_FOUND, f"no such page: {path}")


def start_explorer_server(page: str, port: int = 0, host: str = "127.0.0.1") -> ExplorerServer:
    """A running server of `page` (a daemon thread): `.url`, and `.shutdown()` to stop."""
    return ExplorerServer((host, port), page).serve_in_background("graph-viewer")
