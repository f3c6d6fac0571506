"""Models from anywhere: a registered name (`lenet5`), `package.module:attr`, or
`path/to/file.py:attr`, where `attr` is an `nn.Module` subclass or a function
returning a module. What a script's `--model` takes and a checkpoint records.

A model file is imported as a module of its own (its directory is not added to
sys.path); its SHA-256 is recorded so a later load can say when it has changed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tinygrad_lenet import Tensor, no_grad
from tinygrad_lenet.nn import Module

from .registry import MODELS


class ModelSpecError(ValueError):
    """A --model that cannot be built: names what was given and what is wrong."""


def is_file_spec(spec: str) -> bool:
    return ":" in spec and spec.rsplit(":", 1)[0].endswith(".py")


def file_sha256(spec: str) -> str | None:
    """SHA-256 of the file of a `path/to/file.py:attr` spec (None for other specs)."""
    if not is_file_spec(spec):
        return None
    path = Path(spec.rsplit(":", 1)[0])
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise ModelSpecError(f"--model {spec}: cannot read {path}: {e.strerror or e}") from None


def check_spec(spec: Any) -> str:
    """What kind of spec `spec` is, "registered", "module" or "file", checked before
    anything is imported: a ModelSpecError names what is malformed (a relative or
    hidden module path, an attribute that is not a Python name, ...)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"--model must be a non-empty string, got {spec!r}")
    if ":" not in spec:
        if spec in MODELS:
            return "registered"
        raise ModelSpecError(f"--model {spec}: not a registered model ({', '.join(sorted(MODELS))}), and not "
                             "package.module:attr or path/to/file.py:attr")
    where, attr = spec.rsplit(":", 1)
    if not attr.isidentifier():
        raise ModelSpecError(f"--model {spec}: {attr!r} is not a Python name (the part after ':' names a class "
                             "or function)")
    if where.endswith(".py"):
        if "\0" in where:
            raise ModelSpecError(f"--model {spec}: the file name holds a NUL character")
        return "file"
    if where.startswith(".") and all(part.isidentifier() for part in where.lstrip(".").split(".")):
        raise ModelSpecError(f"--model {spec}: {where!r} is a relative module path; give package.module "
                             "(absolute) or path/to/file.py")
    if not all(part.isidentifier() for part in where.split(".")):
        raise ModelSpecError(f"--model {spec}: {where!r} is neither a module path (package.module, Python names "
                             "joined by dots) nor a .py file")
    return "module"


def names_code(spec: str) -> bool:
    """Whether building `spec` imports code (a module or file) rather than taking a
    registered builder."""
    return check_spec(spec) != "registered"


def resolve_builder(spec: str) -> Callable[..., Any]:
    """The class or function `spec` names (see the module docstring)."""
    kind = check_spec(spec)
    if kind == "registered":
        return MODELS[spec]
    where, attr = spec.rsplit(":", 1)
    module = _import_file(spec, Path(where)) if kind == "file" else _import_module(spec, where)
    try:
        builder = getattr(module, attr)
    except AttributeError:
        public = sorted(n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
                        and getattr(v, "__module__", None) == module.__name__)
        raise ModelSpecError(f"--model {spec}: {where} has no attribute {attr!r}"
                             + (f"; it defines: {', '.join(public)}" if public else "")) from None
    if inspect.isclass(builder) and not issubclass(builder, Module):
        raise ModelSpecError(f"--model {spec}: {attr} is a class but not an nn.Module subclass")
    if not callable(builder):
        raise ModelSpecError(f"--model {spec}: {attr} is a {type(builder).__name__}, not an nn.Module subclass "
                             "or a function returning a module")
    return builder


def build_model(spec: str, model_args: dict[str, Any] | None = None, mean_std: tuple[float, float] | None = None,
                num_classes: int | None = None) -> Module:
    """Build the model `spec` names with `model_args`. A builder that takes
    `input_mean`/`input_std` (as lenet5_1998 does) gets the data's normalization, and
    one that takes `num_classes` gets the data's class count, unless model_args set them."""
    builder = resolve_builder(spec)
    kwargs = dict(model_args or {})
    accepted = _parameters(builder)
    if mean_std is not None:
        for key, value in zip(("input_mean", "input_std"), mean_std):
            if key in accepted and key not in kwargs:
                kwargs[key] = float(value)
    if num_classes is not None and "num_classes" in accepted and "num_classes" not in kwargs:
        kwargs["num_classes"] = int(num_classes)
    try:
        model = builder(**kwargs)
    except TypeError as e:
        raise ModelSpecError(f"--model {spec}: cannot build it with {_describe(kwargs)}: {e}") from None
    if not isinstance(model, Module):
        raise ModelSpecError(f"--model {spec}: returned a {type(model).__name__}, not an nn.Module")
    return model


def check_output_size(model: Module, spec: str, image_shape: tuple[int, int], num_classes: int) -> None:
    """A ModelSpecError unless `model` maps a batch of (1, H, W) images to (N, num_classes) scores."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            out = model(Tensor(np.zeros((2, 1, *image_shape), dtype=np.float32)))
    except Exception as e:  # a model that cannot run at all: name it, whatever it raised
        raise ModelSpecError(f"--model {spec}: fails on a batch of (2, 1, {image_shape[0]}, {image_shape[1]}) "
                             f"images: {type(e).__name__}: {e}") from None
    finally:
        model.train(was_training)
    shape = getattr(out, "shape", None)
    if shape != (2, num_classes):
        raise ModelSpecError(f"--model {spec}: outputs shape {shape} for a batch of 2 images, but the data set "
                             f"has {num_classes} classes: expected (2, {num_classes})"
                             + (" (pass --model-arg num_classes=...)" if "num_classes" not in
                                _parameters(resolve_builder(spec)) else ""))


def accepts_argument(spec: str, name: str) -> bool:
    """Whether the builder `spec` names takes an argument `name` (e.g. num_classes)."""
    return name in _parameters(resolve_builder(spec))


def _parameters(builder: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(builder).parameters)
    except (TypeError, ValueError):
        return set()


def _describe(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "no arguments"


def _import_module(spec: str, name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise ModelSpecError(f"--model {spec}: cannot import {name}: {e}") from None
    except SyntaxError as e:
        raise ModelSpecError(f"--model {spec}: syntax error in {e.filename} line {e.lineno}: {e.msg}") from None


def _import_file(spec: str, path: Path) -> Any:
    if not path.is_file():
        raise ModelSpecError(f"--model {spec}: no such file: {path}")
    resolved = path.resolve()
    name = "tinygrad_lenet_user_model_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise ModelSpecError(f"--model {spec}: cannot import {path} as Python")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # dataclasses and pickling-free introspection look modules up by name
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[name]
        raise ModelSpecError(f"--model {spec}: syntax error in {path} line {e.lineno}: {e.msg}") from None
    except Exception as e:  # the user's file raised while being imported: say so, with what it raised
        del sys.modules[name]
        raise ModelSpecError(f"--model {spec}: importing {path} raised {type(e).__name__}: {e}") from None
    return module
