"""Containers: `Sequential` runs its children one after another; `ModuleList` and
`ModuleDict` hold children for a forward the user writes (their parameters count as
the model's, as in PyTorch)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterable, Iterator, Mapping, overload

from .fusion import fused_pair
from .module import Module


class Sequential(Module):
    """`Sequential(m0, m1, ...)` names its children "0", "1", ...;
    `Sequential(OrderedDict(name=module, ...))` keeps the given names."""

    def __init__(self, *modules: Module | "OrderedDict[str, Module]"):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                self.add_module(str(i), m)

    @overload
    def __getitem__(self, index: int) -> Module: ...

    @overload
    def __getitem__(self, index: slice) -> "Sequential": ...

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not -len(items) <= index < len(items):
            raise IndexError(f"Sequential: index {index} is out of range for {len(items)} modules")
        return items[index][1]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        """Add `module` at the end; returns the container."""
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x: Any) -> Any:
        """Each child on the previous one's output; a pair that a rule of `nn.fusion`
        covers runs as its fused op (the same values and gradients)."""
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            fused = fused_pair(modules[i], modules[i + 1]) if i + 1 < len(modules) else None
            if fused is None:
                x = modules[i](x)
                i += 1
            else:
                x = fused(x)
                i += 2
        return x


class ModuleList(Module):
    """A list of modules, registered as children "0", "1", ... (PyTorch's ModuleList)."""

    def __init__(self, modules: Iterable[Module] = ()):
        super().__init__()
        self.extend(modules)

    def __getitem__(self, index: int) -> Module:
        items = list(self._modules.values())
        if not -len(items) <= index < len(items):
            raise IndexError(f"ModuleList: index {index} is out of range for {len(items)} modules")
        return items[index]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(list(self._modules)[index], module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self, module: Module) -> "ModuleList":
        """Add `module` at the end; returns the list."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        """Add every module of `modules` at the end; returns the list."""
        for m in modules:
            self.append(m)
        return self


class ModuleDict(Module):
    """Modules by name, registered as children under those names (PyTorch's ModuleDict)."""

    def __init__(self, modules: Mapping[str, Module] | None = None):
        super().__init__()
        for name, m in (modules or {}).items():
            self.add_module(name, m)

    def __getitem__(self, name: str) -> Module:
        try:
            return self._modules[name]
        except KeyError:
            raise KeyError(f"ModuleDict: no module {name!r} (has {', '.join(self._modules) or 'none'})") from None

    def __setitem__(self, name: str, module: Module) -> None:
        self.add_module(name, module)

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def keys(self) -> Iterable[str]:
        """The names, in insertion order."""
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        """The modules, in insertion order."""
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        """(name, module) pairs, in insertion order."""
        return self._modules.items()
