"""Short, readable node labels: `conv2d stride=1 pad=2`, `(6, 1, 5, 5) float32`.

Attributes that have no short form (random generators, index arrays) are left
out rather than printed as long reprs.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from .graph import OpNode, TensorNode

ATTR_ALIASES = {"padding": "pad", "kernel_size": "k"}
PAIR_ATTRS = {"stride", "padding", "kernel_size"}  # (1, 1) is drawn as 1
MAX_ATTR_CHARS = 32
MAX_OPS_LISTED = 6


def fmt_number(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return f"{float(v):.4g}"


def fmt_shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def short_value(v: Any) -> str | None:
    """A compact text for an attribute value, or None when it has no short form."""
    if isinstance(v, (bool, int, float, np.bool_, np.integer, np.floating)):
        text = fmt_number(v)
    elif isinstance(v, str):
        text = v
    elif isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        text = str(np.dtype(v))
    elif isinstance(v, slice):
        parts = ["" if p is None else short_value(p) for p in (v.start, v.stop, v.step)]
        if any(p is None for p in parts):
            return None
        text = ":".join(parts[:2] if v.step is None else parts)  # type: ignore[arg-type]
    elif v is Ellipsis:
        text = "..."
    elif v is None:
        text = "None"
    elif isinstance(v, np.ndarray) and v.ndim == 0:
        return short_value(v.item())
    elif isinstance(v, (tuple, list)):
        items = [short_value(x) for x in v]
        if any(x is None for x in items):
            return None
        text = "(" + ",".join(items) + ("," if len(items) == 1 else "") + ")"  # type: ignore[arg-type]
    else:
        return None
    return text if len(text) <= MAX_ATTR_CHARS else None


def attr_items(op: str, attrs: dict[str, Any]) -> list[str]:
    """`key=value` texts for the readable attributes of one op."""
    items = []
    for key, value in attrs.items():
        if key == "stride" and op.endswith("pool2d") and value == attrs.get("kernel_size"):
            continue  # the default: stride equal to the window
        if key == "keepdims":
            if value:
                items.append("keepdims")
            continue
        if value is None:
            continue
        if key in PAIR_ATTRS and isinstance(value, tuple) and len(set(value)) == 1:
            value = value[0]
        text = short_value(value)
        if text is not None:
            items.append(f"{ATTR_ALIASES.get(key, key)}={text}")
    return items


def op_label(op: OpNode) -> str:
    return " ".join([op.op] + attr_items(op.op, op.attrs))


def group_label(module: str, ops: list[OpNode]) -> str:
    """The module name, then its op (with attributes) or its list of op names."""
    if len(ops) == 1:
        return f"{module}\n{op_label(ops[0])}"
    runs: list[list[Any]] = []
    for op in ops:
        if runs and runs[-1][0] == op.op:
            runs[-1][1] += 1
        else:
            runs.append([op.op, 1])
    names = [name if n == 1 else f"{name} x{n}" for name, n in runs]
    if len(names) > MAX_OPS_LISTED:
        names = names[:MAX_OPS_LISTED - 1] + [f"... +{len(ops) - sum(n for _, n in runs[:MAX_OPS_LISTED - 1])} ops"]
    lines = [", ".join(names[i:i + 3]) for i in range(0, len(names), 3)]
    return "\n".join([module] + lines)


def grad_text(grad: np.ndarray) -> str:
    if grad.size == 1:
        return f"grad {fmt_number(grad.item())}"
    return f"grad {fmt_shape(grad.shape)} norm={fmt_number(np.linalg.norm(grad))}"


def tensor_label(t: TensorNode, show_grads: bool) -> str:
    """Name (or role), shape and dtype; the value of one-element tensors; the
    gradient when asked for and kept."""
    if t.kind == "constant":
        return fmt_number(t.value)
    if t.kind == "saved":
        data = np.asarray(t.tensor.data)
        what = "mask kept for backward\n(0 or 1: where the forward passed)" if np.isin(data, (0, 1)).all() \
            else "value kept for backward"
        return f"{what}\n{fmt_shape(t.shape)} {t.dtype}"
    lines = []
    title = t.name or (t.kind if t.kind in ("input", "output", "parameter") else None)
    if title:
        lines.append(title)
    lines.append(f"{fmt_shape(t.shape)} {t.dtype}")
    if t.value is not None:
        lines.append(f"value {fmt_number(t.value)}")
    if show_grads and t.grad is not None:
        lines.append(grad_text(t.grad))
    return "\n".join(lines)


def module_namer(layer_names: Mapping[str, str]) -> Callable[[str], str]:
    """Module path -> its label: "C1 · features.0" where the model names it (see
    `viz.layer_names_of`), also inside "<module> (backward)"."""
    def named(module: str) -> str:
        path, _, rest = module.partition(" ")
        return f"{layer_names[path]} · {path}" + (f" {rest}" if rest else "") if path in layer_names else module
    return named
