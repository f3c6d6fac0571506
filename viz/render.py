"""Write a drawn graph to a file: svg/png/pdf through graphviz's `dot` program,
or the DOT source itself. Without `dot`, the DOT source is written instead so
nothing is lost, and the caller is told how to install graphviz."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

import graphviz

from tinygrad_lenet.atomic import atomic_write_bytes

FORMATS = ("svg", "png", "pdf", "dot")
INSTALL_HINT = ("the graphviz 'dot' program is not installed, so the DOT source was written instead; "
                "install it to render images (Debian/Ubuntu: apt-get install graphviz, macOS: "
                "brew install graphviz), then run: dot -T{fmt} {dot_path} -o {out}")


class Saved(NamedTuple):
    path: Path  # the file written
    rendered: bool  # False when only DOT source was written because `dot` is missing
    message: str  # what was written, or how to install graphviz


def infer_format(path: str | os.PathLike, format: str | None = None) -> str:
    """`format` if given, else the output file's suffix; one of FORMATS."""
    fmt = format if format is not None else Path(path).suffix.lstrip(".").lower()
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        given = f"format {format!r}" if format is not None else f"the suffix of {str(path)!r}"
        raise ValueError(f"viz.save_graph: cannot use {given}; choose one of {FORMATS}")
    return fmt


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def save_graph(graph: graphviz.Digraph, path: str | os.PathLike, format: str | None = None) -> Saved:
    """Write `graph` to `path` in `format` (inferred from the suffix when None)."""
    out = Path(path)
    fmt = infer_format(out, format)
    if fmt == "dot":
        _write(out, graph.source.encode())
        return Saved(out, True, f"wrote DOT source to {out}")
    if shutil.which("dot") is None:
        dot_path = out.with_suffix(".dot")
        _write(dot_path, graph.source.encode())
        return Saved(dot_path, False, INSTALL_HINT.format(fmt=fmt, dot_path=dot_path, out=out))
    _write(out, graph.pipe(format=fmt))
    return Saved(out, True, f"wrote {fmt} to {out}")
