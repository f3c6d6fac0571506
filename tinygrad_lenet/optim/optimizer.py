"""`Optimizer`: parameter groups, per-parameter state and its (de)serialisation.

Updates happen in place on `param.data` with numpy ufuncs (`out=`), reusing
per-parameter scratch arrays, so a float32 model stays float32 and a step
allocates nothing after the first one.

`state_dict()` holds only numpy arrays, Python scalars, strings and lists:
    {"state": {"0": {"momentum_buffer": ndarray, ...}, ...},   # by parameter index
     "param_groups": [{"lr": 0.1, ..., "params": [0, 1, ...]}, ...]}
so `tinygrad_lenet.checkpoint` can store it without pickle.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ..autograd import enable_grad
from ..tensor import Tensor
from ..validation import same_kind

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: subclasses pass their hyperparameter defaults and implement
    `_update(param, grad, group, state)` for one parameter."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        # Keyed by the parameter itself: Tensor hashes by identity (object.__hash__),
        # so lookups never fall back to Tensor's elementwise __eq__.
        self.state: dict[Tensor, dict[str, Any]] = {}
        self._scratch: dict[Tensor, list[np.ndarray]] = {}
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, "
                            "got a single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyperparameters (missing ones take the defaults)."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group must be a dict with a 'params' entry")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimize Tensors, but parameter {i} is {type(p).__name__}")
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: parameter {i} has dtype {p.dtype}; only float tensors can be optimized")
            if not p.is_leaf:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) is not a leaf tensor")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {i} (shape {p.shape}) appears in more than one place")
            seen.add(id(p))
        new = {**self.defaults, **{k: _plain(v) for k, v in group.items() if k != "params"}, "params": params}
        self._validate(new)
        self.param_groups.append(new)

    def _validate(self, group: dict[str, Any]) -> None:
        """Raise ValueError for hyperparameters out of range (subclasses extend)."""
        lr = group.get("lr")
        if not isinstance(lr, (int, float)) or not lr >= 0:  # NaN is refused too
            raise ValueError(f"{type(self).__name__}: invalid learning rate {lr!r} (must be a number >= 0)")
        wd = group.get("weight_decay", 0.0)
        if not wd >= 0:
            raise ValueError(f"{type(self).__name__}: invalid weight_decay {wd} (must be >= 0)")

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (or zero it in place with set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.fill(0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient; `closure` (optional)
        re-evaluates the model and returns the loss, which is returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data if isinstance(p.grad, Tensor) else p.grad  # a Tensor after backward(create_graph=True)
                if grad.shape != p.data.shape or grad.dtype != p.data.dtype:
                    raise ValueError(f"{type(self).__name__}: gradient of shape {grad.shape} ({grad.dtype}) "
                                     f"does not match parameter {p.name or ''} of shape {p.shape} ({p.dtype})")
                self._update(p, grad, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define _update()")

    def _scratch_arrays(self, p: Tensor, n: int) -> list[np.ndarray]:
        """`n` reusable arrays shaped and typed like `p.data` (not part of the state)."""
        bufs = self._scratch.get(p)
        if bufs is None or len(bufs) < n or bufs[0].dtype != p.dtype or bufs[0].shape != p.shape:
            bufs = [np.empty_like(p.data) for _ in range(n)]
            self._scratch[p] = bufs
        return bufs

    # ---------------------------------------------------------------- state dict
    def _indexed_params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """Copies of the state (arrays and scalars, keyed by parameter index as a
        string) and the hyperparameters of each group."""
        index = {id(p): i for i, p in enumerate(self._indexed_params())}
        state = {str(index[id(p)]): {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for p, s in self.state.items() if s}
        groups, start = [], 0
        for g in self.param_groups:
            n = len(g["params"])
            groups.append({**{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items() if k != "params"},
                           "params": list(range(start, start + n))})
            start += n
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyperparameters and state saved by `state_dict()` for the same
        parameters in the same order; arrays are copied and cast to each parameter's dtype."""
        name = type(self).__name__
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups'")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the saved state has {len(saved_groups)} parameter groups, "
                             f"this optimizer has {len(self.param_groups)}")
        for i, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
            if not isinstance(saved, Mapping) or not isinstance(saved.get("params"), list):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} is not a dict with a 'params' list")
            # Keys this group lacks (e.g. a scheduler's initial_lr) are taken as they are.
            wrong = [f"{k}={v!r:.40}" for k, v in saved.items() if k != "params" and k in own and not same_kind(own[k], v)]
            if wrong:
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has invalid hyperparameters: "
                                 f"{', '.join(wrong)}")
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(f"{name}.load_state_dict: parameter group {i} has {len(saved['params'])} "
                                 f"parameters in the saved state but {len(own['params'])} here")
        params = self._indexed_params()
        new_state: dict[Tensor, dict[str, Any]] = {}
        problems = []
        if not isinstance(state_dict["state"], Mapping):
            raise ValueError(f"{name}.load_state_dict: 'state' is a {type(state_dict['state']).__name__}, not a dict")
        for key, saved in state_dict["state"].items():
            idx = int(key) if isinstance(key, str) and key.isdigit() else -1
            if not isinstance(saved, Mapping):
                problems.append(f"state {key!r:.20} is not a dict")
                continue
            if not 0 <= idx < len(params):
                problems.append(f"state for parameter {idx}, but there are only {len(params)} parameters")
                continue
            p = params[idx]
            entry = {}
            for k, v in saved.items():
                if isinstance(v, np.ndarray):
                    if v.dtype.kind not in "fiu":
                        problems.append(f"'{k}' of parameter {idx} has dtype {v.dtype}, not a number type")
                        continue
                    if v.shape != p.shape:
                        problems.append(f"'{k}' of parameter {idx} has shape {v.shape}, the parameter has {p.shape}")
                        continue
                    v = v.astype(p.dtype, copy=True)
                entry[k] = v
            new_state[p] = entry
        if problems:
            raise ValueError(f"{name}.load_state_dict: " + "; ".join(problems))
        for saved, own in zip(saved_groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    own[k] = tuple(v) if isinstance(v, list) else v
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(g.items()) if k != "params")
        return "\n".join(lines) + "\n)"


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers, so hyperparameters never turn float32 math into float64."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value
