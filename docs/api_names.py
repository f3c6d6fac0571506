"""The public names of tinygrad_lenet and their PyTorch counterparts, for the API reference.

- `public_api()`: every public function, class, method and property the package defines
  (the tests check that each has a docstring and appears in the built reference).
- `counterparts()`: our name -> PyTorch's, by one rule per module (a Tensor method
  is `torch.Tensor`'s of the same name, `functional` is `torch.nn.functional` or
  `torch`, the layers are `torch.nn`, ...), keeping only names the installed PyTorch
  has. Committed as `pytorch_counterparts.json` (the docs build without PyTorch); the
  tests regenerate it with PyTorch installed and compare: `python docs/api_names.py`
  writes it again.
- `PyTorchCounterparts`: a griffe extension (mkdocs.yml) that ends each docstring in
  the reference with its counterpart. Where the semantics differ, the docstring says so.
- `DefinedHereOnly`: a griffe extension that documents each name once, in its module.
- `InheritedDocstrings`: an overriding method shows the docstring of the one it overrides.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
from pathlib import Path
from typing import Any

try:
    import griffe
    Extension: Any = griffe.Extension
except ImportError:  # without the docs extra, public_api and counterparts still work (the tests use them)
    Extension = object

COUNTERPARTS = Path(__file__).with_name("pytorch_counterparts.json")

# our module -> the PyTorch namespaces its names are looked up in, in order
NAMESPACES = {
    "tinygrad_lenet": ["torch"],
    "tinygrad_lenet.tensor": ["torch", "torch.autograd"],
    "tinygrad_lenet.autograd": ["torch", "torch.autograd"],
    "tinygrad_lenet.functional": ["torch.nn.functional", "torch"],
    "tinygrad_lenet.nn.module": ["torch.nn"],
    "tinygrad_lenet.nn.parameter": ["torch.nn"],
    "tinygrad_lenet.nn.layers": ["torch.nn"],
    "tinygrad_lenet.nn.container": ["torch.nn"],
    "tinygrad_lenet.nn.loss": ["torch.nn"],
    "tinygrad_lenet.nn.init": ["torch.nn.init"],
    "tinygrad_lenet.nn.utils": ["torch.nn.utils"],
    "tinygrad_lenet.optim.optimizer": ["torch.optim"],
    "tinygrad_lenet.optim.sgd": ["torch.optim"],
    "tinygrad_lenet.optim.adam": ["torch.optim"],
    "tinygrad_lenet.optim.adadelta": ["torch.optim"],
    "tinygrad_lenet.optim.rmsprop": ["torch.optim"],
    "tinygrad_lenet.optim.lr_scheduler": ["torch.optim.lr_scheduler"],
    "tinygrad_lenet.hooks": ["torch.utils.hooks"],
    "tinygrad_lenet.gradcheck": ["torch.autograd.gradcheck"],
    "tinygrad_lenet.data.loader": ["torch.utils.data"],
    "tinygrad_lenet.data.dataset": ["torch.utils.data"],
    "tinygrad_lenet.data_parallel": ["torch.nn"],
    "tinygrad_lenet.distributed": ["torch.distributed", "torch.nn.parallel", "torch.utils.data.distributed"],
    "tinygrad_lenet.random": ["torch"],
    "tinygrad_lenet.torch_names": ["torch"],
}


def public_api() -> list[tuple[str, Any, type | None]]:
    """(qualified name, object, owning class or None) of every public function, class,
    method and property the package defines: modules and names without a leading
    underscore, each where it is defined (not where it is re-exported)."""
    import tinygrad_lenet

    found: list[tuple[str, Any, type | None]] = []
    modules = [("tinygrad_lenet", tinygrad_lenet)]
    for info in pkgutil.walk_packages(tinygrad_lenet.__path__, "tinygrad_lenet."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            modules.append((info.name, importlib.import_module(info.name)))
    for name, module in modules:
        if module.__name__ != name:  # nn.functional is functional itself
            continue
        for attr, obj in vars(module).items():
            if attr.startswith("_") or getattr(obj, "__module__", None) != name:
                continue
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            found.append((f"{name}.{attr}", obj, None))
            if inspect.isclass(obj):
                found += [(f"{name}.{attr}.{member}", value, obj) for member, value in vars(obj).items()
                          if not member.startswith("_") and (inspect.isfunction(value) or isinstance(
                              value, (property, staticmethod, classmethod)))]
    return found


def docstring(qualname: str, obj: Any, owner: type | None) -> str | None:
    """The docstring; a method without one has the docstring of the method it overrides."""
    if owner is None:
        return inspect.getdoc(obj)
    member = qualname.rsplit(".", 1)[1]
    for cls in owner.__mro__:
        value = vars(cls).get(member)
        value = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
        if value is not None and getattr(value, "__doc__", None):
            return value.__doc__
    return None


def counterparts() -> dict[str, str]:
    """Our qualified name -> PyTorch's, for the names the installed PyTorch has (see the
    module docstring)."""
    out = {}
    for qualname, obj, owner in public_api():
        module = (owner or obj).__module__
        inner = qualname[len(module) + 1:]
        for namespace in NAMESPACES.get(module, []):
            if _runtime(f"{namespace}.{inner}") is not None:
                out[qualname] = f"{namespace}.{inner}"
                break
    return out


class DefinedHereOnly(Extension):
    """Each module's page shows what the module defines: names it imports (`Tensor` in
    most modules, `from __future__ import annotations`) are documented where they are
    defined, not again on every page that imports them."""

    def on_module_members(self, *, mod: Any, **kwargs: Any) -> None:
        for name, member in list(mod.members.items()):
            if member.is_alias or name == "annotations":
                del mod.members[name]


class InheritedDocstrings(Extension):
    """A method that overrides one without a docstring of its own (every layer's `forward`)
    shows the docstring of the method it overrides, as `inspect.getdoc` gives it."""

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        if obj.docstring is not None or not obj.is_function or not obj.parent or not obj.parent.is_class:
            return
        owner = _runtime(obj.parent.path)
        inherited = docstring(obj.path, None, owner) if isinstance(owner, type) else None
        if inherited:
            obj.docstring = griffe.Docstring(inspect.cleandoc(inherited), parent=obj)


def _runtime(path: str) -> Any:
    """The object at a dotted path, imported (None when it cannot be found)."""
    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part, None)
        return obj
    return None


class PyTorchCounterparts(Extension):
    """Ends the docstring of every name that has a PyTorch counterpart with it."""

    def __init__(self) -> None:
        super().__init__()
        self.names = json.loads(COUNTERPARTS.read_text(encoding="utf-8"))

    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        theirs = self.names.get(obj.path)
        if theirs is None:
            return
        line = f"PyTorch: `{theirs}`."
        if obj.docstring is None:
            obj.docstring = griffe.Docstring(line, parent=obj)
        elif line not in obj.docstring.value:
            obj.docstring.value = f"{obj.docstring.value.rstrip()}\n\n{line}"


if __name__ == "__main__":
    names = counterparts()
    COUNTERPARTS.write_text(json.dumps(names, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {COUNTERPARTS}: {len(names)} names with a PyTorch counterpart")
