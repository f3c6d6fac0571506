"""Meta-test: every op registered in `OPS` has a gradient property test and a
second-derivative (gradgradcheck) property test in `test_ops_grad.py`, and each of
those tests really records its op."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_ops_grad import GRAD_CASES, SECOND_ORDER_OPS, recorded_ops

from tinygrad_lenet import OPS, Function, Tensor

TESTS_DIR = Path(__file__).resolve().parent

# The ops the core issue requires; all must be registered (so the check below is never vacuous).
REQUIRED_OPS = set(
    "add sub mul div pow neg exp log sqrt relu tanh sigmoid maximum minimum cast sum mean max logsumexp "
    "reshape permute broadcast_to pad getitem concatenate stack matmul conv2d max_pool2d avg_pool2d "
    "log_softmax softmax cross_entropy nll_loss mse_loss dropout".split())


def defined_in_tests(cls: type) -> bool:
    """True for op classes written by tests (e.g. deliberately wrong ones in gradcheck tests)."""
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return file is not None and TESTS_DIR in Path(file).resolve().parents


def package_ops(registry: Mapping[str, type] = OPS) -> set[str]:
    return {name for name, cls in registry.items() if not defined_in_tests(cls)}


def untested_ops(registry: Mapping[str, type] = OPS, cases: Mapping[str, object] = GRAD_CASES) -> list[str]:
    return sorted(package_ops(registry) - set(cases))


def test_required_ops_are_registered() -> None:
    assert REQUIRED_OPS - package_ops() == set()


def test_every_registered_op_has_a_gradient_property_test() -> None:
    assert untested_ops() == [], "ops without a @grad_case property test in test_ops_grad.py"


def test_every_registered_op_has_a_second_derivative_property_test() -> None:
    assert untested_ops(cases=dict.fromkeys(SECOND_ORDER_OPS)) == [], "ops without gradgradcheck in test_ops_grad.py"
    assert {"conv2d_input_grad", "conv2d_weight_grad", "max_pool2d_grad", "avg_pool2d_grad", "getitem_grad"} <= set(OPS)


def test_no_gradient_case_for_an_unregistered_op() -> None:
    assert set(GRAD_CASES) - set(OPS) == set()


@pytest.fixture
def probe_ops() -> Iterator[tuple[type, type]]:
    """One op that looks like part of the package and one defined by a test; unregistered afterwards."""

    class PackageProbe(Function):
        __module__ = "tinygrad_lenet.ops.probe"  # as if the package had grown a new op
        name = "coverage_probe_package"

    class TestProbe(Function):
        name = "coverage_probe_test"

    try:
        yield PackageProbe, TestProbe
    finally:
        OPS.pop(PackageProbe.name, None)
        OPS.pop(TestProbe.name, None)


def test_a_new_package_op_without_a_test_is_reported(probe_ops) -> None:
    assert untested_ops() == ["coverage_probe_package"]
    assert "coverage_probe_test" in OPS and "coverage_probe_test" not in package_ops()
    assert untested_ops(cases={**GRAD_CASES, "coverage_probe_package": None}) == []


def test_recorded_ops_lists_exactly_the_ops_in_the_graph() -> None:
    x = Tensor([1.0, 2.0], requires_grad=True)
    assert recorded_ops((x.exp() * 2).sum()) == {"exp", "mul", "sum"}
    assert recorded_ops(x.log()) == {"log"}
    assert recorded_ops(x) == set()


@pytest.mark.parametrize("op", sorted(GRAD_CASES))
@settings(max_examples=10)
@given(data=st.data())
def test_each_gradient_case_records_its_op(op: str, data: st.DataObject) -> None:
    case = data.draw(GRAD_CASES[op], label=op)
    assert case.inputs, "a gradient case must differentiate with respect to at least one input"
    assert op in recorded_ops(case.fn(*case.tensors(np.float64)))


def test_the_ops_package_exports_exactly_the_registered_ops() -> None:
    """One home for an op's identity: its class registers it, and the package's exports
    follow from the registry; each registered class is importable from `ops`."""
    from tinygrad_lenet import ops
    registered = {cls.__name__: cls for name, cls in OPS.items() if name in package_ops()}
    assert sorted(registered) == ops.__all__
    assert all(getattr(ops, name) is cls for name, cls in registered.items())
    assert len({cls.name for cls in registered.values()}) == len(registered)  # one name per class


def test_ops_keep_what_backward_needs_through_the_context_s_methods() -> None:
    """No op sets attributes on its context: arrays go through save_for_backward, other
    values through remember (so the context's own fields are the engine's alone)."""
    import re
    sources = sorted((TESTS_DIR.parent / "tinygrad_lenet").rglob("*.py")) + sorted((TESTS_DIR.parent / "models").rglob("*.py"))
    offenders = [f"{p.name}:{i}" for p in sources for i, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"\bctx\.\w+ = ", line) and p.name != "autograd.py"]
    assert offenders == []
