"""The interactive graph viewer (`viz.explore`, `visualize.py --out graph.html`, `--serve`):
what it records, checked against the engine, and the page as a learner meets it: opened
from disk in headless Chromium at 1200x900, clicked, searched, dragged and stepped
through; served with its Content-Security-Policy; rendered by a notebook through a real
Jupyter kernel; reached from the dashboard."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request

import numpy as np
import pytest
from browser import browser  # noqa: F401  (a fixture)
from conftest import require
from script_runner import ROOT, one_line_error, run_main
from test_digit_app import stop, wait_for_line

import viz
from models import LeNet5, build_model
from tinygrad_lenet import Tensor, manual_seed, nn
from tinygrad_lenet import functional as F
from tinygrad_lenet.autograd import OPS, topological_order
from viz.explore.page import content_security_policy

BN_MODEL = f"{ROOT / 'examples' / 'conv_bn_relu.py'}:ConvBNNet"


def training_loss(model, seed: int = 0) -> Tensor:
    """One batch of four through `model` and cross-entropy, every layer with its own ops."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((4, 1, 28, 28), dtype=np.float32))
    with nn.fusion.unfused():
        loss = F.cross_entropy(model(x), np.array([3, 1, 4, 1]))
    loss.name = "loss"
    return loss


def lenet5() -> LeNet5:
    manual_seed(0)
    return LeNet5()


def engine_order(loss: Tensor) -> list[str]:
    """The keys of the ops in the order the engine applies their rules."""
    graph = viz.build_graph(loss)
    key_of_op = {id(node.tensor.grad_fn): node.producer for node in graph.tensors.values() if node.producer}
    return [key_of_op[id(t.grad_fn)] for t in reversed(topological_order(loss)) if t.grad_fn is not None]


# ------------------------------------------------------------------ what is recorded
def test_the_walk_is_the_engines_order_and_its_gradients_are_the_engines():
    model = lenet5()
    loss = training_loss(model)
    view = viz.explore(loss, model)
    forward = view.data["views"][0]
    assert [s["op"] for s in forward["steps"]] == engine_order(loss)
    assert all(p.grad is None for p in model.parameters())  # explore changes no .grad
    loss.backward()  # the graph is kept: the user's own backward still works
    weight = viz.build_graph(loss).key_of(model.features[0].weight)
    shown = forward["nodes"][weight]["grad"]
    assert shown["shape"] == [6, 1, 5, 5]
    assert shown["norm"] == pytest.approx(float(np.linalg.norm(model.features[0].weight.grad)), rel=1e-6)


def test_what_each_step_sends_adds_up_to_what_the_next_receives():
    """Every tensor's gradient is the sum of what the ops reading it sent: checked on the
    recorded arrays, for every tensor of LeNet-5's graph."""
    from viz.explore.record import record_backward
    model = lenet5()
    record = record_backward(training_loss(model), create_graph=False)
    graph = record.graph
    arriving = {graph.ops[s.op].output: s.received for s in record.steps} | record.leaf_grads
    total: dict[str, np.ndarray] = {}
    for step in record.steps:
        for parent, sent in zip(graph.ops[step.op].inputs, step.sent):
            if sent is not None:
                total[parent] = total.get(parent, 0) + sent
    assert set(total) == set(arriving) - {graph.output}
    for key, value in total.items():
        np.testing.assert_allclose(value, arriving[key], rtol=1e-6, atol=1e-9)


def test_a_rules_recorded_ops_are_listed_and_found_in_the_backward_graph():
    model = lenet5()
    view = viz.explore(training_loss(model), model)
    forward, backward = view.data["views"]
    by_op = {forward["nodes"][s["op"]]["op"]: s for s in forward["steps"]}
    recorded = by_op["tanh"]["recorded"] if "tanh" in by_op else by_op["relu"]["recorded"]
    assert recorded and all(r["label"] for r in recorded)
    assert any(r["key"] in backward["nodes"] for r in recorded)
    assert any(n["kind"] == "backward op" for n in backward["nodes"].values())
    assert backward["nodes"][backward["output"]]["name"] == "d loss / d features.0.weight"
    rule = view.data["rules"]["conv2d"]
    assert f"class {OPS['conv2d'].__name__}(Function)" in rule["source"] and "def backward" in rule["source"]
    assert rule["where"].startswith(f"{OPS['conv2d'].__name__} in tinygrad_lenet/ops/")


def test_without_create_graph_only_the_forward_view_is_recorded():
    model = lenet5()
    view = viz.explore(training_loss(model), model, create_graph=False)
    assert [v["id"] for v in view.data["views"]] == ["forward"]
    assert all(s["recorded"] is None for s in view.data["views"][0]["steps"])


def test_bad_outputs_are_clear_errors():
    x = Tensor(np.ones((2, 3), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match=r"viz.explore: walks the backward pass of a one-element tensor .*\(2, 3\)"):
        viz.explore(x * 2)
    with pytest.raises(ValueError, match="viz.explore: the output has no recorded graph"):
        viz.explore(Tensor(1.0))
    with pytest.raises(TypeError, match="viz.explore: expected a Tensor, got ndarray"):
        viz.explore(np.ones(1))
    model = lenet5()
    with pytest.raises(ValueError, match="viz.explore: wrt .* is not a tensor whose gradient"):
        viz.explore(training_loss(model), model, wrt=Tensor(np.ones(3, np.float32), requires_grad=True))


def test_the_page_needs_nothing_from_outside(tmp_path):
    model = lenet5()
    page = viz.explore(training_loss(model), model).save(tmp_path / "graph.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", page)  # everything inline
    assert page.count("<script") == page.count("</script>") == 3  # no script text ends its element early
    data = json.loads(re.search(r'<script id="graph-data" type="application/json">(.*?)</script>', page, re.S)
                      .group(1).replace("<\\/", "</"))
    assert [v["id"] for v in data["views"]] == ["forward", "backward"]
    policy = content_security_policy(page)
    assert "default-src 'none'" in policy and policy.count("'sha256-") == 3  # two scripts, one style


# ------------------------------------------------------------------ in Chromium
def open_viewer(driver, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def shown(driver) -> int:
    return driver.execute_script("return document.querySelectorAll('#canvas g.node').length")


def by_id(driver, element_id: str):
    from selenium.webdriver.common.by import By
    return driver.find_element(By.ID, element_id)


def click(driver, element) -> None:
    """A real mouse click (pointer events), on the element's centre."""
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(driver, duration=0).move_to_element(element).click().perform()


FITS = """
const canvas = document.getElementById('canvas').getBoundingClientRect();
const graph = document.querySelector('#canvas svg g.graph').getBoundingClientRect();
const page = document.documentElement;
return {scrolls: page.scrollHeight > innerHeight || page.scrollWidth > innerWidth,
        inside: graph.left >= canvas.left - 1 && graph.right <= canvas.right + 1 &&
                graph.top >= canvas.top - 1 && graph.bottom <= canvas.bottom + 1,
        fills: Math.max(graph.width / canvas.width, graph.height / canvas.height)};
"""


@pytest.fixture
def lenet_page(tmp_path):
    model = lenet5()
    loss = training_loss(model)
    path = viz.explore(loss, model).save(tmp_path / "lenet5.html")
    return path, model, loss


def test_the_page_opens_from_disk_fits_the_window_and_steps_through_backward_in_the_engines_order(
        lenet_page, browser):  # noqa: F811
    path, model, loss = lenet_page
    open_viewer(browser, path.as_uri())
    layout = browser.execute_script(FITS)
    assert not layout["scrolls"] and layout["inside"] and layout["fills"] > 0.95, layout
    order = engine_order(loss)
    visited = []
    for _ in order:
        click(browser, by_id(browser, "step-next"))
        op = by_id(browser, "step-label").get_attribute("data-op")
        visited.append(op)
        assert browser.execute_script("return document.querySelector('#canvas g.node.current').id") == f"n-{op}"
    assert visited == order
    details = by_id(browser, "details").text
    assert f"Backward step {len(order)} of {len(order)}" in details and "sends" in details and "def backward" in details
    click(browser, by_id(browser, "step-next"))  # past the last step: stays there
    assert by_id(browser, "step-label").get_attribute("data-op") == order[-1]


def test_clicking_a_node_shows_its_shape_values_gradient_and_rule(lenet_page, browser):  # noqa: F811
    path, model, loss = lenet_page
    graph = viz.build_graph(loss)
    open_viewer(browser, path.as_uri())
    weight = graph.key_of(model.features[0].weight)
    click(browser, by_id(browser, f"n-{weight}"))
    text = by_id(browser, "details").text
    assert "features.0.weight" in text and "(6, 1, 5, 5) float32" in text and "min / max" in text
    assert "gradient (d output / d this)" in text
    assert browser.execute_script("return document.querySelectorAll('#details svg.histogram').length") == 2
    conv_out = next(n.key for n in graph.tensors.values()  # the first conv's output: its maps drawn as pictures
                    if n.producer and graph.ops[n.producer].inputs[1:2] == (weight,))
    click(browser, by_id(browser, f"n-{conv_out}"))
    assert browser.execute_script("const i = [...document.querySelectorAll('#details img.maps')];"
                                  "return i.length === 2 && i.every(x => x.complete && x.naturalWidth > 100)")
    op = graph.tensors[conv_out].producer
    click(browser, by_id(browser, f"n-{op}"))
    text = by_id(browser, "details").text
    assert "conv2d" in text and "stride" in text and "step " in text
    # the first layer: its rule records a weight gradient and no input gradient
    assert "ops its rule recorded (create_graph=True)" in text and "conv2d_weight_grad" in text
    browser.execute_script("document.querySelector('#details details').open = true")
    assert f"class {OPS['conv2d'].__name__}(Function)" in by_id(browser, "details").text


def test_search_finds_conv2d_and_the_path_to_the_loss_is_highlighted(lenet_page, browser):  # noqa: F811
    from selenium.webdriver.common.keys import Keys
    path, model, loss = lenet_page
    graph = viz.build_graph(loss)
    open_viewer(browser, path.as_uri())
    box = by_id(browser, "search")
    box.send_keys("conv2d")
    found = browser.execute_script("return [...document.querySelectorAll('#results button')].map(b => b.dataset.key)")
    assert found == [k for k, op in graph.ops.items() if op.op == "conv2d"]
    assert browser.execute_script("return document.querySelectorAll('#canvas g.node.match').length") == 2
    box.send_keys(Keys.ENTER)
    assert browser.execute_script("return document.querySelector('#canvas g.node.selected').id") == f"n-{found[0]}"
    assert by_id(browser, "details").text.startswith("conv2d")
    weight = graph.key_of(model.features[0].weight)
    click(browser, by_id(browser, f"n-{weight}"))
    click(browser, by_id(browser, "highlight-path"))
    lit = browser.execute_script("return [...document.querySelectorAll('#canvas g.edge.path')].map(e => e.id)")
    edges = [(i, op.key) for op in graph.ops.values() for i in dict.fromkeys(op.inputs)]
    edges += [(op.key, op.output) for op in graph.ops.values()]
    on_path, grown = {weight}, True
    while grown:
        before = len(on_path)
        on_path |= {v for u, v in edges if u in on_path}
        grown = len(on_path) > before
    assert graph.output in on_path
    assert sorted(lit) == sorted(f"e-{u}-{v}" for u, v in edges if u in on_path and v in on_path)


def test_modules_collapse_and_expand_and_the_mouse_pans_and_zooms(lenet_page, browser):  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains
    path, _, _ = lenet_page
    open_viewer(browser, path.as_uri())
    everything = shown(browser)
    click(browser, by_id(browser, "collapse-all"))
    collapsed = shown(browser)
    assert collapsed < everything / 2
    module = browser.execute_script("return [...document.querySelectorAll('#canvas g.node')].find(g => "
                                    "g.textContent.includes('click to expand')).id")
    click(browser, by_id(browser, module))  # a module box: expanded
    expanded = shown(browser)
    assert collapsed < expanded < everything
    label = browser.execute_script("return document.querySelector('#canvas g.cluster text')")
    click(browser, label)  # its dashed frame: collapsed again
    assert shown(browser) == collapsed
    click(browser, by_id(browser, "expand-all"))
    assert shown(browser) == everything

    view_box = "return document.querySelector('#canvas svg').getAttribute('viewBox').split(' ').map(Number)"
    before = browser.execute_script(view_box)
    canvas = by_id(browser, "canvas")
    ActionChains(browser, duration=50).move_to_element_with_offset(canvas, -300, 0).click_and_hold() \
        .move_by_offset(120, 60).release().perform()
    panned = browser.execute_script(view_box)
    assert panned[0] < before[0] and panned[1] < before[1] and panned[2:] == pytest.approx(before[2:])
    browser.execute_script("document.getElementById('canvas').dispatchEvent(new WheelEvent('wheel', "
                           "{deltaY: -300, clientX: 300, clientY: 300, bubbles: true, cancelable: true}))")
    assert browser.execute_script(view_box)[2] < panned[2]  # zoomed in
    click(browser, by_id(browser, "fit"))
    assert browser.execute_script(FITS)["inside"]


@pytest.mark.parametrize("model", ["lenet5", BN_MODEL])
def test_one_command_gives_both_graphs_and_the_batchnorm_backward_graph_fits_at_op_level(
        model, tmp_path, real_mnist_dir, browser):  # noqa: F811
    out = tmp_path / "graph.html"
    code, stdout, stderr = run_main("visualize", "--model", model, "--out", out, "--data-dir", real_mnist_dir)
    assert code == 0 and f"wrote the graph viewer to {out}" in stdout, stderr
    open_viewer(browser, out.as_uri())
    forward = shown(browser)
    assert forward > 20
    click(browser, by_id(browser, "view-backward"))
    assert "Graph of d loss / d features.0.weight" in by_id(browser, "details").text
    click(browser, by_id(browser, "expand-all"))  # every op of the backward pass
    total = int(re.search(r"of (\d+)", by_id(browser, "count").text).group(1))
    assert shown(browser) == total > forward
    layout = browser.execute_script(FITS)
    assert not layout["scrolls"] and layout["inside"], layout
    assert browser.execute_script("return [...document.querySelectorAll('#canvas g.node')]"
                                  ".some(g => g.textContent.includes('kept for backward'))")
    if model == BN_MODEL:  # a large graph opens collapsed: the viewer decides from its size
        click(browser, by_id(browser, "view-forward"))
        click(browser, by_id(browser, "view-backward"))
        assert shown(browser) < total / 2


def test_a_step_links_to_the_ops_its_rule_recorded(tmp_path, browser):  # noqa: F811
    manual_seed(0)
    model = build_model(BN_MODEL, {})
    loss = training_loss(model)
    path = viz.explore(loss, model).save(tmp_path / "bn.html")
    open_viewer(browser, path.as_uri())
    order = engine_order(loss)
    graph = viz.build_graph(loss)
    target = next(i for i, k in enumerate(order) if graph.ops[k].op == "batch_norm")
    for _ in range(target + 1):
        click(browser, by_id(browser, "step-next"))
    assert "ops its rule recorded (create_graph=True)" in by_id(browser, "details").text
    links = browser.execute_script("return [...document.querySelectorAll('#details li a')].filter(a => "
                                   "a.textContent.includes('→'))")
    assert len(links) >= 5  # batch norm's backward is several ops
    links[-1].click()
    assert "active" in by_id(browser, "view-backward").get_attribute("class")
    selected = browser.execute_script("return document.querySelector('#canvas g.node.selected')")
    assert selected is not None


def test_the_served_viewer_runs_under_its_content_security_policy(tmp_path, browser):  # noqa: F811
    log = tmp_path / "out.txt"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONUNBUFFERED="1", PYTHONWARNINGS="error")
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "visualize.py"), "--serve", "0"],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = wait_for_line(log, r"the graph viewer is at (http://127\.0\.0\.1:\d+/)", proc, timeout=60).group(1)
        with urllib.request.urlopen(url, timeout=10) as response:
            policy = response.headers["Content-Security-Policy"]
        assert policy.startswith("default-src 'none'; script-src 'sha256-") and "'unsafe-inline'" not in policy
        open_viewer(browser, url)  # a blocked script or style would be a console error
        assert shown(browser) > 20
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C
        assert proc.wait(timeout=10) == 0
    finally:
        stop(proc)


def test_visualize_refuses_static_only_options_for_the_viewer(tmp_path):
    code, _, err = run_main("visualize", "--out", tmp_path / "g.html", "--grads")
    assert code == 2 and "--grads: for the static drawings" in one_line_error("visualize", err)
    code, _, err = run_main("visualize", "--serve", "0", "--out", tmp_path / "g.html")
    assert code == 2 and "--serve shows the viewer in a browser; --out writes a file" in err
    code, _, err = run_main("visualize", "--format", "html", "--out", tmp_path / "g.svg")
    assert code == 2 and "--format html writes the viewer: give --out a .html name" in err
    code, _, err = run_main("visualize", "--format", "svg", "--out", tmp_path / "g.html")
    assert code == 2 and "--format svg does not match the suffix of --out" in err


def test_a_notebook_shows_the_viewer_inline(tmp_path, browser):  # noqa: F811
    for module in ("nbclient", "nbformat", "ipykernel"):
        require(importlib.util.find_spec(module) is not None, f"{module} is not installed (pip install -e '.[dev]')")
    import nbformat
    from nbclient import NotebookClient
    from selenium.webdriver.support.ui import WebDriverWait
    code = ("import numpy as np\nimport viz\nfrom models import LeNet5\nfrom tinygrad_lenet import Tensor\n"
            "from tinygrad_lenet import functional as F\n"
            "model = LeNet5()\nx = Tensor(np.random.default_rng(0).standard_normal((4, 1, 28, 28), dtype=np.float32))\n"
            "loss = F.cross_entropy(model(x), np.array([3, 1, 4, 1]))\nviz.explore(loss, model)")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    (output,) = nb.cells[0].outputs
    assert output.output_type == "execute_result", output
    html = output.data["text/html"]
    assert html.startswith("<iframe srcdoc=")
    page = tmp_path / "notebook_output.html"
    assert html.isascii()  # the same in a host page of any encoding
    # a host page that does not say its encoding, as some exported notebooks: Chromium guesses
    page.write_bytes(f"<!doctype html><html><body>{html}</body></html>".encode("ascii"))
    browser.get(page.as_uri())
    frame = browser.find_element("tag name", "iframe")
    assert frame.size["height"] >= 700 and frame.size["width"] > 1000

    def frame_ready(driver) -> bool:  # entered afresh each time: the frame may still hold about:blank
        driver.switch_to.default_content()
        driver.switch_to.frame(frame)
        return driver.execute_script("return document.body.dataset.ready === 'true'")
    WebDriverWait(browser, 60).until(frame_ready)
    assert shown(browser) > 20


def test_names_are_shown_as_text_never_run_as_markup(tmp_path, browser):  # noqa: F811
    hostile = '</script><img src=x onerror="document.title=\'owned\'">"\\ \n{x}'
    w = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    w.name = hostile
    loss = (w * 3).sum()
    path = viz.explore(loss, title=hostile).save(tmp_path / "hostile.html")
    open_viewer(browser, path.as_uri())
    key = viz.build_graph(loss).key_of(w)
    click(browser, by_id(browser, f"n-{key}"))
    assert browser.title == " ".join(hostile.split())  # the title element's text, whitespace collapsed
    assert hostile.split("\n")[0] in by_id(browser, "details").text
    assert browser.execute_script("return document.querySelectorAll('img:not(.maps)').length") == 0
