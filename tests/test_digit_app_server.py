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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from measure import allocation_peak
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
    with running(predictor, request_timeout=1.0) as app:
        with socket.create_connection(app.server_address[:2], timeout=10) as conn:
            start = time.monotonic()
            for byte in http_request("GET", "/info"):
                if select.select([conn], [], [], 0.1)[0]:  # the server has answered: stop sending
                    break
                conn.sendall(bytes([byte]))
            answer = read_all(conn)
            elapsed = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer[:80]
    assert b'"error":"no complete request within 1 s of connecting"' in answer
    assert 0.9 < elapsed < 3.0


def test_idle_connections_hold_no_threads_and_are_closed(predictor):
    with running(predictor, request_timeout=1.5) as app:
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


def stall(app, count: int, declared: int, sent: int) -> list[socket.socket]:
    """`count` uploads that announce `declared` body bytes, send `sent` of them and stall."""
    conns = []
    for _ in range(count):
        conn = socket.create_connection(app.server_address[:2], timeout=15)
        conn.sendall(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {declared}\r\n\r\n".encode())
        conn.sendall(b"x" * sent)
        conns.append(conn)
    deadline = time.monotonic() + 5
    while app.connections < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return conns


def timed_exchange(app, data: bytes) -> tuple[int, dict, float]:
    start = time.monotonic()
    status, answer = exchange(app, data, timeout=10)
    return status, answer, time.monotonic() - start


@pytest.mark.parametrize("count, declared, sent", [
    (16, len(BODY), len(BODY) - 10),  # whole drawings but for their last 10 bytes
    (64, len(BODY), len(BODY) - 10),
    (64, 1_300_000, 650_000),  # half-sent 1.3 MB bodies
])
def test_stalled_uploads_starve_no_one_and_end_at_the_request_deadline(predictor, count, declared, sent):
    """Normal predictions are answered within a second while the stalled uploads are open,
    and each stalled upload is answered 408 within the request deadline, its memory bounded."""
    with running(predictor, request_timeout=3.0) as app:
        with allocation_peak() as peak:
            start = time.monotonic()
            conns = stall(app, count, declared, sent)
            meanwhile = [timed_exchange(app, http_request("POST", "/predict", BODY)) for _ in range(3)]
        held = peak.bytes
        try:
            answers = [read_all(conn) for conn in conns]
            ended = time.monotonic() - start
        finally:
            for conn in conns:
                conn.close()
    assert [status for status, _, _ in meanwhile] == [200] * 3, [m[:2] for m in meanwhile]
    assert max(seconds for _, _, seconds in meanwhile) < 1.0, [m[2] for m in meanwhile]
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), {a[:40] for a in answers}
    assert b"not received within 3 s of connecting" in answers[0]
    assert ended < 3.0 + 3.0  # the deadline, plus the time to open them and to answer
    assert held < count * sent + 16_000_000, f"{count} stalled uploads held {held:,} bytes"


def test_bodies_beyond_the_byte_budget_get_503_with_retry_after(predictor):
    with running(predictor, body_budget=len(BODY) + 50_000, request_timeout=3.0) as app:
        conns = stall(app, 1, 200_000, 90_000)
        time.sleep(0.3)  # the 90 KB are received
        try:
            assert app.held_body_bytes == 90_000
            with socket.create_connection(app.server_address[:2], timeout=10) as conn:
                conn.sendall(http_request("POST", "/predict", BODY))
                answer = read_all(conn)
        finally:
            for conn in conns:
                conn.close()
        assert answer.startswith(b"HTTP/1.1 503 ") and b"\r\nRetry-After: 1\r\n" in answer, answer[:200]
        deadline = time.monotonic() + 5
        while app.held_body_bytes and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.held_body_bytes == 0  # every byte was given back
        assert exchange(app, http_request("POST", "/predict", BODY))[0] == 200


def test_predictions_beyond_the_queue_get_503_at_once(predictor, monkeypatch):
    release, started = threading.Event(), threading.Event()
    original = predictor.predict

    def slow(gray):
        started.set()
        release.wait(10)
        return original(gray)

    monkeypatch.setattr(predictor, "predict", slow)
    with running(predictor, max_queued=1) as app:
        with ThreadPoolExecutor(max_workers=1) as first:
            held = first.submit(exchange, app, http_request("POST", "/predict", BODY))
            assert started.wait(10)
            status, answer, seconds = timed_exchange(app, http_request("POST", "/predict", BODY))
            release.set()
            assert held.result()[0] == 200
    assert (status, answer) == (503, {"error": "the server is busy, try again later"}) and seconds < 1.0


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
def test_clients_that_reset_after_asking_cost_a_log_line_each_at_most(predictor, capfd, quiet):
    """Each sends a whole request and resets its connection (SO_LINGER 0): before the
    answer, or as soon as its first byte arrives (the server is then closing its side)."""
    with running(predictor, quiet=quiet) as app:
        for i in range(60):
            with socket.create_connection(app.server_address[:2], timeout=10) as conn:
                conn.sendall(http_request("POST", "/predict", BODY) if i % 3 == 0 else http_request("GET", "/info"))
                if i % 3:
                    conn.recv(1)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        assert exchange(app, http_request("GET", "/info"))[0] == 200
        deadline = time.monotonic() + 5
        while app.connections and time.monotonic() < deadline:
            time.sleep(0.01)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Errno" not in err, err
    lines = err.strip().splitlines()
    assert lines == [] if quiet else 1 <= len(lines) <= 61, err


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


def test_the_dashboard_answers_within_a_second_beside_64_stalled_clients():
    """The dashboard's server has the app's limits: stalled requests hold no one up."""
    from tinygrad_lenet import nn
    from viz.dashboard import DashboardState
    from viz.dashboard.server import DashboardServer

    state = DashboardState(nn.Sequential(nn.Linear(4, 2)), "test", steps_per_epoch=10)
    app = DashboardServer(("127.0.0.1", 0), state, request_timeout=2.0)
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    try:
        stalled = stall(app, 32, 5000, 100)  # POSTs with bodies that never come
        stalled += [socket.create_connection(app.server_address[:2], timeout=15) for _ in range(32)]
        for conn in stalled[32:]:
            conn.sendall(b"GET /state HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers that never end
        status, answer, seconds = timed_exchange(app, http_request("GET", "/state"))
        answers = [read_all(conn) for conn in stalled]
        for conn in stalled:
            conn.close()
    finally:
        app.shutdown()
        app.server_close()
        thread.join(timeout=10)
    assert status == 200 and answer["title"] == "test" and seconds < 1.0
    assert {a[:13] for a in answers[32:]} == {b"HTTP/1.1 408 "}
    assert {a[:13] for a in answers[:32]} == {b"HTTP/1.1 405 "}  # read-only: POST refused without reading


def test_head_is_answered_as_get_without_a_body_and_each_server_names_itself(predictor):
    from tinygrad_lenet import nn
    from viz.dashboard import DashboardState
    from viz.dashboard.server import DashboardServer

    with running(predictor) as app:
        with socket.create_connection(app.server_address[:2], timeout=10) as conn:
            conn.sendall(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = read_all(conn)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"" and b"Content-Length: 0" not in head
    assert b"\r\nServer: tinygrad_lenet-digit-app\r\n" in head
    dashboard = DashboardServer(("127.0.0.1", 0), DashboardState(nn.Sequential(nn.Linear(2, 2)), "t", 1))
    thread = threading.Thread(target=dashboard.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(dashboard.server_address[:2], timeout=10) as conn:
            conn.sendall(b"HEAD /dashboard.css HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = read_all(conn)
    finally:
        dashboard.shutdown()
        dashboard.server_close()
        thread.join(timeout=10)
    assert answer.startswith(b"HTTP/1.1 200 ") and b"\r\nServer: tinygrad_lenet-dashboard\r\n" in answer
    assert b"Content-Type: text/css" in answer and answer.endswith(b"\r\n\r\n")
