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
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from browser import WINDOW, browser, console_errors, screenshot  # noqa: F401  (browser is a fixture)
from conftest import require_tool
from test_digit_app import request, stop, wait_for_line

from tinygrad_lenet.data import write_fake_dataset

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def training_with_dashboard(tmp_path: Path, n_train: int, *args: str) -> Iterator[tuple[Path, Any]]:
    """train.py --dashboard 0 on a synthetic data set, in the background: (its log, the process)."""
    require_tool("dot", "apt-get install graphviz")
    write_fake_dataset(tmp_path / "data", n_train=n_train, n_test=100)
    log = tmp_path / "out.txt"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), "--dataset", str(tmp_path / "data"),
                                 "--lr", "0.01", "--no-progress", "--out", str(tmp_path / "run"), "--dashboard", "0",
                                 *args], cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        yield log, proc
    finally:
        stop(proc)


@pytest.fixture
def training(tmp_path):
    """A run long enough to watch; yields its dashboard's URL."""
    with training_with_dashboard(tmp_path, 4000, "--epochs", "60", "--batch-size", "32") as (log, proc):
        yield wait_for_line(log, r"dashboard: (http://127\.0\.0\.1:\d+/)", proc, timeout=60).group(1)


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


LAYOUT = """
const box = (id) => document.getElementById(id).getBoundingClientRect();
const body = getComputedStyle(document.body), row = getComputedStyle(document.querySelector('.row'));
return {tops: ['loss', 'accuracy', 'lr', 'speed'].map((id) => Math.round(box(id).top)),
        rights: ['loss', 'accuracy', 'lr', 'speed'].map((id) => Math.round(box(id).right)),
        height: document.documentElement.scrollHeight, width: window.innerWidth,
        font: body.fontFamily, display: row.display, sheets: document.styleSheets.length,
        status: document.getElementById('status').textContent,
        state: document.getElementById('status').dataset.status || '',
        step: Number(document.getElementById('status').dataset.step || -1)};
"""

PAINTED = """
const c = document.getElementById(arguments[0]);
const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++;
return n;"""


def wait_until(condition, timeout: float = 60, every: float = 0.3):
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(every)
    return value


def check_looks_right(browser, tmp_path: Path, name: str) -> dict:  # noqa: F811
    """What a person sees at 1200x900: styled (the stylesheet's font, flex rows), the four
    step charts side by side, the page under 3,000 px, every chart painted, axes included."""
    layout = browser.execute_script(LAYOUT)
    assert "Helvetica" in layout["font"] and layout["display"] == "flex", layout
    assert len(set(layout["tops"])) == 1 and max(layout["rights"]) <= layout["width"], layout  # side by side
    assert layout["height"] <= 3000, layout
    for chart in ("loss", "accuracy", "lr", "speed", "epochs"):
        assert browser.execute_script(PAINTED, chart) > 300, chart  # curves, axes and tick labels
    assert browser.execute_script("return document.querySelectorAll('#layers tbody tr').length") == 10
    assert browser.execute_script("return document.querySelectorAll('#histograms canvas').length") == 10
    shot = screenshot(browser, tmp_path / f"{name}.png")
    assert shot.shape[:2] == (WINDOW[1], WINDOW[0]) or shot.shape[1] == WINDOW[0], shot.shape
    top = int(layout["tops"][0])
    for left in (20, 320, 610, 900):  # each chart's area holds ink, not a blank region
        region = shot[top + 10:top + 190, left:left + 250]
        assert (region.min(axis=2) < 200).mean() > 0.005, (name, left)
    return layout


def test_the_page_updates_in_chromium(training, browser, tmp_path):  # noqa: F811
    browser.get(training)
    first = wait_until(lambda: (s := browser.execute_script(LAYOUT)["step"]) >= 40 and s)
    later = wait_until(lambda: (s := browser.execute_script(LAYOUT)["step"]) > first and s)
    assert first and later, (first, later)
    assert wait_until(lambda: browser.execute_script(PAINTED, "epochs") > 300, timeout=90)  # an epoch has ended
    assert wait_until(lambda: browser.execute_script(
        "const g = document.getElementById('graph'); return g.complete && g.naturalWidth > 100"), timeout=10)
    layout = check_looks_right(browser, tmp_path, "dashboard_live")
    assert layout["state"] == "training" and layout["status"].startswith("training: step ")
    assert console_errors(browser) == []


@pytest.fixture
def finished_run(tmp_path):
    """--dashboard-keep: a short run that ends and keeps serving; yields (URL, run directory)."""
    with training_with_dashboard(tmp_path, 1200, "--epochs", "3", "--batch-size", "16", "--dashboard-keep") as (log, proc):
        url = wait_for_line(log, r"dashboard: (http://127\.0\.0\.1:\d+/)", proc, timeout=60).group(1)
        wait_for_line(log, r"dashboard: the run has ended; still serving", proc, timeout=120)
        yield url, tmp_path / "run"


def test_a_finished_run_says_so_and_keeps_serving_and_its_snapshot_opens_without_a_server(
        finished_run, browser, tmp_path):  # noqa: F811
    url, run = finished_run
    final = state(url)
    assert final["status"] == "finished" and final["error"] is None and len(final["epochs"]) == 3
    accuracy = final["epochs"][-1]["test_accuracy"]
    browser.get(url)
    layout = wait_until(lambda: (s := browser.execute_script(LAYOUT))["state"] == "finished" and s, timeout=20)
    assert layout and layout["status"].endswith(f"test accuracy {100 * accuracy:.2f}%"), layout
    check_looks_right(browser, tmp_path, "dashboard_finished")
    time.sleep(2.5)  # still there after the run
    assert state(url)["status"] == "finished"

    follow_the_graph_viewer_link(browser)

    browser.get((run / "dashboard.html").as_uri())  # the run directory's copy: no server at all
    snapshot = browser.execute_script(LAYOUT)
    assert snapshot["state"] == "finished" and snapshot["status"] == layout["status"], snapshot
    assert wait_until(lambda: browser.execute_script(
        "const g = document.getElementById('graph'); return g.complete && g.naturalWidth > 100"), timeout=10)
    check_looks_right(browser, tmp_path, "dashboard_snapshot")
    follow_the_graph_viewer_link(browser)  # graph.html beside it


def follow_the_graph_viewer_link(driver) -> None:
    """The dashboard's link opens the graph viewer of the model being trained."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    link = driver.find_element(By.ID, "graph-viewer")
    assert link.is_displayed()
    link.click()
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    assert driver.execute_script("return document.querySelectorAll('#canvas g.node').length") > 20
    assert console_errors(driver) == []


def test_a_run_that_fails_leaves_a_snapshot_saying_why(tmp_path):
    from script_runner import run_main
    write_fake_dataset(tmp_path / "data", n_train=600, n_test=50)
    code, _, err = run_main("train", "--dataset", tmp_path / "data", "--epochs", "2", "--batch-size", "16",
                            "--lr", "1e30", "--schedule", "none", "--no-progress", "--out", tmp_path / "run")
    assert code == 1 and "try a smaller --lr" in err
    page = (tmp_path / "run" / "dashboard.html").read_text()
    snapshot = json.loads(page.split("window.DASHBOARD_SNAPSHOT = ", 1)[1].split(";\n", 1)[0])
    assert snapshot["status"] == "stopped" and "epoch 1:" in snapshot["error"], snapshot["error"]


def test_dashboard_keep_needs_a_dashboard(tmp_path):
    from script_runner import run_main
    code, _, err = run_main("train", "--dashboard-keep", "--out", tmp_path / "run")
    assert code == 2 and "--dashboard-keep: keeps a served dashboard; give --dashboard too" in err
