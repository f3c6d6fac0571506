"""The digit app's HTTP server: the static page (GET /, /app.js, /app.css) and
POST /predict (see `drawing` for the request, `DigitPredictor.predict` for the answer).

Every error is answered with JSON {"error": message} and a 4xx status (5xx only for
a bug), so a bad request never stops the server.
"""

from __future__ import annotations

import json
import socket
import sys
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from tinygrad_lenet.image import ImageError

from .drawing import RequestError, parse_drawing
from .predictor import DigitPredictor

MAX_BODY_BYTES = 2 * 1024 * 1024  # a 1024x1024 drawing is 1.4 MB of base64
STATIC_FILES = {  # URL path -> (file in static/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def read_static(name: str) -> bytes:
    """A file of the page, shipped as package data in tinygrad_lenet/app/static/."""
    return resources.files(__package__).joinpath("static", name).read_bytes()


class DigitAppServer(ThreadingHTTPServer):
    """Serves the page and predictions of `predictor`; one thread per request."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], predictor: DigitPredictor, quiet: bool = False):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.predictor = predictor
        self.quiet = quiet
        self.static = {path: (read_static(name), kind) for path, (name, kind) in STATIC_FILES.items()}
        super().__init__(address, DigitAppHandler)

    @property
    def url(self) -> str:
        """http://host:port/ of the page, with the port actually bound (for port 0)."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


class DigitAppHandler(BaseHTTPRequestHandler):
    server: DigitAppServer
    server_version = "tinygrad_lenet-digit-app"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path in self.server.static:
            body, kind = self.server.static[path]
            self._send(HTTPStatus.OK, body, kind)
        elif path == "/info":
            self._send_json(HTTPStatus.OK, self.server.predictor.info())
        elif path == "/predict":
            self._send_error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /predict with a JSON drawing", Allow="POST")
        else:
            self._send_error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path != "/predict":
            self._send_error(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {path}; use POST /predict")
            return
        try:
            body = self._read_body()
            result = self.server.predictor.predict(parse_drawing(body))
        except RequestError as e:
            self._send_error(HTTPStatus(e.status), str(e))
        except ImageError as e:
            self._send_error(HTTPStatus.UNPROCESSABLE_ENTITY, str(e))
        except Exception:  # a bug: say so, keep serving
            self.log_error("error while predicting:\n%s", traceback.format_exc())
            self._send_error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error while predicting; see the server log")
        else:
            self._send_json(HTTPStatus.OK, result)

    def _read_body(self) -> bytes:
        """The request body, refused before reading if its declared length is missing or too large."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
        try:
            length = int(declared)
        except ValueError:
            length = -1
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length: {declared!r}")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be taken for the next request
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"request body of {length} bytes is larger than the {MAX_BODY_BYTES} allowed")
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"request body ended after {len(body)} of {length} bytes")
        return body

    def _send_json(self, status: HTTPStatus, payload: Any, **headers: str) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode(), "application/json", **headers)

    def _send_error(self, status: HTTPStatus, message: str, **headers: str) -> None:
        self._send_json(status, {"error": message}, **headers)

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol errors found by http.server (bad request line, unsupported method) as JSON too."""
        self.close_connection = True
        self._send_error(HTTPStatus(code), message or HTTPStatus(code).phrase)

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            self._log(format % args)

    def log_error(self, format: str, *args: Any) -> None:
        self._log(format % args)  # even when quiet

    def _log(self, text: str) -> None:
        sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {text}\n")


def make_server(predictor: DigitPredictor, host: str = "127.0.0.1", port: int = 8000,
                quiet: bool = False) -> DigitAppServer:
    """A bound server (port 0 picks a free one: see `.url`); call `serve_forever()` to run it."""
    return DigitAppServer((host, port), predictor, quiet=quiet)
