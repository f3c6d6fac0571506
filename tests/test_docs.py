"""The documentation cannot rot: the README's and the docs' Python blocks run, each in a
fresh namespace in a temporary directory (with a docs/ folder); every command block is
either one the tests or CI run (`<!-- run by: PATH -->`, PATH naming each script the
block runs) or marked as an excerpt (`<!-- fragment: not run -->`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from browser import browser  # noqa: F401  (a fixture)
from conftest import require

from tinygrad_lenet import OPS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs"))
from api_names import COUNTERPARTS, counterparts, docstring, public_api  # noqa: E402
from speed_tables import MARKED, rendered  # noqa: E402
from speed_tables import PAGES as TABLE_PAGES  # noqa: E402

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


def test_every_public_name_has_a_docstring():
    api = public_api()
    assert len(api) > 700
    missing = [name for name, obj, owner in api if not docstring(name, obj, owner)]
    assert missing == [], f"{len(missing)} public names without a docstring: {missing[:10]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The documentation site, built with warnings as errors (a broken link or reference fails)."""
    import subprocess

    __import__("conftest").require_module("mkdocstrings", "pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_every_public_name_is_in_the_api_reference(site):
    """The site's inventory (objects.inv, what mkdocstrings rendered) holds every public name."""
    import zlib

    raw = (site / "objects.inv").read_bytes().split(b"\n", 4)
    rendered_names = {line.split(" ", 1)[0] for line in zlib.decompress(raw[4]).decode().splitlines()}
    missing = [name for name, _, _ in public_api() if name not in rendered_names]
    assert missing == [], f"{len(missing)} public names missing from the API reference: {missing[:10]}"
    assert (site / "tour" / "index.html").is_file()  # the notebook, rendered


def test_a_newcomer_finds_pad_and_their_own_model_in_the_site(site, browser):  # noqa: F811
    """The site in Chromium, served over HTTP as `mkdocs serve` does: no console error (no
    font or script fetched from elsewhere), the guide one click from the home page, and
    the search finding what `pad` accepts."""
    import functools
    import http.server
    import threading

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass
    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        browser.get(f"http://127.0.0.1:{server.server_address[1]}/")
        browser.find_element(By.LINK_TEXT, "Your own model").click()
        WebDriverWait(browser, 10).until(lambda d: "my_net.py" in d.find_element(By.TAG_NAME, "article").text)
        search = browser.find_element(By.CSS_SELECTOR, "input.md-search__input")
        search.click()
        search.send_keys("pad")
        links = "return [...document.querySelectorAll('.md-search-result__link')].map(a => a.href)"  # one read
        WebDriverWait(browser, 15).until(  # the results are drawn as the index answers: wait for the one wanted
            lambda d: any("api/functional" in href and "pad" in href for href in d.execute_script(links)),
            message="no search result for pad in the functional reference within 15 s")
    finally:
        server.shutdown()
        server.server_close()


def test_the_pytorch_counterparts_are_pytorchs_names():
    """docs/pytorch_counterparts.json (what the reference shows) is what the installed
    PyTorch gives by the rules; regenerate it with `python docs/api_names.py`."""
    __import__("conftest").require_module("torch", "pip install torch==2.13.0")
    committed = json.loads(COUNTERPARTS.read_text(encoding="utf-8"))
    assert committed == counterparts()
    assert committed["tinygrad_lenet.functional.conv2d"] == "torch.nn.functional.conv2d"
    assert committed["tinygrad_lenet.distributed.DistributedDataParallel"] == "torch.nn.parallel.DistributedDataParallel"


@pytest.mark.parametrize("page", TABLE_PAGES, ids=lambda p: p.name)
def test_the_speed_tables_are_the_committed_runs(page):
    """Every marked table in the guides is the rendering of the benchmark JSON committed
    in docs/benchmarks/ (`python docs/speed_tables.py` renders them again)."""
    text = page.read_text(encoding="utf-8")
    assert MARKED.search(text), f"{page.name} has no marked table"
    assert text == rendered(text), f"{page.name}: a table differs from its JSON; run python docs/speed_tables.py"
