"""The documentation cannot rot: the README's and the docs' Python blocks run, each in a
fresh namespace in a temporary directory (with a docs/ folder); every command block is
either one the tests or CI run (`<!-- run by: PATH -->`, PATH naming each script the
block runs) or marked as an excerpt (`<!-- fragment: not run -->`)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import require

from tinygrad_lenet import OPS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FRAGMENT = "<!-- fragment: not run -->"
RUN_BY = re.compile(r"<!-- run by: (\S+) -->")


def blocks(language: str) -> list[tuple[str, int, str, str]]:
    """(page, line, code, the line before the block) of every ```LANGUAGE block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in re.finditer(rf"```{language}\n(.*?)```", text, re.S):
            before = text[:match.start()].rstrip().splitlines()
            found.append((str(page.relative_to(ROOT)), text[:match.start()].count("\n") + 1, match.group(1),
                          before[-1].strip() if before else ""))
    return found


PYTHON = [(page, line, code) for page, line, code, before in blocks("python") if before != FRAGMENT]
COMMANDS = blocks("bash")


def test_the_docs_have_runnable_blocks():
    assert len(PYTHON) >= 12 and sum(page == "README.md" for page, _, _ in PYTHON) >= 3


@pytest.mark.parametrize("page, line, code", PYTHON, ids=[f"{page}:{line}" for page, line, _ in PYTHON])
def test_python_block_runs(page, line, code, tmp_path, monkeypatch):
    if "load_mnist(" in code:
        require(bool(os.environ.get("TINYGRAD_LENET_DATA")), "real MNIST needed: set TINYGRAD_LENET_DATA")
    if "save_graph(" in code:
        require(shutil.which("dot") is not None, "'dot' is not installed (apt-get install graphviz)")
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path)
    registered = set(OPS)
    try:
        exec(compile(code, f"{page}:{line}", "exec"), {"__name__": f"docs_block_{line}"})
    finally:
        for name in set(OPS) - registered:  # an op a block defines is the page's, not the package's
            del OPS[name]


@pytest.mark.parametrize("page, line, code, before", COMMANDS, ids=[f"{page}:{line}" for page, line, _, _ in COMMANDS])
def test_every_command_block_is_run_by_a_test_or_marked_an_excerpt(page, line, code, before):
    if before == FRAGMENT:
        return
    marker = RUN_BY.fullmatch(before)
    assert marker, f"{page}:{line}: a command block needs <!-- run by: tests/FILE.py --> or {FRAGMENT}"
    runner = ROOT / marker.group(1)
    assert runner.is_file(), f"{page}:{line}: {marker.group(1)} does not exist"
    source = runner.read_text(encoding="utf-8")
    for program in re.findall(r"(?:scripts|examples)/([\w/]+\.py)", code):
        name = Path(program).name
        assert name in source or name.removesuffix(".py") in source, \
            f"{page}:{line}: {marker.group(1)} never runs {program}"
