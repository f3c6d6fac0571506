"""docs/tour.ipynb runs top to bottom against a real Jupyter kernel (nbclient), so it
never goes stale; the repository keeps it without outputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import require, require_tool

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tour.ipynb"


def test_the_tour_is_stored_without_outputs():
    require(importlib.util.find_spec("nbformat") is not None, "nbformat is not installed (pip install -e '.[dev]')")
    import nbformat
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 5 and all(not c.outputs and c.execution_count is None for c in code)


def test_the_tour_runs(real_mnist_dir, tmp_path, monkeypatch):
    for module in ("nbclient", "nbformat", "ipykernel"):
        require(importlib.util.find_spec(module) is not None, f"{module} is not installed (pip install -e '.[dev]')")
    require_tool("dot", "apt-get install graphviz")
    import nbformat
    from nbclient import NotebookClient
    monkeypatch.setenv("TINYGRAD_LENET_DATA", real_mnist_dir)
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # run where Jupyter runs it: in the notebook's folder, docs/ (it writes nothing there)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("test accuracy after 300 steps" in o.get("text", "") for o in outputs)
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    svgs = [o for o in outputs if "image/svg+xml" in o.get("data", {})]
    assert len(images) >= 2 and svgs  # the curves, the maps and saliency, the graph
