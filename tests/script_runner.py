"""Run a script's `main(argv)` inside the test process (no interpreter start-up per
case), capturing its exit code, standard output and standard error."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
_MODULES: dict[str, ModuleType] = {}


def script_module(name: str) -> ModuleType:
    """scripts/<name>.py, imported once."""
    if name not in _MODULES:
        spec = importlib.util.spec_from_file_location(f"script_{name}", ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[name] = module
    return _MODULES[name]


def run_main(name: str, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `python scripts/<name>.py ARGS`, run in-process."""
    out, err = io.StringIO(), io.StringIO()
    argv = [str(a) for a in args]
    saved_argv = sys.argv
    sys.argv = [str(ROOT / "scripts" / f"{name}.py"), *argv]  # argparse names the program from it
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = script_module(name).main(argv)
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = saved_argv
    return code, out.getvalue(), err.getvalue()


def one_line_error(name: str, stderr: str) -> str:
    """The error line of a script that failed cleanly: no traceback, the last line
    names the script (argparse's usage lines may come before it)."""
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"{name}.py: error: "), stderr
    return last
