"""Test setup: Hypothesis profiles and the rule that a missing tool fails in CI."""

from __future__ import annotations

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
    if path is None:
        message = f"'{program}' is not installed ({install_hint})"
        if IN_CI:
            pytest.fail(message + "; .ci/run must install it", pytrace=False)
        pytest.skip(message)
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
