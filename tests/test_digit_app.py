"""The digit app: its server (POST /predict, the page's files, errors), the script, and
the page itself in headless Chromium driven over chromedriver's W3C WebDriver HTTP API.

The checkpoints here hold random weights (made with the real model and checkpoint code),
with LeNet-5's output layer scaled up so probabilities differ visibly between inputs:
the tests check the plumbing against the model run directly, not accuracy.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from browser import WINDOW, browser, draw, screenshot  # noqa: F401  (browser is a fixture)

from models import available_models, get_model, load_trained_model
from tinygrad_lenet import Tensor, manual_seed, no_grad
from tinygrad_lenet.checkpoint import load_checkpoint, save_checkpoint
from tinygrad_lenet.data import DATASETS, load_mnist, normalize_images
from tinygrad_lenet.image import ImageError, to_mnist
from tinygrad_lenet.inference import capture_outputs, probabilities
from viz.app import FEATURE_LAYERS, MAX_BODY_BYTES, DigitPredictor, is_loopback_address, make_server
from viz.app.server import STATIC_FILES, read_static

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "digit_app.py"
MNIST_MEAN_STD = DATASETS["mnist"].mean_std  # its published statistics
PAD = 280  # the page's canvas size
MAP_ATOL = 0.6e-4  # maps are sent rounded to 4 decimals


def make_checkpoint(path: Path, model: str = "lenet5") -> None:
    """A checkpoint of `model` with random weights (seed 1); LeNet-5's last layer scaled x40."""
    manual_seed(1)
    state = get_model(model).state_dict()
    if model == "lenet5":
        state["classifier.5.weight"] = state["classifier.5.weight"] * np.float32(40)
    config = dict(model=model, dataset="mnist", normalize_mean=MNIST_MEAN_STD[0], normalize_std=MNIST_MEAN_STD[1])
    save_checkpoint(path, model_state=state, extra=dict(epoch=1, config=config))


def draw_strokes(points: list[tuple[float, float]], size: int = PAD, width: float = 20.0) -> np.ndarray:
    """uint8 (size, size) white-on-black polyline through `points` (fractions of the side)."""
    y, x = (np.mgrid[0:size, 0:size].astype(np.float32) + np.float32(0.5))
    ink = np.zeros((size, size), np.float32)
    for (y0, x0), (y1, x1) in zip(points[:-1], points[1:]):
        a, b = np.array([y0, x0], np.float32) * size, np.array([y1, x1], np.float32) * size
        d = b - a
        t = np.clip(((y - a[0]) * d[0] + (x - a[1]) * d[1]) / max(float(d @ d), 1e-6), 0, 1)
        dist = np.hypot(y - (a[0] + t * d[0]), x - (a[1] + t * d[1]))
        ink = np.maximum(ink, np.clip(width / 2 + 0.5 - dist, 0, 1))
    return np.rint(ink * 255).astype(np.uint8)


SEVEN = [(0.2, 0.25), (0.2, 0.75), (0.85, 0.4)]
FOUR = [(0.15, 0.35), (0.55, 0.25), (0.55, 0.75), (0.55, 0.6), (0.15, 0.6), (0.9, 0.6)]


def drawing_body(pixels: np.ndarray) -> bytes:
    height, width = pixels.shape
    return json.dumps(dict(width=width, height=height, pixels=base64.b64encode(pixels.tobytes()).decode())).encode()


def request(url: str, body: bytes | None = None, method: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def predict(server_url: str, pixels: np.ndarray) -> dict[str, Any]:
    status, _, body = request(server_url + "predict", drawing_body(pixels))
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("digit_app") / "checkpoint.npz"
    make_checkpoint(path)
    return path


@contextmanager
def running(predictor: DigitPredictor, **limits) -> Iterator:
    """A server on an ephemeral port of 127.0.0.1, served from a thread."""
    limits.setdefault("quiet", True)
    app = make_server(predictor, "127.0.0.1", 0, **limits)
    thread = threading.Thread(target=app.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        app.shutdown()
        app.server_close()
        thread.join(timeout=10)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def server(checkpoint):
    """The app on 127.0.0.1, an ephemeral port, served from a thread."""
    with running(DigitPredictor.from_checkpoint(checkpoint)) as app:
        yield app


def expected_answer(checkpoint: Path, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(input, probabilities, [conv1+ReLU, conv2+ReLU maps]) from the model run directly."""
    model = load_trained_model(checkpoint).model
    image = to_mnist(pixels.astype(np.float32) / np.float32(255))
    probs = probabilities(model, image[None], MNIST_MEAN_STD)[0]
    x = Tensor(normalize_images(image[None], normalize=MNIST_MEAN_STD))
    with no_grad():
        conv1 = model.features[:2](x).data[0]
        conv2 = model.features[:5](x).data[0]
    return image, probs, [conv1, conv2]


def check_answer(answer: dict[str, Any], checkpoint: Path, pixels: np.ndarray) -> None:
    image, probs, maps = expected_answer(checkpoint, pixels)
    got = np.array(answer["probabilities"])
    assert got.shape == (10,) and abs(got.sum() - 1) < 1e-5
    np.testing.assert_allclose(got, probs, rtol=1e-5, atol=1e-7)
    assert answer["digit"] == int(probs.argmax()) == int(got.argmax())
    assert answer["label"] == str(answer["digit"]) and answer["classes"] == [str(d) for d in range(10)]
    assert (answer["model"], answer["dataset"]) == ("lenet5", "mnist")
    np.testing.assert_array_equal(np.array(answer["input"], dtype=np.uint8), image)
    assert [layer["name"] for layer in answer["layers"]] == ["features.1", "features.4"]
    for layer, expected, shape in zip(answer["layers"], maps, [[6, 28, 28], [16, 10, 10]]):
        assert layer["shape"] == list(expected.shape) == shape
        np.testing.assert_allclose(np.array(layer["maps"]), expected, rtol=0, atol=MAP_ATOL)


# ---------------------------------------------------------------- the server
def test_page_files_are_served_and_self_contained(server):
    for path, (name, kind) in STATIC_FILES.items():
        status, headers, body = request(server.url + path.lstrip("/"))
        assert status == 200 and headers["Content-Type"] == kind and body == read_static(name)
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        # Offline: nothing is loaded from another host (no CDN, no fonts, no analytics).
        # (SVG's namespace name, http://www.w3.org/2000/svg, identifies the format; nothing is fetched from it)
        loads = body.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")
        assert not re.search(rb"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", loads), f"{name} refers to another host"
    page = read_static("index.html").decode()
    for needed in ('<canvas id="pad"', 'id="clear"', 'id="digit"', 'id="bars"', 'id="input"', 'id="layers"',
                   'src="app.js"', 'href="app.css"'):
        assert needed in page


def test_synthetic_strokes_either_polarity(server, checkpoint):
    seven = draw_strokes(SEVEN)
    answer = predict(server.url, seven)
    check_answer(answer, checkpoint, seven)
    inverted = predict(server.url, 255 - seven)  # black on white: the same ink, the same input
    assert inverted["input"] == answer["input"] and inverted["probabilities"] == answer["probabilities"]
    four = draw_strokes(FOUR)
    other = predict(server.url, four)
    check_answer(other, checkpoint, four)
    assert np.abs(np.array(other["probabilities"]) - answer["probabilities"]).max() > 1e-3


def test_real_mnist_digits(server, checkpoint, real_mnist_dir):
    images, _ = load_mnist("test", root=real_mnist_dir, download=False)
    for digit in images[:3]:
        drawn = np.kron(digit, np.ones((10, 10), np.uint8))  # as if drawn on the 280x280 pad
        answer = predict(server.url, drawn)
        check_answer(answer, checkpoint, drawn)
        # MNIST digits are already size-normalized and centered: the input is the digit again.
        seen = np.array(answer["input"], np.float32)
        assert np.corrcoef(seen.ravel(), digit.astype(np.float32).ravel())[0, 1] > 0.9


# Each model's first and second convolution block (after the nonlinearity), computed step by step.
CONV_BLOCKS = {
    "lenet5": lambda m, x: (m.features[:2](x), m.features[:5](x)),
    "lenet5_1998": lambda m, x: (h1 := m.c1_squash(m.c1(m.scale_input(x))),
                                 m.c3_squash(m.c3(m.s2_squash(m.s2(h1))))),
}


@pytest.mark.parametrize("model", available_models())
def test_feature_layers_of_every_model(tmp_path, model):
    path = tmp_path / "checkpoint.npz"
    make_checkpoint(path, model)
    predictor = DigitPredictor.from_checkpoint(path)
    answer = predictor.predict(draw_strokes(SEVEN).astype(np.float32) / np.float32(255))
    assert [(layer["name"], layer["title"]) for layer in answer["layers"]] == list(FEATURE_LAYERS[model])
    assert answer["model"] == model
    x = Tensor(normalize_images(np.array(answer["input"], np.uint8)[None], normalize=MNIST_MEAN_STD))
    with no_grad():
        expected = [h.data[0] for h in CONV_BLOCKS[model](predictor.model, x)]
    for layer, maps, shape in zip(answer["layers"], expected, [[6, 28, 28], [16, 10, 10]], strict=True):
        assert layer["shape"] == list(maps.shape) == shape
        assert np.abs(maps).max() > 0.01  # each layer shows something
        np.testing.assert_allclose(np.array(layer["maps"]), maps, rtol=0, atol=MAP_ATOL)


def test_capture_outputs_records_and_restores(checkpoint):
    model = load_trained_model(checkpoint).model
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 28, 28), dtype=np.float32))
    with no_grad():
        with capture_outputs(model, ["features.2", "classifier"]) as outputs:
            logits = model(x)
        np.testing.assert_array_equal(outputs["classifier"], logits.data)
        np.testing.assert_array_equal(outputs["features.2"], model.features[:3](x).data)
        assert outputs["features.2"].shape == (2, 6, 14, 14)
        with pytest.raises(ZeroDivisionError), capture_outputs(model, ["features.0"]):
            _ = 1 / 0
        with capture_outputs(model, ["features.0"]) as outer, capture_outputs(model, ["features.0"]) as inner:
            model(x)
        np.testing.assert_array_equal(outer["features.0"], inner["features.0"])
    with pytest.raises(KeyError, match="LeNet5 has no submodule 'features.9'; it has: features, features.0"):
        with capture_outputs(model, ["features.0", "features.9"]):
            pass
    assert all(not m._forward_hooks and "forward" not in m.__dict__ for m in model.modules())  # hooks removed


def test_capture_outputs_in_several_threads_at_once_needs_no_lock(checkpoint):
    """Each thread's block records its own calls, though all hooks sit on the same modules."""
    model = load_trained_model(checkpoint).model
    inputs = [Tensor(np.random.default_rng(k).standard_normal((1, 1, 28, 28), dtype=np.float32)) for k in range(8)]
    with no_grad():
        expected = [model.features[:2](x).data for x in inputs]
    start = threading.Barrier(8)
    results: list[np.ndarray | None] = [None] * 8

    def work(k: int) -> None:
        with no_grad(), capture_outputs(model, ["features.1"]) as outputs:
            start.wait(timeout=10)
            for _ in range(20):
                model(inputs[k])
                assert np.array_equal(outputs["features.1"], expected[k])
        results[k] = outputs["features.1"]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    for k in range(8):
        np.testing.assert_array_equal(results[k], expected[k])
    assert not model.features[1]._forward_hooks


@pytest.mark.parametrize("body, status, message", [
    (b"not json", 400, "request body is not valid JSON"),
    (b"\xff\xfe\x00", 400, "request body is not valid JSON"),
    (b"[1, 2]", 400, "request body must be a JSON object with width, height and pixels, got list"),
    (b'{"width": 0, "height": 4, "pixels": ""}', 400, "width must be an integer in 1..1024, got 0"),
    (b'{"width": true, "height": 4, "pixels": ""}', 400, "width must be an integer in 1..1024, got True"),
    (b'{"width": 4, "height": 2000, "pixels": ""}', 400, "height must be an integer in 1..1024, got 2000"),
    (b'{"width": 4, "height": 4}', 400, "pixels must be a base64 string of width*height bytes, got NoneType"),
    (b'{"width": 4, "height": 4, "pixels": "@@@@"}', 400, "pixels is not valid base64"),
    (b'{"width": 4, "height": 4, "pixels": "AAAA"}', 400, "pixels holds 3 bytes, expected width*height = 4*4 = 16"),
    (drawing_body(np.zeros((40, 30), np.uint8)), 422, "drawing: no ink found"),
    (drawing_body(np.full((40, 30), 255, np.uint8)), 422, "drawing: no ink found"),
])
def test_bad_drawings_get_json_errors(server, body, status, message):
    code, headers, answer = request(server.url + "predict", body)
    assert (code, headers["Content-Type"]) == (status, "application/json")
    assert json.loads(answer)["error"].startswith(message)


def raw_request(server, lines: list[str], body: bytes = b"", close_write: bool = False) -> tuple[int, dict]:
    """Send a hand-made HTTP request; (status, JSON answer)."""
    with socket.create_connection(server.server_address[:2], timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        if close_write:
            conn.shutdown(socket.SHUT_WR)
        response = http.client.HTTPResponse(conn)
        response.begin()
        return response.status, json.loads(response.read())


def test_bad_requests_get_json_errors_and_the_server_keeps_serving(server, checkpoint):
    status, answer = raw_request(server, ["POST /predict HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {MAX_BODY_BYTES + 1}"])
    assert status == 413 and answer["error"] == (f"request body of {MAX_BODY_BYTES + 1} bytes is larger than the "
                                                 f"{MAX_BODY_BYTES} allowed")
    assert raw_request(server, ["POST /predict HTTP/1.1", "Host: 127.0.0.1"]) == (
        411, {"error": "a Content-Length header is required"})
    assert raw_request(server, ["POST /predict HTTP/1.1", "Host: 127.0.0.1", "Content-Length: -5"]) == (
        400, {"error": "invalid Content-Length: '-5'"})
    truncated = ["POST /predict HTTP/1.1", "Host: 127.0.0.1", "Content-Length: 100"]
    assert raw_request(server, truncated, b"{}", close_write=True) == (
        400, {"error": "request body ended after 2 of 100 bytes"})
    assert raw_request(server, ["PUT / HTTP/1.1", "Host: 127.0.0.1"]) == (501, {"error": "Unsupported method ('PUT')"})
    status, headers, answer = request(server.url + "predict")
    assert (status, headers["Allow"]) == (405, "POST")
    assert json.loads(answer) == {"error": "use POST /predict with a JSON drawing"}
    status, _, answer = request(server.url + "secret.txt")
    assert (status, json.loads(answer)) == (404, {"error": "no such page: /secret.txt"})
    assert request(server.url + "app.py")[0] == 404  # only the page's files are served
    status, _, answer = request(server.url + "other", b"{}")
    assert (status, json.loads(answer)) == (404, {"error": "no such endpoint: POST /other; use POST /predict"})
    check_answer(predict(server.url, draw_strokes(SEVEN)), checkpoint, draw_strokes(SEVEN))


def test_concurrent_predictions_agree(server):
    drawings = [draw_strokes(SEVEN), draw_strokes(FOUR)] * 3
    expected = [predict(server.url, d) for d in drawings[:2]]
    results: list[dict | None] = [None] * len(drawings)

    def worker(i: int) -> None:
        results[i] = predict(server.url, drawings[i])

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(drawings))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert results == [expected[i % 2] for i in range(len(drawings))]


def test_predictor_rejects_blank_drawings(checkpoint):
    with pytest.raises(ImageError, match="drawing: no ink found"):
        DigitPredictor.from_checkpoint(checkpoint).predict(np.zeros((28, 28), np.float32))


# ---------------------------------------------------------------- the script
def load_script():
    spec = importlib.util.spec_from_file_location("digit_app_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_needs_a_checkpoint(tmp_path, capsys):
    script = load_script()
    with pytest.raises(SystemExit) as info:
        script.main(["--checkpoint", str(tmp_path / "none.npz")])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--checkpoint: no such file: {tmp_path / 'none.npz'}; train a model first with " \
           "`python scripts/train.py`" in err
    (tmp_path / "bad.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        script.main(["--checkpoint", str(tmp_path / "bad.npz")])
    assert f"--checkpoint: cannot load {tmp_path / 'bad.npz'}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["--port", "70000"])
    assert "must be in 0..65535" in capsys.readouterr().err


def test_loopback_hosts():
    assert all(is_loopback_address(host) for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"))
    assert not any(is_loopback_address(host) for host in ("0.0.0.0", "::", "192.168.1.5", "example.org", ""))


def wait_for_line(path: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> re.Match:
    """The first match of `pattern` in the growing file `path`; fails if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace") if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited with {proc.returncode} before printing {pattern!r}:\n{text}")
        time.sleep(0.05)
    pytest.fail(f"{proc.args[0]} did not print {pattern!r} within {timeout} s:\n{text}")


def stop(proc: subprocess.Popen) -> None:
    """Terminate `proc` and its process group (started with start_new_session), bounded."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever it started and left behind
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(timeout=5)


def test_script_serves_until_interrupted(checkpoint, tmp_path):
    log = tmp_path / "out.txt"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONWARNINGS="error", PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "--checkpoint", str(checkpoint), "--port", "0",
                                 "--quiet"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        url = wait_for_line(log, r"open (http://127\.0\.0\.1:\d+/)", proc, timeout=30).group(1)
        assert request(url)[0] == 200
        assert predict(url, draw_strokes(SEVEN))["layers"][0]["shape"] == [6, 28, 28]
        proc.send_signal(signal.SIGINT)  # Ctrl+C
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)
    assert log.read_text().splitlines() == [f"digit app: lenet5 trained on mnist, from {checkpoint}",
                                            f"open {url}  (Ctrl+C to stop)", "stopped"]


# ---------------------------------------------------------------- the page in Chromium
PAGE_STATE = """
const bars = [...document.querySelectorAll('#bars li')];
const pad = document.getElementById('pad');
const rgba = pad.getContext('2d').getImageData(0, 0, pad.width, pad.height).data;
let text = '';
for (let i = 0; i < rgba.length; i += 4) text += String.fromCharCode(rgba[i]);
const red = (canvas) => {
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  return Array.from(data.filter((_, i) => i % 4 === 0));
};
const width = (el) => el.getBoundingClientRect().width;
return {
  digit: document.getElementById('digit').textContent,
  status: document.getElementById('status').textContent,
  labels: bars.map(li => li.querySelector('.label').textContent),
  values: bars.map(li => li.querySelector('.value').textContent),
  fractions: bars.map(li => width(li.querySelector('.fill')) / width(li.querySelector('.track'))),
  top: bars.map(li => li.classList.contains('top')),
  pixels: btoa(text),
  input: red(document.getElementById('input')),
  layers: [...document.querySelectorAll('#layers figure')].map(f => [...f.querySelectorAll('canvas')].map(red)),
};
"""


def page_shows(state: dict[str, Any], answer: dict[str, Any]) -> bool:
    probs = answer["probabilities"]
    return (state["digit"] == answer["label"]
            and state["top"] == [k == answer["digit"] for k in range(10)]
            and all(v.endswith("%") and abs(float(v[:-1]) - 100 * p) <= 0.05 + 1e-9
                    for v, p in zip(state["values"], probs))
            and np.allclose(state["fractions"], probs, atol=0.01)
            and state["input"] == np.array(answer["input"]).ravel().tolist())


def test_page_draws_predicts_and_looks_inside(server, browser, tmp_path):  # noqa: F811
    browser.get(server.url)
    assert browser.title == "LeNet-5 digit app"
    pad = browser.find_element("id", "pad")
    draw(browser, pad, [[(-70, -80), (70, -80), (45, -20), (20, 40), (-5, 100)]])  # a 7, from the pad's center

    # The page must come to show exactly the server's answer for the drawing on its pad.
    deadline = time.monotonic() + 10
    while True:
        state = browser.execute_script(PAGE_STATE)
        drawn = np.frombuffer(base64.b64decode(state["pixels"]), np.uint8).reshape(PAD, PAD)
        assert (drawn > 128).sum() > 2000, "the stroke left (almost) no ink on the pad"
        answer = predict(server.url, drawn)
        if page_shows(state, answer) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert page_shows(state, answer), {k: state[k] for k in ("digit", "status", "values", "fractions", "top")}
    assert state["labels"] == [str(d) for d in range(10)]
    assert state["status"] == "Draw more strokes, or Clear and start again."
    # Look inside: 6 and 16 maps, each pixel the layer's value scaled from [min(0, low), high] to [0, 255].
    assert [len(maps) for maps in state["layers"]] == [6, 16]
    # The saliency over the input: each pixel the input's gray, tinted red (+) or blue (-) by |v| / max |v|.
    shown = np.array(browser.execute_script("""
        const c = document.getElementById('saliency');
        return Array.from(c.getContext('2d').getImageData(0, 0, 28, 28).data);""")).reshape(28, 28, 4)[..., :3]
    values, gray = np.array(answer["saliency"]), np.array(answer["input"], np.float64)[..., None]
    level = np.abs(values)[..., None] / np.abs(values).max()
    tint = np.where(values[..., None] > 0, [230, 40, 40], [40, 100, 255])
    assert np.abs(shown - (gray * (1 - level) + tint * level)).max() <= 1.0
    size = browser.execute_script("const r = document.getElementById('saliency').getBoundingClientRect();"
                                  "return [r.width, r.height];")
    assert size == [224, 224], size  # shown large, not 112 px
    low, high = (browser.find_element("id", name).text for name in ("saliency-low", "saliency-high"))
    assert float(high) == pytest.approx(np.abs(values).max(), rel=0.05) and low == "\u2212" + high[1:]
    assert browser.execute_script("return document.getElementById('rbf').hidden")  # lenet5 has no RBF layer
    for shown, layer in zip(state["layers"], answer["layers"]):
        values = np.array(layer["maps"])
        low, high = min(0.0, values.min()), values.max()
        expected = (values - low) * (255 / (high - low))
        assert np.abs(np.array(shown).reshape(values.shape) - expected).max() <= 1.0

    # Styled as its stylesheet says, the pad and the answer side by side at 1200 px, the page not too tall.
    layout = browser.execute_script("""
        const top = (sel) => Math.round(document.querySelector(sel).getBoundingClientRect().top);
        return {font: getComputedStyle(document.body).fontFamily, sheets: document.styleSheets.length,
                pad: top('.pad-panel'), answer: top('.prediction-panel'),
                height: document.documentElement.scrollHeight};""")
    assert "system-ui" in layout["font"] and layout["sheets"] == 1, layout
    assert layout["pad"] == layout["answer"] and layout["height"] <= 2000, layout
    shot = screenshot(browser, tmp_path / "digit_app.png")
    assert shot.shape[1] == WINDOW[0]  # the page at the window's width (the height excludes window borders)
    assert shot.std() > 10  # not a blank page

    browser.find_element("id", "clear").click()
    cleared = browser.execute_script(PAGE_STATE)
    assert cleared["digit"] == "?" and cleared["values"] == [""] * 10 and not any(cleared["top"])
    assert base64.b64decode(cleared["pixels"]) == bytes(PAD * PAD) and not any(cleared["input"])


def test_a_flagged_drawing_reads_not_a_digit_first_and_the_closest_digit_second(tmp_path, browser):  # noqa: F811
    """With an energy threshold every drawing exceeds, the page's big answer is "not a
    digit", and the closest digit is named in the smaller line beside it."""
    path = tmp_path / "strict.npz"
    make_checkpoint(path)
    ckpt = load_checkpoint(path)
    ckpt["extra"]["energy_threshold"] = -1e9  # every energy is above it
    save_checkpoint(path, model_state=ckpt["model_state"], extra=ckpt["extra"])
    with running(DigitPredictor.from_checkpoint(path)) as app:
        browser.get(app.url)
        draw(browser, browser.find_element("id", "pad"), [[(-70, -80), (70, -80), (45, -20), (20, 40), (-5, 100)]])
        deadline = time.monotonic() + 10
        while browser.find_element("id", "digit").text == "?" and time.monotonic() < deadline:
            time.sleep(0.1)
        answer = predict(app.url, np.frombuffer(base64.b64decode(browser.execute_script(PAGE_STATE)["pixels"]),
                                                np.uint8).reshape(PAD, PAD))
    assert answer["not_a_digit"] is True
    big, small = browser.find_element("id", "digit"), browser.find_element("id", "confidence")
    assert big.text == "not a digit"
    assert small.text == (f"unlike the digits it was trained on; the closest is {answer['label']} "
                          f"({100 * answer['probabilities'][answer['digit']]:.1f}%)")
    sizes = browser.execute_script("return ['digit', 'confidence'].map((id) => "
                                   "parseFloat(getComputedStyle(document.getElementById(id)).fontSize));")
    assert sizes[0] > sizes[1]  # the verdict reads first; the digit is named smaller
    browser.find_element("id", "clear").click()
    assert browser.find_element("id", "digit").text == "?"


def test_the_drawn_set_is_what_the_mouse_draws_on_the_page(server, browser):  # noqa: F811
    """Drawings of the drawn set (viz/app/drawn_set.py), drawn with the mouse on the app's
    pad in Chromium, leave the pixels `rasterize` computes for them (so the rates that
    scripts/not_a_digit.py measures are those of drawings made on the page), and the page
    answers for them."""
    from viz.app.drawn_set import PAD as SET_PAD
    from viz.app.drawn_set import drawn_set, rasterize
    assert SET_PAD == PAD
    browser.get(server.url)
    pad = browser.find_element("id", "pad")
    scale = browser.execute_script("return arguments[0].getBoundingClientRect().width", pad) / PAD
    drawings = drawn_set()
    for drawing in drawings[::23]:  # 16 drawings: digits and non-digits, every size and place
        browser.find_element("id", "clear").click()
        draw(browser, pad, [[(round((x - PAD / 2) * scale), round((y - PAD / 2) * scale)) for x, y in stroke]
                            for stroke in drawing.strokes])
        drawn = np.frombuffer(base64.b64decode(browser.execute_script(PAGE_STATE)["pixels"]), np.uint8).reshape(PAD, PAD)
        expected = rasterize(drawing)
        differ = np.mean(np.abs(drawn.astype(int) - expected) > 127)
        assert differ < 0.01, (drawing.name, differ)
        deadline = time.monotonic() + 10
        while browser.find_element("id", "digit").text == "?" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert browser.find_element("id", "digit").text != "?", drawing.name


def test_saliency_is_smoothgrad_by_its_definition(checkpoint):
    """The answer's saliency is the mean, over the seeded noisy copies of the 28x28 input,
    of each copy's gradient of the answer's score with respect to its pixels (in [0, 1]),
    each gradient taken alone; and it is smoother than the plain gradient."""
    from viz.app.predictor import SMOOTHGRAD_NOISE, SMOOTHGRAD_SAMPLES
    predictor = DigitPredictor.from_checkpoint(checkpoint)
    answer = predictor.predict(draw_strokes(SEVEN).astype(np.float32) / np.float32(255))
    saliency = np.array(answer["saliency"])
    image = np.array(answer["input"], np.float64) / 255  # the 28x28 input the model saw, in [0, 1]
    model = load_trained_model(checkpoint).model.double()
    mean, std = predictor.mean_std
    noise = np.random.default_rng(0).normal(0.0, SMOOTHGRAD_NOISE, (SMOOTHGRAD_SAMPLES, 28, 28))

    def gradient(pixels: np.ndarray) -> np.ndarray:
        x = Tensor((pixels[None, None] - mean) / std, requires_grad=True, dtype=np.float64)
        model(x)[0, answer["digit"]].backward()
        return x.grad[0, 0] / std

    copies = (image + noise.astype(np.float32)).astype(np.float32).astype(np.float64)
    expected = np.mean([gradient(c) for c in copies], axis=0)
    np.testing.assert_allclose(saliency, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())
    plain = gradient(image)

    def roughness(m: np.ndarray) -> float:  # neighbour differences against the map's size
        return float((np.abs(np.diff(m, axis=0)).sum() + np.abs(np.diff(m, axis=1)).sum()) / np.abs(m).sum())
    assert roughness(saliency) < 0.9 * roughness(plain), (roughness(saliency), roughness(plain))  # 0.85 here, 0.72 trained
    assert "rbf_distances" not in answer


def test_the_1998_model_answers_with_its_rbf_distances(tmp_path):
    path = tmp_path / "c1998.npz"
    make_checkpoint(path, "lenet5_1998")
    answer = DigitPredictor.from_checkpoint(path).predict(draw_strokes(FOUR).astype(np.float32) / np.float32(255))
    distances = np.array(answer["rbf_distances"])
    assert distances.shape == (10,) and (distances >= 0).all() and int(distances.argmin()) == answer["digit"]
