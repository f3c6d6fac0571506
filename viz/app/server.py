"""The digit app's HTTP server: the static page (GET /, /app.js, /app.css), GET /info
and POST /predict (see `drawing` for the request, `DigitPredictor.predict` for the answer).

Every error is answered with JSON {"error": message} and a 4xx status (5xx only for
a bug), so a bad request never stops the server.

Busy and hostile clients cost bounded resources. Connections are read by one asyncio
event loop, so an idle or slow client costs a small buffer, not a thread; predictions
run on a fixed pool of `workers` threads. A connection must deliver its whole request,
headers and body, within `request_timeout` seconds of connecting, else it is answered
408 and closed: a stalled upload holds nothing for longer. Headers may hold
MAX_HEADER_BYTES and a body MAX_BODY_BYTES; the bodies being received and predicted
hold at most BODY_BUDGET bytes together, at most MAX_QUEUED predictions wait for a
worker, and beyond MAX_CONNECTIONS open connections new ones get 503 at once (each
503 with Retry-After); the listen backlog holds LISTEN_BACKLOG. Each connection
serves one request (HTTP/1.1 with `Connection: close`). Bound to loopback, the
server answers only requests whose Host is a loopback name, so a web page elsewhere
cannot reach it through DNS rebinding. A client that goes away is one log line
(none with `quiet`); only a bug logs a traceback.

The standard library's `asyncio` does this with a small parser below; `http.server`
spends a thread per connection and has no overall deadlines, and a WSGI/ASGI server
would be a dependency for the same few limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http.client
import io
import ipaddress
import json
import socket
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from tinygrad_lenet.image import ImageError

from .drawing import RequestError, parse_drawing
from .predictor import DigitPredictor

MAX_BODY_BYTES = 2 * 1024 * 1024  # a 1024x1024 drawing is 1.4 MB of base64
MAX_HEADER_BYTES = 16 * 1024  # request line and headers
MAX_CONNECTIONS = 512  # open at once; more are answered 503
LISTEN_BACKLOG = 1024  # connections the kernel queues before they are accepted
WORKERS = 4  # prediction threads (numpy's work; more than the cores only queue)
MAX_QUEUED = 64  # predictions waiting for a worker; more are answered 503
BODY_BUDGET = 64 * 1024 * 1024  # bytes of bodies held at once (received so far, or being predicted on)
REQUEST_TIMEOUT = 5.0  # seconds from connecting to the end of the body (2 MB at 400 KB/s)
SEND_TIMEOUT = 30.0  # seconds for a client to take the answer
LINGER_SECONDS = 2.0  # after answering, how long unread input is drained before closing
STATIC_FILES = {  # URL path -> (file in static/, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SERVER_NAME = "tinygrad_lenet-digit-app"


def read_static(name: str) -> bytes:
    """A file of the page, shipped as package data in viz/app/static/."""
    return resources.files(__package__).joinpath("static", name).read_bytes()


def is_loopback_address(host: str) -> bool:
    """True for localhost and loopback IP addresses (127.0.0.0/8, ::1, also in [brackets])."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Response:
    """A status, a body and its content type: what a request is answered with."""

    def __init__(self, status: HTTPStatus, body: bytes, content_type: str, **headers: str):
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers
        self.head_only = False  # the answer to HEAD: GET's headers, no body

    @classmethod
    def json(cls, status: HTTPStatus, payload: Any, **headers: str) -> "Response":
        return cls(status, json.dumps(payload, separators=(",", ":"), allow_nan=False).encode(), "application/json",
                   **headers)

    @classmethod
    def error(cls, status: HTTPStatus, message: str, **headers: str) -> "Response":
        return cls.json(status, {"error": message}, **headers)

    def encode(self, server_name: str = SERVER_NAME) -> bytes:
        status = HTTPStatus(self.status)
        lines = [f"HTTP/1.1 {status.value} {status.phrase}", f"Server: {server_name}",
                 f"Date: {email.utils.formatdate(usegmt=True)}", f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(self.body)}", "Connection: close",
                 *(f"{k}: {v}" for k, v in {**SECURITY_HEADERS, **self.headers}.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if self.head_only else self.body)


class DigitAppServer:
    """Serves the page and predictions of `predictor` on `address` (bound on creation;
    port 0 picks a free one). `serve_forever()` runs until `shutdown()` (from another
    thread) or Ctrl+C; `server_close()` releases the socket and the workers."""

    name = SERVER_NAME  # the Server header

    def __init__(self, address: tuple[str, int], predictor: DigitPredictor, quiet: bool = False, *,
                 workers: int = WORKERS, request_timeout: float = REQUEST_TIMEOUT,
                 max_connections: int = MAX_CONNECTIONS, max_queued: int = MAX_QUEUED, body_budget: int = BODY_BUDGET):
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)
        self.server_address = self.socket.getsockname()
        self.predictor, self.quiet = predictor, quiet
        self.request_timeout, self.max_connections = request_timeout, max_connections
        self.workers, self.max_queued, self.body_budget = workers, max_queued, body_budget
        self.static = {path: (read_static(name), kind) for path, (name, kind) in STATIC_FILES.items()}
        self.loopback_only = is_loopback_address(str(self.server_address[0]))
        self.connections = 0  # open now (read by tests and the log)
        self.held_body_bytes = 0  # of bodies received or being predicted on, at most body_budget
        self.queued = 0  # predictions submitted to the workers and not yet answered
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="digit-app")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._running = threading.Event()
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        """http://host:port/ of the page, with the port actually bound (for port 0)."""
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    # ---------------------------------------------------------------- running
    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Serve until `shutdown()`; `poll_interval` is accepted for socketserver's signature."""
        self._stopped.clear()
        try:
            asyncio.run(self._serve())
        finally:
            self._running.clear()
            self._stopped.set()

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self.socket, limit=MAX_HEADER_BYTES)
        self._running.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def serve_in_background(self, name: str) -> "DigitAppServer":
        """Run `serve_forever()` in a daemon thread called `name`; returns this server."""
        threading.Thread(target=self.serve_forever, name=name, daemon=True).start()
        return self

    def shutdown(self) -> None:
        """Stop `serve_forever()` (called from another thread) and wait until it has returned."""
        if not self._running.wait(timeout=5):  # serve_forever may be starting in its thread
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._stopped.wait(timeout=10)

    def server_close(self) -> None:
        self.socket.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---------------------------------------------------------------- one connection
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = (writer.get_extra_info("peername") or ("?",))[0]
        self.connections += 1
        try:
            if self.connections > self.max_connections:
                response, line = busy(), "(too many connections)"
            else:
                response, line = await self._answer(reader, writer, self._loop.time() + self.request_timeout)
            if response is not None:
                writer.write(response.encode(self.name))
                await asyncio.wait_for(writer.drain(), SEND_TIMEOUT)
                self._log_request(peer, line, response)
                await self._linger(reader, writer)
        except (OSError, asyncio.IncompleteReadError) as e:  # reset, gone, or not taking the answer in time
            self._log(peer, f"connection ended early ({type(e).__name__})")
        except asyncio.CancelledError:  # the server is stopping: end quietly (asyncio would log the cancellation)
            pass
        except Exception:  # a bug: say so, keep serving
            self._log(peer, f"error while answering:\n{traceback.format_exc()}", always=True)
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    @staticmethod
    async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Half-close, then drop what the client still sends for a moment: closing with
        unread bytes would reset the connection and lose the answer on its way (e.g. a 408
        or 413 to a client still sending its body)."""
        if not writer.can_write_eof():
            return
        with contextlib.suppress(OSError):  # TimeoutError, a reset, or a socket the client already shut
            writer.write_eof()
            async with asyncio.timeout(LINGER_SECONDS):
                while await reader.read(65536):
                    pass

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      deadline: float) -> tuple[Response | None, str]:
        """(the response, the request line for the log); None when the client left before asking
        anything. The request must be complete by `deadline` (the event loop's clock)."""
        try:
            async with asyncio.timeout_at(deadline):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return self._timed_out("no complete request"), "(timed out)"
        except asyncio.LimitOverrunError:
            return Response.error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                  f"request headers longer than {MAX_HEADER_BYTES} bytes"), "(headers too long)"
        except asyncio.IncompleteReadError as e:
            if e.partial:
                raise
            return None, ""
        request_line, _, header_block = head.partition(b"\r\n")
        line = request_line.decode("latin-1")[:200]
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return Response.error(HTTPStatus.BAD_REQUEST, f"bad request line {line!r:.100}"), line
        method, target, _ = parts
        try:
            headers = http.client.parse_headers(io.BytesIO(header_block))
        except http.client.HTTPException as e:
            return Response.error(HTTPStatus.BAD_REQUEST, f"bad headers: {e}"), line
        host = headers.get("Host")
        if not self._host_allowed(host):
            return Response.error(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only to loopback names "
                                  f"(e.g. {self.url}), not Host {host!r:.100}"), line
        path = urlsplit(target).path
        if method in ("GET", "HEAD"):
            response = self._get(path)
            response.head_only = method == "HEAD"
            return response, line
        if method != "POST":
            return Response.error(HTTPStatus.NOT_IMPLEMENTED, f"Unsupported method ({method!r:.20})"), line
        if self.predictor is None:  # a read-only page (the training dashboard)
            return Response.error(HTTPStatus.METHOD_NOT_ALLOWED, "this server only answers GET", Allow="GET"), line
        if path != "/predict":
            return Response.error(HTTPStatus.NOT_FOUND, f"no such endpoint: POST {path}; use POST /predict"), line
        try:
            length = self._body_length(headers)
        except RequestError as e:
            return Response.error(HTTPStatus(e.status), str(e)), line
        if self.queued >= self.max_queued:
            return busy(), line
        if headers.get("Expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        chunks: list[bytes] = []
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._receive(reader, length, chunks)
            except TimeoutError:
                return self._timed_out(f"request body of {length} bytes not received"), line
            except RequestError as e:
                return (busy() if e.status == HTTPStatus.SERVICE_UNAVAILABLE
                        else Response.error(HTTPStatus(e.status), str(e))), line
            self.queued += 1
            try:
                return await self._loop.run_in_executor(self._pool, self._predict, b"".join(chunks)), line
            finally:
                self.queued -= 1
        finally:  # the body's bytes are given back once it is answered
            self.held_body_bytes -= sum(map(len, chunks))

    def _timed_out(self, what: str) -> Response:
        return Response.error(HTTPStatus.REQUEST_TIMEOUT, f"{what} within {self.request_timeout:g} s of connecting")

    def _host_allowed(self, host_header: str | None) -> bool:
        """Anything unless bound to loopback; then only loopback names (or no Host at all, as HTTP/1.0 allows)."""
        if not self.loopback_only or host_header is None:
            return True
        try:
            host = urlsplit("//" + host_header.strip()).hostname or ""
        except ValueError:
            return False
        return is_loopback_address(host)

    def _get(self, path: str) -> Response:
        if path in self.static:
            body, kind = self.static[path]
            return Response(HTTPStatus.OK, body, kind)
        if path == "/info":
            return Response.json(HTTPStatus.OK, self.predictor.info())
        if path == "/predict":
            return Response.error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /predict with a JSON drawing", Allow="POST")
        return Response.error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    @staticmethod
    def _body_length(headers: Any) -> int:
        """The request body's declared length, checked."""
        declared = headers.get("Content-Length")
        if declared is None:
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
        length = int(declared) if declared.strip().isdigit() and len(declared) < 20 else -1
        if length < 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length: {declared!r:.40}")
        if length > MAX_BODY_BYTES:
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"request body of {length} bytes is larger than the {MAX_BODY_BYTES} allowed")
        return length

    async def _receive(self, reader: asyncio.StreamReader, length: int, chunks: list[bytes]) -> None:
        """Read `length` body bytes into `chunks`, each counted in `held_body_bytes` as it
        arrives (the caller gives them back); a RequestError 503 when the budget is spent."""
        received = 0
        while received < length:
            chunk = await reader.read(min(65536, length - received))
            if not chunk:
                raise RequestError(HTTPStatus.BAD_REQUEST, f"request body ended after {received} of {length} bytes")
            if self.held_body_bytes + len(chunk) > self.body_budget:
                raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, "the server is busy")
            self.held_body_bytes += len(chunk)
            received += len(chunk)
            chunks.append(chunk)

    def _predict(self, body: bytes) -> Response:
        """Runs on a worker thread."""
        try:
            return Response.json(HTTPStatus.OK, self.predictor.predict(parse_drawing(body)))
        except RequestError as e:
            return Response.error(HTTPStatus(e.status), str(e))
        except ImageError as e:
            return Response.error(HTTPStatus.UNPROCESSABLE_ENTITY, str(e))
        except Exception:  # a bug: say so, keep serving
            self._log("-", f"error while predicting:\n{traceback.format_exc()}", always=True)
            return Response.error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error while predicting; see the server log")

    # ---------------------------------------------------------------- log
    def _log_request(self, peer: str, line: str, response: Response) -> None:
        self._log(peer, f'"{line}" {response.status.value} {len(response.body)}')

    def _log(self, peer: str, text: str, always: bool = False) -> None:
        if always or not self.quiet:
            stamp = time.strftime("%d/%b/%Y %H:%M:%S")
            sys.stderr.write(f"{peer} - [{stamp}] {text}\n")


def busy() -> Response:
    """503: too many connections, queued predictions or body bytes; the client may retry."""
    return Response.error(HTTPStatus.SERVICE_UNAVAILABLE, "the server is busy, try again later", **{"Retry-After": "1"})


def make_server(predictor: DigitPredictor, host: str = "127.0.0.1", port: int = 8000,
                quiet: bool = False, **limits: Any) -> DigitAppServer:
    """A bound server (port 0 picks a free one: see `.url`); call `serve_forever()` to run it.
    `limits`: workers, request_timeout, max_connections, max_queued, body_budget (defaults: the
    constants above)."""
    return DigitAppServer((host, port), predictor, quiet=quiet, **limits)
