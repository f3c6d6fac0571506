"""Graph drawing (`viz`): the DOT output for known graphs, grouping by module,
gradients, highlighted paths, the node limit, rendering and the script."""

from __future__ import annotations

import contextlib
import re
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tool
from hypothesis import given
from hypothesis import strategies as st
from script_runner import run_script

import viz
from tinygrad_lenet import Tensor, nn
from tinygrad_lenet import functional as F
from tinygrad_lenet.autograd import module_scope
from viz.draw import GRAD_EDGE, HIGHLIGHT_COLOR, STYLES
from viz.labels import attr_items

ROOT = Path(__file__).resolve().parents[1]
DOT_HINT = "apt-get install graphviz / brew install graphviz"


# ------------------------------------------------------------------ DOT parsing
@dataclass
class Dot:
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    clusters: dict[str, dict] = field(default_factory=dict)  # name -> {label, parent, nodes}
    graph_attrs: dict[str, str] = field(default_factory=dict)

    def label(self, node: str) -> str:
        return self.nodes[node]["label"]

    def with_shape(self, shape: str) -> list[str]:
        return [n for n, a in self.nodes.items() if a.get("shape") == shape]

    def forward_edges(self) -> list[tuple[str, str]]:
        return [(u, v) for u, v, a in self.edges if a.get("style") != "dashed"]

    def by_label(self, label: str) -> str:
        (node,) = [n for n, a in self.nodes.items() if a["label"] == label]
        return node


_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s\]]+)')


def _attrs(text: str) -> dict[str, str]:
    out = {}
    for key, value in _ATTR.findall(text):
        if value.startswith('"'):
            value = value[1:-1].replace("\\n", "\n").replace('\\"', '"')
        out[key] = value
    return out


def parse_dot(source: str) -> Dot:
    """The nodes, edges and (nested) clusters of DOT written one statement per line."""
    dot = Dot()
    stack: list[str | None] = [None]
    for line in source.splitlines()[1:]:
        line = line.strip()
        if m := re.fullmatch(r"subgraph (\w+) \{", line):
            dot.clusters[m[1]] = {"parent": stack[-1], "nodes": set(), "label": None}
            stack.append(m[1])
        elif line == "}":
            stack.pop()
        elif m := re.fullmatch(r"(\w+) -> (\w+)(?: \[(.*)\])?", line):
            dot.edges.append((m[1], m[2], _attrs(m[3] or "")))
        elif m := re.fullmatch(r"(\w+) \[(.*)\]", line):
            if m[1] == "graph":
                dot.graph_attrs.update(_attrs(m[2]))
            elif m[1] not in ("node", "edge"):
                dot.nodes[m[1]] = _attrs(m[2])
                if stack[-1] is not None:
                    dot.clusters[stack[-1]]["nodes"].add(m[1])
        elif stack[-1] is not None:  # a cluster's attributes
            dot.clusters[stack[-1]]["label"] = _attrs(line).get("label")
        else:
            dot.graph_attrs.update(_attrs(line))
    assert stack == [], "unbalanced braces in DOT source"
    return dot


# ------------------------------------------------------------------ a known graph
@dataclass
class Net:
    x: Tensor
    conv_w: Tensor
    conv_b: Tensor
    fc_w: Tensor
    fc_b: Tensor
    chain: list[Tensor]  # conv out, relu out, pool out, flat, matmul out, add out, loss
    loss: Tensor
    fc_wt: Tensor


def named(t: Tensor, name: str) -> Tensor:
    t.name = name
    return t


def small_net() -> Net:
    """conv (module "conv": conv2d, relu) -> max_pool2d -> reshape -> fc (module
    "fc": permute, matmul, add) -> cross_entropy. 8 ops, 14 tensors."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 1, 8, 8), dtype=np.float32))
    conv_w = named(Tensor(rng.standard_normal((3, 1, 3, 3), dtype=np.float32), requires_grad=True), "conv.weight")
    conv_b = named(Tensor(np.zeros(3, np.float32), requires_grad=True), "conv.bias")
    fc_w = named(Tensor(rng.standard_normal((4, 48), dtype=np.float32), requires_grad=True), "fc.weight")
    fc_b = named(Tensor(np.zeros(4, np.float32), requires_grad=True), "fc.bias")
    with module_scope("conv"):
        c = F.conv2d(x, conv_w, conv_b, padding=1)
        r = c.relu()
    p = r.max_pool2d(2)
    flat = p.reshape(2, -1)
    with module_scope("fc"):
        wt = fc_w.transpose()
        mm = flat @ wt
        out = mm + fc_b
    loss = F.cross_entropy(out, np.array([0, 3]))
    return Net(x, conv_w, conv_b, fc_w, fc_b, [c, r, p, flat, mm, out, loss], loss, wt)


def ids_of(net: Net) -> tuple[dict[int, str], dict[int, str]]:
    """DOT ids at op level: tensor id -> key, and tensor id -> key of its producing op."""
    g = viz.build_graph(net.loss)
    tensors = {id(t.tensor): k for k, t in g.tensors.items()}
    producers = {id(t.tensor): t.producer for t in g.tensors.values() if t.producer}
    return tensors, producers


def path_edges(chain: list[Tensor], net: Net) -> set[tuple[str, str]]:
    """Op-level edges along a chain of tensors, each computed from the previous one."""
    key, producer = ids_of(net)
    edges = set()
    for a, b in zip(chain, chain[1:]):
        edges |= {(key[id(a)], producer[id(b)]), (producer[id(b)], key[id(b)])}
    return edges


# ------------------------------------------------------------------ op level
def test_op_level_has_exactly_the_expected_nodes_and_labels():
    net = small_net()
    dot = parse_dot(viz.draw_graph(net.loss).source)
    ops = dot.with_shape("ellipse")
    assert sorted(dot.label(n) for n in ops) == sorted([
        "conv2d stride=1 pad=1", "relu", "max_pool2d k=2", "reshape shape=(2,48)",
        "permute axes=(1,0)", "matmul", "add", "cross_entropy"])
    tensors = [n for n in dot.nodes if n not in ops]
    assert len(tensors) == 14 and len(dot.nodes) == 22
    labels = Counter(dot.label(n) for n in tensors)
    expected = ["input\n(2, 1, 8, 8) float32", "conv.weight\n(3, 1, 3, 3) float32", "conv.bias\n(3,) float32",
                "fc.weight\n(4, 48) float32", "fc.bias\n(4,) float32", "input\n(2,) int64",
                "(2, 3, 8, 8) float32", "(2, 3, 8, 8) float32", "(2, 3, 4, 4) float32", "(2, 48) float32",
                "(48, 4) float32", "(2, 4) float32", "(2, 4) float32",
                f"output\n() float32\nvalue {net.loss.item():.4g}"]
    assert labels == Counter(expected)
    assert len(dot.forward_edges()) == 13 + 8  # one edge per op input, one per op output
    indegree = Counter(dot.label(v) for u, v in dot.forward_edges() if v in ops)
    assert indegree == {"conv2d stride=1 pad=1": 3, "relu": 1, "max_pool2d k=2": 1, "reshape shape=(2,48)": 1,
                        "permute axes=(1,0)": 1, "matmul": 2, "add": 2, "cross_entropy": 2}
    assert (dot.by_label("conv.weight\n(3, 1, 3, 3) float32"), dot.by_label("conv2d stride=1 pad=1")) \
        in dot.forward_edges()


def test_inputs_parameters_intermediates_and_output_look_different():
    net = small_net()
    dot = parse_dot(viz.draw_graph(net.loss).source)
    look = {n: (a.get("shape"), a.get("style"), a.get("fillcolor"), a.get("peripheries")) for n, a in dot.nodes.items()}
    by_kind = {kind: look[dot.by_label(label)] for kind, label in [
        ("input", "input\n(2, 1, 8, 8) float32"), ("parameter", "fc.bias\n(4,) float32"),
        ("intermediate", "(2, 48) float32"), ("output", dot.label([n for n in dot.nodes if
                                                                  dot.label(n).startswith("output")][0])),
        ("op", "matmul")]}
    assert len(set(by_kind.values())) == len(by_kind)


def test_one_cluster_per_module_holding_its_ops_and_parameters():
    net = small_net()
    dot = parse_dot(viz.draw_graph(net.loss, level="op").source)
    assert sorted(c["label"] for c in dot.clusters.values()) == ["conv", "fc"]
    members = {c["label"]: sorted(dot.label(n) for n in c["nodes"]) for c in dot.clusters.values()}
    assert members["conv"] == sorted(["conv2d stride=1 pad=1", "relu", "conv.weight\n(3, 1, 3, 3) float32",
                                      "conv.bias\n(3,) float32", "(2, 3, 8, 8) float32", "(2, 3, 8, 8) float32"])
    assert members["fc"] == sorted(["permute axes=(1,0)", "matmul", "add", "fc.weight\n(4, 48) float32",
                                    "fc.bias\n(4,) float32", "(48, 4) float32", "(2, 4) float32",
                                    "(2, 4) float32"])
    clustered = set().union(*(c["nodes"] for c in dot.clusters.values()))
    outside = {dot.label(n) for n in dot.nodes if n not in clustered}
    assert {"max_pool2d k=2", "reshape shape=(2,48)", "cross_entropy", "input\n(2, 1, 8, 8) float32"} <= outside


def test_clusters_nest_like_module_names():
    x = Tensor(np.ones((2, 2), np.float32), requires_grad=True)
    with module_scope("block"):
        with module_scope("block.inner"):
            h = x.tanh()
        y = h + x
    dot = parse_dot(viz.draw_graph(y.sum()).source)
    by_label = {c["label"]: name for name, c in dot.clusters.items()}
    assert set(by_label) == {"block", "block.inner"}
    assert dot.clusters[by_label["block.inner"]]["parent"] == by_label["block"]
    assert dot.clusters[by_label["block"]]["parent"] is None


# ------------------------------------------------------------------ module level
def test_module_level_draws_one_node_per_module():
    net = small_net()
    dot = parse_dot(viz.draw_graph(net.loss, level="module").source)
    assert sorted(dot.label(n) for n in dot.with_shape("box3d")) == ["conv\nconv2d, relu", "fc\npermute, matmul, add"]
    assert sorted(dot.label(n) for n in dot.with_shape("ellipse")) == [
        "cross_entropy", "max_pool2d k=2", "reshape shape=(2,48)"]
    assert not dot.clusters
    # tensors computed and used inside one module are hidden: 14 - conv2d out, permuted weight, matmul out
    tensors = [n for n in dot.nodes if dot.nodes[n]["shape"] == "box"]
    assert len(tensors) == 11
    fc = dot.by_label("fc\npermute, matmul, add")
    into_fc = sorted(dot.label(u) for u, v in dot.forward_edges() if v == fc)
    assert into_fc == ["(2, 48) float32", "fc.bias\n(4,) float32", "fc.weight\n(4, 48) float32"]


def test_module_called_twice_with_other_ops_between_gives_two_nodes_and_no_cycle():
    x = Tensor(np.ones((3,), np.float32), requires_grad=True)
    with module_scope("act"):
        h = x.tanh()
    h = h * 2.0
    with module_scope("act"):
        y = h.tanh()
    dot = parse_dot(viz.draw_graph(y.sum(), level="module").source)
    assert [dot.label(n) for n in dot.with_shape("box3d")] == ["act\ntanh", "act\ntanh"]
    assert is_acyclic(dot.forward_edges())


def test_ops_outside_modules_do_not_split_a_module():
    """mul (no module) only feeds the module's second branch; placing it first keeps `m` whole."""
    x = Tensor(np.ones((3,), np.float32), requires_grad=True)
    w = Tensor(np.ones((3,), np.float32), requires_grad=True)
    z = w * 2.0
    with module_scope("m"):
        out = x.relu() + z.tanh()
    dot = parse_dot(viz.draw_graph(out, level="module").source)
    assert [dot.label(n) for n in dot.with_shape("box3d")] == ["m\nrelu, tanh, add"]


def is_acyclic(edges: list[tuple[str, str]]) -> bool:
    nodes = {n for e in edges for n in e}
    indeg = Counter(v for _, v in edges)
    ready = [n for n in nodes if indeg[n] == 0]
    seen = 0
    while ready:
        n = ready.pop()
        seen += 1
        for u, v in edges:
            if u == n:
                indeg[v] -= 1
                if indeg[v] == 0:
                    ready.append(v)
    return seen == len(nodes)


@st.composite
def random_programs(draw):
    """A list of (op, module, input indices): unary/binary ops on earlier values."""
    n = draw(st.integers(1, 25))
    steps = []
    for i in range(n):
        arity = draw(st.sampled_from([1, 2]))
        inputs = [draw(st.integers(0, i)) for _ in range(arity)]  # 0 is the leaf, i+1 is step i's value
        steps.append((arity, draw(st.sampled_from([None, "a", "b", "a.c"])), inputs))
    return steps


@given(random_programs())
def test_module_groups_are_contiguous_runs_of_a_topological_order(steps):
    values = [Tensor(np.ones((2,), np.float32), requires_grad=True)]
    for arity, module, inputs in steps:
        with module_scope(module) if module else contextlib.nullcontext():
            args = [values[i] for i in inputs]
            values.append(args[0].tanh() if arity == 1 else args[0] * args[1])
    out = values[-1]
    graph = viz.build_graph(out)
    groups = viz.group_by_module(graph)
    order = [k for g in groups for k in g.ops]
    assert sorted(order) == sorted(graph.ops)  # every op in exactly one group
    pos = {k: i for i, k in enumerate(order)}
    for op in graph.ops.values():  # topological
        for t in op.inputs:
            if graph.tensors[t].producer:
                assert pos[graph.tensors[t].producer] < pos[op.key]
    for g in groups:
        assert {graph.ops[k].module for k in g.ops} == {g.module}
        assert g.module is not None or len(g.ops) == 1
    for a, b in zip(groups, groups[1:]):
        assert a.module is None or a.module != b.module  # maximal runs
    dot = parse_dot(viz.draw_graph(out, level="module", max_nodes=10_000).source)
    assert len(dot.with_shape("box3d")) == sum(g.module is not None for g in groups)
    assert is_acyclic(dot.forward_edges())


# ------------------------------------------------------------------ gradients
def test_retain_grads_marks_every_computed_tensor():
    net = small_net()
    assert viz.retain_grads(net.loss) == 8
    net.loss.backward()
    for t in net.chain + [net.fc_wt]:
        assert t.grad is not None and t.grad.shape == t.shape


def test_show_grads_labels_gradients_and_draws_backward_edges():
    net = small_net()
    viz.retain_grads(net.loss)
    net.loss.backward()
    dot = parse_dot(viz.draw_graph(net.loss, show_grads=True).source)
    w = dot.by_label("conv.weight\n(3, 1, 3, 3) float32\n"
                     f"grad (3, 1, 3, 3) norm={np.linalg.norm(net.conv_w.grad):.4g}")
    assert float(np.linalg.norm(net.conv_w.grad)) > 0
    for attrs in dot.nodes.values():  # every tensor except the two inputs shows its gradient
        label = attrs["label"]
        if attrs["shape"] == "box":
            assert ("\ngrad " in label) != label.startswith("input"), label
    (output,) = [dot.label(n) for n in dot.nodes if dot.label(n).startswith("output")]
    assert output.endswith("\ngrad 1")
    forward = dot.forward_edges()
    backward = [(u, v) for u, v, a in dot.edges if a.get("style") == GRAD_EDGE["style"]]
    inputs = {n for n in dot.nodes if dot.label(n).startswith("input")}
    assert sorted(backward) == sorted((v, u) for u, v in forward if u not in inputs)
    assert (dot.by_label("conv2d stride=1 pad=1"), w) in backward
    assert "label" not in dot.graph_attrs  # nothing missing, no caption


def test_show_grads_says_when_intermediate_grads_were_not_kept():
    net = small_net()
    net.loss.backward()
    dot = parse_dot(viz.draw_graph(net.loss, show_grads=True).source)
    assert dot.graph_attrs["label"].startswith("8 tensor(s) requiring grad have no kept gradient")
    assert "viz.retain_grads" in dot.graph_attrs["label"]
    without_grad = [n for n in dot.with_shape("box") if "\ngrad " not in dot.label(n)]
    assert len(without_grad) == 8 + 2  # the intermediates and the output, plus the two inputs


def test_micrograd_example_values_and_grads():
    a, b, c = (named(Tensor(v, requires_grad=True), n) for v, n in [(2.0, "a"), (-3.0, "b"), (10.0, "c")])
    d = a * b + c
    viz.retain_grads(d)
    d.backward()
    dot = parse_dot(viz.draw_graph(d, show_grads=True).source)
    labels = {dot.label(n) for n in dot.nodes}
    assert labels == {"a\n() float32\nvalue 2\ngrad -3", "b\n() float32\nvalue -3\ngrad 2",
                      "c\n() float32\nvalue 10\ngrad 1", "() float32\nvalue -6\ngrad 1",
                      "output\n() float32\nvalue 4\ngrad 1", "mul", "add"}


def test_constants_show_their_value():
    x = Tensor(np.ones(3, np.float32), requires_grad=True)
    dot = parse_dot(viz.draw_graph((x * 0.5).sum()).source)
    (const,) = dot.with_shape("plaintext")
    assert dot.label(const) == "0.5"


# ------------------------------------------------------------------ highlight
def test_highlight_marks_exactly_the_path_from_a_parameter():
    net = small_net()
    for param, chain in [(net.fc_b, [net.fc_b, net.chain[5], net.loss]),
                         (net.conv_w, [net.conv_w] + net.chain),
                         (net.fc_w, [net.fc_w, net.fc_wt] + net.chain[4:])]:
        dot = parse_dot(viz.draw_graph(net.loss, highlight=param).source)
        marked = {(u, v) for u, v, a in dot.edges if a.get("color") == HIGHLIGHT_COLOR}
        assert marked == path_edges(chain, net)
        marked_nodes = {n for n, a in dot.nodes.items() if a.get("color") == HIGHLIGHT_COLOR}
        assert marked_nodes == {n for e in marked for n in e}


def test_highlight_at_module_level_and_of_several_tensors():
    net = small_net()
    dot = parse_dot(viz.draw_graph(net.loss, level="module", highlight=net.fc_w).source)
    marked = {(dot.label(u), dot.label(v)) for u, v, a in dot.edges if a.get("color") == HIGHLIGHT_COLOR}
    loss_label = next(dot.label(n) for n in dot.nodes if dot.label(n).startswith("output"))
    assert marked == {("fc.weight\n(4, 48) float32", "fc\npermute, matmul, add"),
                      ("fc\npermute, matmul, add", "(2, 4) float32"), ("(2, 4) float32", "cross_entropy"),
                      ("cross_entropy", loss_label)}
    both = parse_dot(viz.draw_graph(net.loss, highlight=[net.fc_b, net.conv_b]).source)
    marked = {(u, v) for u, v, a in both.edges if a.get("color") == HIGHLIGHT_COLOR}
    assert marked == path_edges([net.fc_b, net.chain[5], net.loss], net) | path_edges([net.conv_b] + net.chain, net)


def test_highlight_of_a_foreign_tensor_is_an_error():
    net = small_net()
    other = named(Tensor(np.ones(2, np.float32), requires_grad=True), "other")
    with pytest.raises(ValueError, match=r"highlight .*'other'.* not a tensor in the graph"):
        viz.draw_graph(net.loss, highlight=other)


# ------------------------------------------------------------------ limits and errors
def test_huge_graph_is_summarized_not_drawn():
    x = named(Tensor(np.float32(1.0), requires_grad=True), "x")
    y = x
    for _ in range(2000):
        y = y * 1.0001
    dot = parse_dot(viz.draw_graph(y).source)
    assert list(dot.nodes) == ["summary"] and not dot.edges
    text = dot.label("summary")
    assert "6001 nodes" in text and "max_nodes=500" in text
    assert "2000 ops" in text and "mul x2000" in text and "4001 tensors" in text
    assert "raise max_nodes" in text


def test_node_limit_is_inclusive_and_suggests_module_level():
    net = small_net()
    assert len(parse_dot(viz.draw_graph(net.loss, max_nodes=22).source).nodes) == 22
    summary = parse_dot(viz.draw_graph(net.loss, max_nodes=21).source)
    assert list(summary.nodes) == ["summary"]
    assert 'level="module" (16 nodes)' in summary.label("summary")
    assert len(parse_dot(viz.draw_graph(net.loss, level="module").source).nodes) == 16


def test_deep_graph_is_walked_without_recursion():
    x = Tensor(np.float32(1.0), requires_grad=True)
    y = x
    for _ in range(5000):
        y = y.tanh()
    graph = viz.build_graph(y)
    assert len(graph.ops) == 5000 and len(graph.tensors) == 5001
    assert viz.retain_grads(y) == 5000


def test_bad_arguments_are_clear_errors():
    net = small_net()
    with pytest.raises(ValueError, match="draw_graph: level must be one of"):
        viz.draw_graph(net.loss, level="layer")
    with pytest.raises(ValueError, match="draw_graph: rankdir"):
        viz.draw_graph(net.loss, rankdir="up")
    with pytest.raises(ValueError, match="draw_graph: max_nodes"):
        viz.draw_graph(net.loss, max_nodes=0)
    with pytest.raises(TypeError, match="draw_graph: expected a Tensor, got ndarray"):
        viz.draw_graph(np.ones(3))


def test_same_computation_gives_the_same_dot():
    assert viz.draw_graph(small_net().loss).source == viz.draw_graph(small_net().loss).source


@pytest.mark.parametrize("op,attrs,expected", [
    ("conv2d", {"stride": (1, 1), "padding": (2, 2)}, ["stride=1", "pad=2"]),
    ("conv2d", {"stride": (1, 2), "padding": (0, 0)}, ["stride=(1,2)", "pad=0"]),
    ("max_pool2d", {"kernel_size": (2, 2), "stride": (2, 2)}, ["k=2"]),
    ("avg_pool2d", {"kernel_size": (3, 3), "stride": (1, 1)}, ["k=3", "stride=1"]),
    ("sum", {"axis": None, "keepdims": False}, []),
    ("sum", {"axis": 1, "keepdims": True}, ["axis=1", "keepdims"]),
    ("reshape", {"shape": (2, 2)}, ["shape=(2,2)"]),
    ("dropout", {"p": 0.5, "generator": np.random.default_rng(0)}, ["p=0.5"]),
    ("getitem", {"index": (slice(None), 0)}, ["index=(:,0)"]),
    ("getitem", {"index": np.arange(40)}, []),
    ("cast", {"dtype": np.dtype(np.float64)}, ["dtype=float64"]),
    ("pow", {"exponent": 2.0}, ["exponent=2"]),
])
def test_attribute_labels_are_short(op, attrs, expected):
    assert attr_items(op, attrs) == expected


# ------------------------------------------------------------------ rendering
@pytest.fixture
def dot_program() -> str:
    return require_tool("dot", DOT_HINT)


def test_render_svg_and_png(dot_program, tmp_path):
    net = small_net()
    graph = viz.draw_graph(net.loss, level="module", legend=True)
    saved = viz.save_graph(graph, tmp_path / "g.svg")
    assert saved.rendered and saved.path == tmp_path / "g.svg"
    root = ET.parse(saved.path).getroot()
    assert root.tag.endswith("svg")
    texts = {el.text for el in root.iter() if el.tag.endswith("text")}
    assert {"fc.weight", "conv", "conv2d, relu", "legend"} <= texts
    png = viz.save_graph(graph, tmp_path / "g.PNG").path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_save_without_dot_writes_dot_source_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    graph = viz.draw_graph(small_net().loss)
    saved = viz.save_graph(graph, tmp_path / "out" / "g.svg")
    assert not saved.rendered and saved.path == tmp_path / "out" / "g.dot"
    assert saved.path.read_text() == graph.source
    assert not (tmp_path / "out" / "g.svg").exists()
    assert "apt-get install graphviz" in saved.message and "brew install graphviz" in saved.message


def test_infer_format():
    assert viz.infer_format("a/b.SVG") == "svg"
    assert viz.infer_format("b.gv") == "dot"
    assert viz.infer_format("b.txt", "dot") == "dot"
    with pytest.raises(ValueError, match="suffix of 'b.txt'"):
        viz.infer_format("b.txt")
    with pytest.raises(ValueError, match="format 'jpg'"):
        viz.infer_format("b.svg", "jpg")


# ------------------------------------------------------------------ real modules and the script
def test_lenet5_graph_with_real_modules():
    from models import get_model

    model = get_model("lenet5")
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 28, 28), dtype=np.float32))
    with nn.fusion.unfused():  # every layer's own ops, relu and max_pool2d apart
        loss = F.cross_entropy(model(x), np.array([1, 7]))
    viz.retain_grads(loss)
    loss.backward()
    modules = [f"features.{i}" for i in range(6)] + [f"classifier.{i}" for i in range(6)]
    dot = parse_dot(viz.draw_graph(loss, level="module", show_grads=True).source)
    assert sorted(dot.label(n).split("\n")[0] for n in dot.with_shape("box3d")) == sorted(modules)
    assert "features.0\nconv2d stride=1 pad=2" in {dot.label(n) for n in dot.with_shape("box3d")}
    params = {dot.label(n).split("\n")[0] for n in dot.nodes if dot.nodes[n].get("fillcolor") ==
              STYLES["parameter"]["fillcolor"]}
    assert params == {name for name, _ in model.named_parameters()}
    assert any(dot.label(n).startswith("features.0.weight\n(6, 1, 5, 5) float32\ngrad (6, 1, 5, 5) norm=")
               for n in dot.nodes)
    op_level = parse_dot(viz.draw_graph(loss).source)
    assert sorted(c["label"] for c in op_level.clusters.values()) == sorted(modules)


def test_a_model_s_own_layer_names_label_its_modules_and_clusters():
    """LeNet-5 declares the paper's names: drawings say "C1 · features.0", not only the path."""
    from models import get_model

    model = get_model("lenet5")
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 28, 28), dtype=np.float32))
    with nn.fusion.unfused():
        loss = F.cross_entropy(model(x), np.array([1, 7]))
    names = viz.layer_names_of(model)
    assert names["features.0"] == "C1" and names["classifier.3"] == "F6" and viz.layer_names_of(object()) == {}
    module_level = parse_dot(viz.draw_graph(loss, level="module", layer_names=names).source)
    tops = {dot_label.split("\n")[0] for dot_label in map(module_level.label, module_level.with_shape("box3d"))}
    assert {"C1 · features.0", "S2 · features.2", "C3 · features.3", "C5 · classifier.1", "output · classifier.5"} <= tops
    op_level = parse_dot(viz.draw_graph(loss, layer_names=names).source)
    assert "S4 · features.5" in {c["label"] for c in op_level.clusters.values()}


def test_a_backward_graph_has_a_legend_and_labels_what_the_forward_kept():
    """The graph of a gradient (create_graph=True): relu's mask is "kept for backward",
    not an unexplained input, and the legend is drawn without being asked."""
    from tinygrad_lenet import grad
    w = Tensor(np.array([[0.5, -1.0], [2.0, 0.3]], np.float32), requires_grad=True)
    x = Tensor(np.array([[1.0, 2.0]], np.float32))
    (g,) = grad(((x @ w).relu() ** 2).sum(), [w], create_graph=True)
    dot = parse_dot(viz.draw_graph(g).source)
    saved = [n for n, a in dot.nodes.items() if a.get("shape") == "note" and not n.startswith("legend_")]
    labels = sorted(dot.label(n) for n in saved)
    assert labels[0] == labels[1] == "mask kept for backward\n(0 or 1: where the forward passed)\n(1, 2) float32"
    assert labels[2] == "value kept for backward\n(2, 1) float32"  # x, transposed, for w's gradient
    assert any(c["label"] == "legend" for c in dot.clusters.values())
    assert "kept for backward" in {dot.label(n) for c in dot.clusters.values() if c["label"] == "legend"
                                   for n in c["nodes"]}
    forward = parse_dot(viz.draw_graph((x @ w).relu().sum()).source)
    assert not any(c["label"] == "legend" for c in forward.clusters.values())  # forward graphs: when asked


def run_visualize(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_script("visualize", "--batch-size", "2", *args, check=False, timeout=120, env=env)


def test_script_writes_svg(dot_program, tmp_path):
    out = tmp_path / "lenet5.svg"
    proc = run_visualize("--model", "lenet5", "--out", str(out), "--level", "module", "--grads")
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    texts = [el.text or "" for el in root.iter() if el.tag.endswith("text")]
    assert "features.0.weight" in texts and any(t.startswith("grad (6, 1, 5, 5) norm=") for t in texts)


def test_script_writes_dot_source(tmp_path):
    out = tmp_path / "lenet5.txt"
    proc = run_visualize("--out", str(out), "--format", "dot")
    assert proc.returncode == 0, proc.stderr
    dot = parse_dot(out.read_text())
    assert len(dot.clusters) == 12 and "features.0.weight\n(6, 1, 5, 5) float32" in {
        dot.label(n) for n in dot.nodes}


def test_script_refuses_a_format_that_contradicts_the_suffix(tmp_path):
    proc = run_visualize("--out", str(tmp_path / "graph.svg"), "--format", "png")
    assert proc.returncode == 2 and "does not match the suffix" in proc.stderr
    assert not (tmp_path / "graph.svg").exists()


def test_script_without_dot_program_writes_dot_and_install_hint(tmp_path):
    env = {"PATH": str(tmp_path)}  # no `dot` here
    out = tmp_path / "lenet5.svg"
    proc = run_visualize("--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert not out.exists()
    assert (tmp_path / "lenet5.dot").read_text().startswith("digraph")
    assert "apt-get install graphviz" in proc.stderr and "brew install graphviz" in proc.stderr


def test_script_rejects_unknown_suffix(tmp_path):
    proc = run_visualize("--out", str(tmp_path / "g.jpg"))
    assert proc.returncode == 2 and "cannot use the suffix" in proc.stderr


@pytest.mark.parametrize("args, message", [
    (["--model", "nope"], "--model nope: not a registered model (lenet5, lenet5_1998)"),
    (["--max-nodes", "0"], "--max-nodes must be at least 1, got 0"),
])
def test_script_bad_arguments_are_argparse_errors(tmp_path, args, message):
    proc = run_visualize("--out", str(tmp_path / "g.dot"), *args)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "g.dot").exists()


# ---------------------------------------------------------------- the backward pass
def test_the_graph_of_a_gradient_shows_the_backward_pass():
    """d loss / d w recorded with create_graph=True: its ops are drawn as backward ops,
    grouped per module as "<module> (backward)", e.g. conv2d_weight_grad."""
    from models import LeNet5
    from tinygrad_lenet import grad, manual_seed

    manual_seed(0)
    model = LeNet5()
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 28, 28), dtype=np.float32))
    loss = F.cross_entropy(model(x), np.array([1, 2]))
    (g,) = grad(loss, [model.features[0].weight], create_graph=True)
    graph = viz.build_graph(g)
    backward_ops = [op for op in graph.ops.values() if op.backward]
    forward_ops = [op for op in graph.ops.values() if not op.backward]
    assert {"conv2d_weight_grad", "conv2d_input_grad", "max_pool2d_grad"} <= {op.op for op in backward_ops}
    assert "conv2d" in {op.op for op in forward_ops} and "conv2d_weight_grad" not in {op.op for op in forward_ops}
    assert {op.module for op in backward_ops} >= {"features.0 (backward)", "features.3 (backward)", "(backward)"}
    assert graph.ops[graph.tensors[graph.output].producer].op == "conv2d_weight_grad"

    dot = parse_dot(viz.draw_graph(g, legend=True).source)
    styled = [n for n, a in dot.nodes.items() if a.get("fillcolor") == STYLES["backward op"]["fillcolor"]]
    labels = {dot.label(n) for n in styled}
    assert any(label.startswith("conv2d_weight_grad") for label in labels) and "backward op" in labels
    module_level = parse_dot(viz.draw_graph(g, level="module").source)
    assert any(dot_label.startswith("features.0 (backward)") for dot_label in
               (module_level.label(n) for n in module_level.nodes))


def test_script_draws_the_backward_pass(tmp_path):
    out = tmp_path / "backward.txt"
    proc = run_visualize("--backward", "--level", "module", "--out", str(out), "--format", "dot")
    assert proc.returncode == 0, proc.stderr
    labels = {parse_dot(out.read_text()).label(n) for n in parse_dot(out.read_text()).nodes}
    assert any(label.startswith("C1 · features.0 (backward)\nconv2d_weight_grad") for label in labels), labels
    masks = sum(label.startswith("mask kept for backward") for label in labels)
    assert masks == 5, labels  # the four ReLUs and the one-hot targets of the loss
    assert "kept for backward" in labels  # the legend, drawn without --legend
    assert any(label.startswith("d loss / d features.0.weight") for label in labels)
    proc = run_visualize("--backward", "--grads", "--out", str(out))
    assert proc.returncode == 2 and "give one" in proc.stderr


def test_curves_read_as_a_person_reads_them():
    """Whole-number epochs, a log loss axis whose ends are labelled ticks, no legend naming
    the run on a single run's learning rate, and label smoothing's floor drawn and explained."""
    import math

    from viz.plots import curves_figure, smoothing_floor
    history = [dict(epoch=e, train_loss=tl, test_loss=vl, train_accuracy=0.9, test_accuracy=0.95, lr=lr)
               for e, tl, vl, lr in [(1, 2.1, 1.4, 0.09), (2, 0.98, 0.31, 0.08), (3, 0.66, 0.24, 0.03), (4, 0.61, 0.23, 0.0)]]
    fig = curves_figure({"lenet5": history}, label_smoothing=0.1, num_classes=10)
    loss, acc, lr = fig.axes
    for ax in fig.axes:
        assert all(float(t).is_integer() for t in ax.get_xticks()), ax.get_xticks()
    low, high = loss.get_ylim()
    ticks = [t for t in loss.get_yticks() if low <= t <= high]
    assert ticks[0] == low <= 0.23 and ticks[-1] == high >= 2.1  # both ends are labelled values
    assert [label.get_text() for label in loss.get_yticklabels() if low <= label.get_position()[1] <= high] == \
        ["0.2", "0.5", "1", "2", "5"]
    assert lr.get_legend() is None
    floor = smoothing_floor(0.1, 10)
    assert floor == pytest.approx(-(0.91 * math.log(0.91) + 9 * 0.01 * math.log(0.01)))
    assert any(line.get_ydata()[0] == floor for line in loss.get_lines())
    assert any("label-smoothed targets" in text.get_text() for text in fig.texts)
    assert smoothing_floor(0.0, 10) == 0.0
    assert curves_figure({"lenet5": history}).texts == []  # no smoothing, no note
