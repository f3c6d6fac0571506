"""The digit app's server under load and against slow, idle and hostile clients, on
127.0.0.1: concurrent clients all get answers, threads and memory stay bounded,
timeouts close slow connections, the Host header is checked, and a client that
leaves early is one log line, never a traceback."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from test_digit_app import SEVEN, draw_strokes, drawing_body, make_checkpoint, running

from viz.app import DigitPredictor


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> DigitPredictor:
    path: Path = tmp_path_factory.mktemp("server") / "checkpoint.npz"
    make_checkpoint(path)
    return DigitPredictor.from_checkpoint(path)


def exchange(app, data: bytes, timeout: float = 20.0) -> tuple[int, dict]:
    """Send raw bytes on a new connection; (status, JSON body) of the answer."""
    with socket.create_connection(app.server_address[:2], timeout=timeout) as conn:
        conn.sendall(data)
        answer = read_all(conn)
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def http_request(method: str, path: str, body: bytes = b"", host: str = "127.0.0.1") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n"
    return (head + "\r\n").encode() + body


BODY = drawing_body(draw_strokes(SEVEN))


def test_64_concurrent_clients_get_all_300_answers(predictor):
    """Every fifth request is a prediction; each its own connection, as a page's requests are."""
    with running(predictor) as app:
        expected = exchange(app, http_request("POST", "/predict", BODY))[1]

        def one(i: int) -> bool:
            if i % 5 == 0:
                return exchange(app, http_request("POST", "/predict", BODY)) == (200, expected)
            status, info = exchange(app, http_request("GET", "/info"))
            return status == 200 and info["model"] == "lenet5"

        with ThreadPoolExecutor(max_workers=64) as clients:
            results = list(clients.map(one, range(300)))
    assert results.count(False) == 0 and len(results) == 300


def test_a_client_sending_a_byte_a_second_is_closed_at_the_header_deadline(predictor):
    """Ten bytes a second of a request's headers: answered 408 when the header deadline passes."""
    with running(predictor, header_timeout=1.0) as app:
        with socket.create_connection(app.server_address[:2], timeout=10) as conn:
            start = time.monotonic()
            for byte in http_request("GET", "/info"):
                if select.select([conn], [], [], 0.1)[0]:  # the server has answered: stop sending
                    break
                conn.sendall(bytes([byte]))
            answer = read_all(conn)
            elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer[:80]
    assert b'"error":"no complete request within 1 s"' in answer
    assert 0.9 < elapsed < 3.0


def test_idle_connections_hold_no_threads_and_are_closed(predictor):
    with running(predictor, header_timeout=1.5) as app:
        exchange(app, http_request("GET", "/info"))  # the worker pool and the loop are up
        threads_before = threading.active_count()
        idle = [socket.create_connection(app.server_address[:2], timeout=10) for _ in range(200)]
        try:
            deadline = time.monotonic() + 5
            while app.connections < 200 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert app.connections == 200
            assert threading.active_count() <= threads_before
            # served meanwhile, not after the idle ones
            assert exchange(app, http_request("GET", "/info"), timeout=1.0)[0] == 200
            answers = [read_all(conn) for conn in idle]  # each ends at the header deadline
        finally:
            for conn in idle:
                conn.close()
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers)
        deadline = time.monotonic() + 5
        while app.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.connections == 0


def test_half_sent_bodies_hold_bounded_memory_and_time_out(predictor):
    """60 clients announce 1.3 MB bodies, send half, and stall."""
    size = 1_300_000
    with running(predictor, body_timeout=2.0) as app:
        tracemalloc.start()
        try:
            conns = []
            for _ in range(60):
                conn = socket.create_connection(app.server_address[:2], timeout=10)
                conn.sendall(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n".encode())
                conn.sendall(b"x" * (size // 2))
                conns.append(conn)
            time.sleep(0.5)
            held = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        try:
            answers = [read_all(conn) for conn in conns]
        finally:
            for conn in conns:
                conn.close()
    assert held < 40_000_000, f"60 half-sent bodies held {held:,} bytes"
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), {a[:40] for a in answers}


def test_more_connections_than_allowed_get_503_at_once(predictor):
    with running(predictor, max_connections=5) as app:
        idle = [socket.create_connection(app.server_address[:2], timeout=10) for _ in range(5)]
        try:
            deadline = time.monotonic() + 5
            while app.connections < 5 and time.monotonic() < deadline:
                time.sleep(0.01)
            status, answer = exchange(app, http_request("GET", "/info"), timeout=2.0)
        finally:
            for conn in idle:
                conn.close()
        assert (status, answer) == (503, {"error": "the server is busy, try again later"})


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1", 200), ("localhost", 200), ("localhost:8000", 200), ("127.0.0.7:1234", 200), ("[::1]:80", 200),
    ("evil.example", 421), ("evil.example:8000", 421), ("192.168.1.5", 421), ("127.0.0.1.evil.example", 421),
    ("[zz", 421),
])
def test_the_host_header_is_checked_on_loopback(predictor, host, status):
    """DNS rebinding: a page of another site reaches 127.0.0.1 under its own name, which is refused."""
    with running(predictor) as app:
        got, answer = exchange(app, http_request("GET", "/info", host=host))
        assert got == status, answer
        if status == 421:
            assert answer["error"].startswith("this server answers only to loopback names")


@pytest.mark.parametrize("body, message", [
    (b'{"width": ' + b"9" * 5000 + b', "height": 4, "pixels": ""}', "request body is not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "request body is JSON nested too deeply"),
    (b'{"width": 4, "height": 4, "pixels": "' + b"A" * 100 + b'", "x": NaN}', "pixels holds 75 bytes"),
])
def test_pathological_json_is_a_400(predictor, body, message):
    with running(predictor) as app:
        status, answer = exchange(app, http_request("POST", "/predict", body))
    assert status == 400 and answer["error"].startswith(message), answer


@pytest.mark.parametrize("quiet", [False, True])
def test_a_client_that_leaves_early_is_one_log_line(predictor, capfd, quiet):
    with running(predictor, quiet=quiet) as app:
        for payload in [b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{\"width\"",
                        b"GET /info HTTP/1.1\r\nHo"]:
            with socket.create_connection(app.server_address[:2], timeout=10) as conn:
                conn.sendall(payload)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
        assert exchange(app, http_request("GET", "/info"))[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if quiet:
        assert lines == []
    else:
        assert len(lines) == 3, err  # two early endings, one answered request
        assert sum("connection ended early" in line or " 400 " in line for line in lines) == 2, err


def test_a_nan_never_reaches_the_json(predictor):
    """Non-finite models are refused when loaded; should one get through, the answer is a 500, not NaN."""
    with running(predictor) as app:
        weight = predictor.model.classifier[5].weight
        saved = weight.data.copy()
        weight.data[...] = np.nan
        try:
            status, answer = exchange(app, http_request("POST", "/predict", BODY))
        finally:
            weight.data[...] = saved
    assert status == 500 and "NaN" not in json.dumps(answer)
