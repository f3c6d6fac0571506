"""The digit app's server under load, beside idle and stalled clients."""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

import numpy as np

from tinygrad_lenet import manual_seed
from tinygrad_lenet.config import RunConfig

SERVER_REQUESTS = 300  # per client count; every fifth a prediction, each on its own connection


def bench_server(args: argparse.Namespace) -> dict[str, Any]:
    """The digit app (LeNet-5, random weights) on 127.0.0.1 under load: failures and latency
    for 16 and 64 concurrent clients, threads held by 200 idle connections, and memory held
    by 60 clients that send half of a 1.3 MB body and stall."""
    import base64
    import socket
    import tracemalloc
    from concurrent.futures import ThreadPoolExecutor

    from models import TrainedModel, get_model
    from viz.app import DigitPredictor, make_server

    manual_seed(0)
    predictor = DigitPredictor(TrainedModel(get_model("lenet5").eval(), RunConfig(), tuple("0123456789"), {}))
    app = make_server(predictor, "127.0.0.1", 0, quiet=True, request_timeout=5.0)
    app.serve_in_background("digit-app-benchmark")
    host, port = app.server_address[:2]
    rng = np.random.default_rng(0)
    pixels = (rng.random((280, 280)) > 0.97).astype(np.uint8) * 255
    drawing = json.dumps(dict(width=280, height=280, pixels=base64.b64encode(pixels.tobytes()).decode())).encode()
    requests = {"info": b"GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                "predict": (f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(drawing)}\r\n\r\n"
                            .encode() + drawing)}

    def one(i: int) -> tuple[bool, float]:
        start = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=30) as conn:
                conn.sendall(requests["predict" if i % 5 == 0 else "info"])
                answer = b"".join(iter(lambda: conn.recv(65536), b""))
            ok = answer.startswith(b"HTTP/1.1 200 ")
        except OSError:
            ok = False
        return ok, time.perf_counter() - start

    results: dict[str, Any] = {"requests": SERVER_REQUESTS, "load": []}
    try:
        for clients in (16, 64):
            with ThreadPoolExecutor(max_workers=clients) as pool:
                outcomes = list(pool.map(one, range(SERVER_REQUESTS)))
            latency = np.array([s for _, s in outcomes])
            results["load"].append(dict(clients=clients, failures=sum(not ok for ok, _ in outcomes),
                                        p50_ms=float(np.percentile(latency, 50) * 1e3),
                                        p99_ms=float(np.percentile(latency, 99) * 1e3)))
        before = threading.active_count()
        idle = [socket.create_connection((host, port)) for _ in range(200)]
        time.sleep(0.5)
        results["idle"] = dict(connections=200, threads_before=before, threads_with_idle=threading.active_count(),
                               info_meanwhile=one(1), prediction_meanwhile=one(0))
        for conn in idle:
            conn.close()
        size = 1_300_000
        tracemalloc.start()
        stalled = []
        for _ in range(60):
            conn = socket.create_connection((host, port))
            conn.sendall(f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n".encode())
            conn.sendall(b"x" * (size // 2))
            stalled.append(conn)
        time.sleep(1.0)
        results["half_sent"] = dict(clients=60, body_bytes=size, sent_bytes=size // 2,
                                    held_bytes=tracemalloc.get_traced_memory()[1], info_meanwhile=one(1),
                                    prediction_meanwhile=one(0))
        tracemalloc.stop()
        for conn in stalled:
            conn.close()
    finally:
        app.shutdown()
        app.server_close()
    return results


def report_server(r: dict[str, Any]) -> str:
    lines = [f"digit app server on 127.0.0.1 (LeNet-5), {r['requests']} requests per row, every fifth a prediction, "
             "one connection each"]
    lines += [f"  {x['clients']:>3} concurrent clients: {x['failures']} failed, latency p50 {x['p50_ms']:.1f} ms, "
              f"p99 {x['p99_ms']:.1f} ms" for x in r["load"]]
    i, h = r["idle"], r["half_sent"]

    def meanwhile(x: dict[str, Any]) -> str:
        return ", ".join(f"{what} {'served' if ok else 'FAILED'} in {s * 1e3:.0f} ms"
                         for what, (ok, s) in (("GET /info", x["info_meanwhile"]), ("a prediction", x["prediction_meanwhile"])))
    lines.append(f"  {i['connections']} idle connections: threads {i['threads_before']} -> {i['threads_with_idle']}; "
                 f"meanwhile {meanwhile(i)}")
    lines.append(f"  {h['clients']} clients stalled after {h['sent_bytes']:,} of {h['body_bytes']:,} body bytes: "
                 f"{h['held_bytes'] / 2**20:.1f} MiB held (Python allocations); meanwhile {meanwhile(h)} "
                 f"(their bytes count against the body budget; each is answered 408 at the 5 s request deadline here)")
    return "\n".join(lines)
