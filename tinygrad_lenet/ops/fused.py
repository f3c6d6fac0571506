"""Fused ops: one op computing a composition of others faster than they would one by
one, with the same values and gradients (the tests check both orders against the
composition). They are ordinary ops; `nn.fusion` says when a model uses them.

relu_max_pool2d(x) = max_pool2d(relu(x)). relu is monotonic, so the window maxima of
relu(x) are relu of the window maxima of x: relu runs on the pooled array (a quarter
of the elements for 2x2 windows) and relu's full-size output is never written. The
gradient goes to each window's maximum where that maximum is positive, which is
relu's mask there, so the backward needs no full-size mask either.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Function
from .layout import relu_array
from .pool import MaxPool2dGrad, route_max_grad, window_max


class ReluMaxPool2d(Function):
    name = "relu_max_pool2d"

    @staticmethod
    def forward(ctx, x, kernel_size, stride):
        out = relu_array(window_max(x, kernel_size, stride), in_place=True)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, out = (np.asarray(v) for v in ctx.saved_tensors)  # where the maxima are: constants
        kernel, stride = ctx.attrs["kernel_size"], ctx.attrs["stride"]
        if isinstance(grad, np.ndarray):  # relu's mask applied by the routing itself
            return route_max_grad(grad, x, out, kernel, stride, only=out > 0)
        # a recorded backward: where a window's maximum is positive it is `out`, found in x
        return MaxPool2dGrad.call(grad * (out > 0), x=x, out=out, kernel_size=kernel, stride=stride)
