"""Run a script as its user does: `run_main` calls its `main(argv)` inside the test
process (no interpreter start-up per case), `run_script` runs `python scripts/NAME.py`
in a fresh interpreter; both capture the exit code, standard output and error."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import subprocess
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
        sys.modules[spec.name] = module  # as an import would: dataclasses look their module up by name
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


def run_script(name: str, *args: object, cwd: Path = ROOT, check: bool = True, timeout: float = 300,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`python scripts/<name>.py ARGS` (name with or without .py) in a fresh interpreter, run
    from `cwd`, warnings as errors; with `check`, a non-zero exit fails showing the output."""
    script = ROOT / "scripts" / (name if name.endswith(".py") else f"{name}.py")
    environment = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "PYTHONWARNINGS": "error", **(env or {})}
    proc = subprocess.run([sys.executable, str(script), *map(str, args)], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{script.name} {' '.join(map(str, args))} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc
