"""Ops that move data around without arithmetic: reshape, permute, broadcast,
pad, indexing, concatenate and stack."""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from ..errors import DimError, ShapeError
from .layout import copy_into, reshaped


class Reshape(Function):
    name = "reshape"

    @staticmethod
    def forward(ctx, x, shape):
        ctx.remember(in_shape=x.shape)
        return reshaped(x, shape)

    @staticmethod
    def backward(ctx, grad):
        shape = ctx.values["in_shape"]
        return reshaped(grad, shape) if isinstance(grad, np.ndarray) else grad.reshape(shape)


class Permute(Function):
    name = "permute"

    @staticmethod
    def forward(ctx, x, axes):
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, grad):
        return Permute.call(grad, axes=tuple(int(a) for a in np.argsort(ctx.attrs["axes"])))


class BroadcastTo(Function):
    name = "broadcast_to"

    @staticmethod
    def forward(ctx, x, shape):
        return np.broadcast_to(x, shape)

    @staticmethod
    def backward(ctx, grad):
        return grad  # the engine sums over the broadcast axes


class Pad(Function):
    """Zero padding; pad_width holds one (before, after) pair per axis. The input is
    copied in by `copy_into`, so a transposed view (a dilated convolution's phases, the
    batch axis moved last) is padded and laid out batch-innermost in one blocked copy."""
    name = "pad"

    @staticmethod
    def forward(ctx, x, pad_width):
        out = np.zeros([n + a + b for n, (a, b) in zip(x.shape, pad_width)], dtype=x.dtype)
        copy_into(out[tuple(slice(a, a + n) for n, (a, _) in zip(x.shape, pad_width))] if x.ndim else out, x)
        return out

    @staticmethod
    def backward(ctx, grad):
        return grad[tuple(slice(a, grad.shape[i] - b) for i, (a, b) in enumerate(ctx.attrs["pad_width"]))]


class GetItem(Function):
    """Basic slicing and integer-array indexing; repeated indices accumulate."""
    name = "getitem"

    @staticmethod
    def forward(ctx, x, index):
        ctx.remember(in_shape=x.shape)
        try:
            return np.asarray(x[index])
        except IndexError as e:
            raise DimError(f"getitem: {e} (tensor shape {x.shape})") from None

    @staticmethod
    def backward(ctx, grad):
        return GetItemGrad.call(grad, index=ctx.attrs["index"], shape=ctx.values["in_shape"])


class GetItemGrad(Function):
    """The gradient of getitem: zeros of the input's `shape` with `grad` added at
    `index` (repeated indices accumulate). Its own gradient is getitem again."""
    name = "getitem_grad"

    @staticmethod
    def forward(ctx, grad, index, shape):
        out = np.zeros(shape, dtype=grad.dtype)
        np.add.at(out, index, grad)
        return out

    @staticmethod
    def backward(ctx, grad):
        return GetItem.call(grad, index=ctx.attrs["index"])


class Flip(Function):
    """Reverse the order of elements along `axes`."""
    name = "flip"

    @staticmethod
    def forward(ctx, x, axes):
        return np.flip(x, axes)

    @staticmethod
    def backward(ctx, grad):
        return Flip.call(grad, axes=ctx.attrs["axes"])


class Concatenate(Function):
    name = "concatenate"

    @staticmethod
    def forward(ctx, *arrays, axis):
        _check_same_rest("concatenate", arrays, axis, concat=True)
        ctx.remember(sizes=[a.shape[axis] for a in arrays])
        return np.concatenate(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        lead = (slice(None),) * ctx.attrs["axis"]
        ends = np.cumsum(ctx.values["sizes"]).tolist()
        return tuple(grad[lead + (slice(end - size, end),)] for end, size in zip(ends, ctx.values["sizes"]))


class Stack(Function):
    name = "stack"

    @staticmethod
    def forward(ctx, *arrays, axis):
        _check_same_rest("stack", arrays, axis, concat=False)
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx, grad):
        axis = ctx.attrs["axis"]
        return tuple(grad[(slice(None),) * axis + (i,)] for i in range(grad.shape[axis]))


def _check_same_rest(op: str, arrays, axis: int, concat: bool) -> None:
    shapes = [a.shape for a in arrays]
    if not arrays:
        raise ValueError(f"{op}: needs at least one tensor")
    ref = list(shapes[0])
    for s in shapes[1:]:
        rest_ok = (len(s) == len(ref) and all(x == y for i, (x, y) in enumerate(zip(s, ref))
                                              if not (concat and i == axis)))
        if not rest_ok:
            raise ShapeError(f"{op}: shapes {shapes} do not match "
                             f"{'outside axis ' + str(axis) if concat else 'exactly'}")
