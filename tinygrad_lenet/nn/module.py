"""`Module`: the base class of layers and models, with PyTorch's conventions.

Assigning a `Parameter` or a `Module` to an attribute registers it (in
assignment order), which gives `parameters()`, `named_parameters()`
(`features.0.weight`), `state_dict()` and `load_state_dict()`.

Graph annotation: the first call of a module that has no name yet makes it a
root. The root names itself "" and every descendant by its `named_modules()`
path (`features.0`), and names each Parameter by its `named_parameters()` path
(`Parameter.name`). Each named (non-root) module then runs `forward` inside
`autograd.module_scope(name)`, so the ops it records carry `Context.module`;
ops recorded directly in the root's forward carry no module. Names are
refreshed on the next root call whenever any module's structure has changed.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import numpy as np

from ..autograd import enter_module, exit_module
from ..hooks import RemovableHandle, add_hook
from ..runtime import compute_scope
from ..tensor import Tensor, check_dtype
from ..torch_names import Device, is_device
from .parameter import Parameter

# Bumped whenever a module, parameter or buffer is (un)registered anywhere, so
# roots know to refresh their descendants' names on their next call.
_structure_version = 0


def _structure_changed() -> None:
    global _structure_version
    _structure_version += 1


class StateDictError(RuntimeError):
    """`load_state_dict` found missing keys, unexpected keys or shape mismatches;
    `problems` lists them, `summary()` says them in one line (for command lines)."""

    def __init__(self, message: str, problems: Sequence[str] = ()):
        super().__init__(message)
        self.problems = [p.strip() for p in problems]

    def summary(self, limit: int = 3) -> str:
        """The problems in one line: missing and unexpected keys counted, a few of each named."""
        groups: dict[str, list[str]] = {}
        for p in self.problems:
            kind, _, key = p.partition(": ") if p.startswith(("missing key: ", "unexpected key: ")) else ("", "", p)
            groups.setdefault(kind, []).append(key)
        parts = []
        for kind, items in groups.items():
            more = f"{', ' if kind else '; '}... ({len(items) - limit} more)" if len(items) > limit else ""
            shown = (", " if kind else "; ").join(items[:limit]) + more
            parts.append(f"{len(items)} {kind}{'s' if len(items) > 1 else ''} ({shown})" if kind else shown)
        return "; ".join(parts) or str(self)


class IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


class Module:
    """Base class of every layer and model: subclasses call `super().__init__()`,
    assign their parameters and submodules, and define `forward`."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_qualname", None)
        object.__setattr__(self, "_names_version", -1)
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})

    # ------------------------------------------------------------ registration
    def __setattr__(self, name: str, value: Any) -> None:
        registries = self.__dict__.get("_parameters")
        if registries is None:
            raise AttributeError(f"{type(self).__name__}: cannot assign attribute '{name}' before "
                                 "Module.__init__() is called (call super().__init__() first)")
        if isinstance(value, Parameter):
            self._unregister(name, keep=self._parameters)
            self._parameters[name] = value
            _structure_changed()
        elif isinstance(value, Module):
            self._unregister(name, keep=self._modules)
            self._modules[name] = value
            _structure_changed()
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} as parameter "
                                f"'{name}' (a Parameter or None is expected)")
            self._parameters[name] = None
            _structure_changed()
        elif name in self._modules:
            if value is not None:
                raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} as child module "
                                f"'{name}' (a Module or None is expected)")
            self._modules[name] = None
            _structure_changed()
        elif name in self._buffers:
            value = _as_buffer(value, type(self).__name__, name)
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        if self._unregister(name):
            _structure_changed()
        object.__delattr__(self, name)

    def _unregister(self, name: str, keep: dict | None = None) -> bool:
        """Remove `name` from every registry but `keep`: re-registering a name in the
        same registry keeps its place in the order (as in PyTorch), so parameter
        indices (optimizer state, checkpoints) do not depend on reassignments."""
        found = False
        for registry in (self._parameters, self._modules, self._buffers):
            if name in registry and registry is not keep:
                del registry[name]
                found = True
        self._non_persistent_buffers.discard(name)
        return found

    def _check_new_name(self, name: str, what: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{type(self).__name__}: {what} name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and not any(name in r for r in (self._parameters, self._modules, self._buffers)):
            raise KeyError(f"{type(self).__name__}: attribute '{name}' already exists and is not a {what}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` (or a None placeholder, e.g. an absent bias) as `name`."""
        self._check_new_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}: cannot register {type(param).__name__} as parameter "
                            f"'{name}' (a Parameter or None is expected)")
        self._unregister(name, keep=self._parameters)
        self._parameters[name] = param
        _structure_changed()
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register `module` as the child `name`."""
        self._check_new_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}: {type(module).__name__} is not a Module (child '{name}')")
        self._unregister(name, keep=self._modules)
        self._modules[name] = module
        _structure_changed()
        object.__setattr__(self, name, module)

    register_module = add_module

    def register_buffer(self, name: str, tensor: Tensor | np.ndarray | None, persistent: bool = True) -> None:
        """Register non-learnable state (e.g. running statistics); persistent buffers
        are part of `state_dict()`."""
        self._check_new_name(name, "buffer")
        value = _as_buffer(tensor, type(self).__name__, name)
        self._unregister(name, keep=self._buffers)
        self._buffers[name] = value
        if not persistent:
            self._non_persistent_buffers.add(name)
        _structure_changed()
        object.__setattr__(self, name, value)

    # --------------------------------------------------------------- traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module and all descendants (each once), depth-first in registration order."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items() if m is not None]  # noqa: SLF001
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        """This module and every descendant, depth first."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, module) of each direct child, in registration order."""
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator["Module"]:
        """Each direct child, in registration order."""
        for _, m in self.named_children():
            yield m

    def _named_members(self, registry: str, prefix: str, recurse: bool) -> Iterator[tuple[str, Tensor]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_name}.{name}" if mod_name else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(qualified name, parameter) pairs such as ("features.0.weight", ...), each parameter once."""
        return self._named_members("_parameters", prefix, recurse)  # type: ignore[return-value]

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter of this module (and of its descendants with `recurse`), each once."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """(path, tensor) of every buffer (BatchNorm's running statistics, say)."""
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer of this module (and of its descendants with `recurse`)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call `fn` on every descendant, then on this module (e.g. for custom init)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # -------------------------------------------------------------- modes/grads
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (affects e.g. Dropout) here and in every descendant."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off, BatchNorm's running statistics used); returns the module."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Drop every parameter's gradient (sets `.grad` to None)."""
        for p in self.parameters():
            p.grad = None

    def to(self, *targets: Any, **named: Any) -> "Module":
        """Convert every floating-point parameter and buffer to a dtype (float32 or
        float64) in place; gradients are dropped. Convert before building an optimizer.
        A device (PyTorch's `model.to(device)`) must be the CPU, and changes nothing."""
        wanted = [t for t in (*targets, *named.values()) if t is not None and not isinstance(t, bool)]
        for target in [t for t in wanted if is_device(t)]:
            Device(target)  # refuses a device other than the CPU, by name
        dtypes = [t for t in wanted if not is_device(t)]
        if not dtypes:
            return self
        dtype = dtypes[0]
        dt = check_dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"Module.to: only float32 or float64 are allowed, got {dt}")
        for t in list(self.parameters()) + list(self.buffers()):
            if t.dtype.kind == "f" and t.dtype != dt:
                t.data = t.data.astype(dt)
                t.grad = None
        return self

    def cpu(self) -> "Module":
        """The module itself: everything runs on the CPU (PyTorch programs call it)."""
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set requires_grad on every parameter (False freezes the module)."""
        for p in self.parameters():
            p.requires_grad = bool(requires_grad)
        return self

    def float(self) -> "Module":
        """Every parameter and floating-point buffer cast to float32, in place; returns the module."""
        return self.to(np.float32)

    def double(self) -> "Module":
        """Every parameter and floating-point buffer cast to float64 (gradient checks); returns the module."""
        return self.to(np.float64)

    # ------------------------------------------------------------- state dicts
    def _state_tensors(self) -> "OrderedDict[str, Tensor]":
        out: OrderedDict[str, Tensor] = OrderedDict()
        for mod_name, module in self.named_modules():
            for registry, skip in ((module._parameters, ()), (module._buffers, module._non_persistent_buffers)):  # noqa: SLF001
                for name, t in registry.items():
                    if t is not None and name not in skip:
                        out[f"{mod_name}.{name}" if mod_name else name] = t
        return out

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Qualified name -> copy of the array, for every parameter and persistent buffer."""
        return OrderedDict((k, t.data.copy()) for k, t in self._state_tensors().items())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy arrays into the parameters and buffers in place, converting to each
        one's dtype. Shape mismatches always raise; with `strict`, missing and
        unexpected keys raise too. Every problem is listed in one StateDictError,
        and nothing is modified unless the whole load succeeds."""
        own = self._state_tensors()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems: list[str] = []
        values: dict[str, np.ndarray] = {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            raw = state_dict[key]
            value = raw.data if isinstance(raw, Tensor) else np.asarray(raw)
            if value.dtype.kind not in "fiub":
                problems.append(f"  {key}: expected a numeric array, got dtype {value.dtype}")
            elif value.shape != target.shape:
                problems.append(f"  size mismatch for {key}: expected shape {target.shape}, "
                                f"got {value.shape} from state_dict")
            else:
                values[key] = value
        if strict:
            problems[:0] = ([f"  missing key: {k}" for k in missing]
                            + [f"  unexpected key: {k}" for k in unexpected])
        if problems:
            raise StateDictError(f"error(s) loading state_dict into {type(self).__name__} "
                                 f"({len(problems)} problem(s)):\n" + "\n".join(problems), problems)
        for key, value in values.items():
            np.copyto(own[key].data, value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------ calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The module's computation on its inputs; call the module (`module(x)`), which runs hooks
        and names the recorded ops, rather than `forward` itself."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self._qualname
        run = self._run_with_hooks if self._forward_pre_hooks or self._forward_hooks else self.forward
        if not name:  # None (never called) or "" (a root)
            if name is None or self._names_version != _structure_version:
                self._assign_names()
            with compute_scope():
                return run(*args, **kwargs)
        enter_module(name)
        try:
            return run(*args, **kwargs)
        finally:
            exit_module()

    def _run_with_hooks(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    # -------------------------------------------------------------------- hooks
    def has_forward_hooks(self) -> bool:
        """Whether forward hooks or forward pre-hooks are registered on this module."""
        return bool(self._forward_pre_hooks or self._forward_hooks)

    def qualified_name(self) -> str | None:
        """This module's path from the root it last ran under ("features.0"; "" for the
        root; None before it ran), the name its recorded ops carry."""
        return self._qualname

    def register_forward_pre_hook(self, hook: Callable[["Module", tuple], Any]) -> RemovableHandle:
        """Call `hook(module, args)` before every forward; a returned value (a tuple, or
        one value) replaces the positional arguments. Returns a handle with `.remove()`."""
        return add_hook(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook: Callable[["Module", tuple, Any], Any]) -> RemovableHandle:
        """Call `hook(module, args, output)` after every forward; a returned value replaces
        the output. Returns a handle with `.remove()`."""
        return add_hook(self._forward_hooks, hook)

    def _assign_names(self) -> None:
        """Make this module a root: name descendants and parameters by their paths."""
        for name, m in self.named_modules():
            object.__setattr__(m, "_qualname", name)
        for name, p in self.named_parameters():
            p.name = name
        object.__setattr__(self, "_names_version", _structure_version)

    # --------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """Hyperparameters shown inside this module's repr, e.g. `1, 6, kernel_size=(5, 5)`."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines.extend(extra.split("\n"))
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not lines:
            return f"{type(self).__name__}()"
        if len(lines) == 1 and not self._modules:
            return f"{type(self).__name__}({lines[0]})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _as_buffer(value: Any, owner: str, name: str) -> Tensor | None:
    if value is None or isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return Tensor(value, dtype=value.dtype)
    raise TypeError(f"{owner}: cannot assign {type(value).__name__} as buffer '{name}' "
                    "(a Tensor, numpy array or None is expected)")
