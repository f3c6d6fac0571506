"""Test setup: Hypothesis profiles and the rule that a missing tool fails in CI."""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

IN_CI = bool(os.environ.get("CI"))

# "ci": derandomized and bounded, so every CI run tests the same examples.
settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("dev", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if IN_CI else "dev"))


def require_tool(program: str, install_hint: str) -> str:
    """Path of `program`; skip the test on a user's machine without it, fail in CI."""
    path = shutil.which(program)
    require(path is not None, f"'{program}' is not installed ({install_hint})")
    return path


def require_module(name: str, install_hint: str):
    """The module `name`, imported; skip the test on a user's machine without it, fail in CI."""
    require(importlib.util.find_spec(name) is not None, f"{name} is not installed ({install_hint})")
    return importlib.import_module(name)


def require(available: bool, message: str) -> None:
    """Skip the test on a user's machine when something optional is missing; fail in CI."""
    if available:
        return
    if IN_CI:
        pytest.fail(message + "; .ci/run must provide it", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def real_mnist_dir() -> str:
    """The directory of the real MNIST files, from $TINYGRAD_LENET_DATA (CI sets it)."""
    path = os.environ.get("TINYGRAD_LENET_DATA", "")
    require(bool(path) and os.path.isdir(path),
            "real MNIST needed: set TINYGRAD_LENET_DATA to a directory with the IDX files")
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI no test may be skipped: a skip there means a missing install step."""
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        print(f"\nCI: {len(skipped)} test(s) were skipped; in CI every test must run")
        session.exitstatus = 1
