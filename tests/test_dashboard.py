"""The live training dashboard: train.py --dashboard serves a page and a JSON state on
127.0.0.1 that change while training runs; checked through the endpoint and in real
headless Chromium (which skips on a user's machine without it and fails in CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import require_tool
from test_digit_app import browser, request, stop, wait_for_line  # noqa: F401  (browser is a fixture)

from tinygrad_lenet.data import write_fake_dataset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def training(tmp_path):
    """train.py --dashboard 0 on a synthetic data set, long enough to watch; yields its URL."""
    require_tool("dot", "apt-get install graphviz")
    write_fake_dataset(tmp_path / "data", n_train=4000, n_test=100)
    log = tmp_path / "out.txt"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), "--dataset", str(tmp_path / "data"),
                                 "--epochs", "60", "--batch-size", "32", "--lr", "0.01", "--no-progress",
                                 "--out", str(tmp_path / "run"), "--dashboard", "0"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield wait_for_line(log, r"dashboard: (http://127\.0\.0\.1:\d+/)", proc, timeout=60).group(1)
    finally:
        stop(proc)


def state(url: str) -> dict:
    with urllib.request.urlopen(url + "state", timeout=10) as response:
        return json.loads(response.read())


def test_the_state_endpoint_follows_the_training(training):
    url = training
    deadline = time.monotonic() + 60
    first = state(url)
    while (first["step"] < 40 or not first["layers"]) and time.monotonic() < deadline:
        time.sleep(0.2)
        first = state(url)
    later = state(url)
    while later["step"] <= first["step"] + 20 and time.monotonic() < deadline:
        time.sleep(0.2)
        later = state(url)
    assert later["step"] > first["step"] and len(later["points"]) > len(first["points"]) >= 2
    point = later["points"][-1]
    assert set(point) == {"step", "loss", "accuracy", "lr", "images_per_s"} and point["images_per_s"] > 0
    names = [layer["name"] for layer in later["layers"]]
    assert names == ["features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                     "classifier.1.weight", "classifier.1.bias", "classifier.3.weight", "classifier.3.bias",
                     "classifier.5.weight", "classifier.5.bias"]
    assert all(layer["grad_norm"] is not None and sum(layer["histogram"]["counts"]) > 0 for layer in later["layers"])
    assert later["has_graph"] and later["title"].startswith("lenet5 on ")
    status, headers, body = request(url + "graph.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and b"features.0" in body
    status, _, body = request(url + "state", b"{}")
    assert status == 405 and json.loads(body)["error"] == "this server only answers GET"


def test_the_page_updates_in_chromium(training, browser):  # noqa: F811
    url = training
    browser.call("POST", "/url", dict(url=url))
    deadline = time.monotonic() + 60

    def shown_step() -> int:
        return int(browser.execute("return document.getElementById('status').dataset.step || '-1'"))

    first = shown_step()
    while first < 40 and time.monotonic() < deadline:
        time.sleep(0.3)
        first = shown_step()
    later = first
    while later <= first and time.monotonic() < deadline:
        time.sleep(0.3)
        later = shown_step()
    assert first >= 40 and later > first, (first, later)
    painted = browser.execute("""
        const c = document.getElementById('loss');
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
        return n;""")
    assert painted > 100
    assert browser.execute("return document.querySelectorAll('#layers tbody tr').length") == 10
    assert browser.execute("return document.querySelectorAll('#histograms canvas').length") == 10
    deadline = time.monotonic() + 10
    while not browser.execute("const g = document.getElementById('graph'); return g.complete && g.naturalWidth > 0") \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert browser.execute("return document.getElementById('graph').naturalWidth") > 100
    # styled, as a person sees it: the page's Content-Security-Policy lets its own stylesheet apply
    style = browser.execute("""
        const body = getComputedStyle(document.body), row = getComputedStyle(document.querySelector('.row'));
        return [body.fontFamily, row.display, document.styleSheets.length];""")
    assert "Helvetica" in style[0] and style[1] == "flex" and style[2] == 1, style
