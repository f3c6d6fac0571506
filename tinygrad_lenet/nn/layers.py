"""Layers: thin modules over `tinygrad_lenet.functional`, with PyTorch's names,
arguments, default initialisation and reprs."""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from ..validation import check_positive, int_pair
from . import init
from .module import Module
from .parameter import Parameter


def _reset_default(weight: Parameter, bias: Parameter | None) -> None:
    """PyTorch's default for Linear and Conv2d: kaiming_uniform_(a=sqrt(5)) on the
    weight (U(+-1/sqrt(fan_in))) and U(+-1/sqrt(fan_in)) on the bias."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = init.fan_in_and_fan_out(weight)[0]
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound)


def _add_weight_and_bias(module: Module, weight_shape: tuple[int, ...], bias: bool) -> None:
    """Register float32 `weight` (and `bias` of the output size, or None) and initialize them."""
    module.weight = Parameter(np.empty(weight_shape, dtype=np.float32))
    if bias:
        module.bias = Parameter(np.empty(weight_shape[0], dtype=np.float32))
    else:
        module.register_parameter("bias", None)
    module.reset_parameters()


class Linear(Module):
    """y = x @ weight.T + bias, weight of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        check_positive("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        _add_weight_and_bias(self, (out_features, in_features), bias)

    def reset_parameters(self) -> None:
        _reset_default(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """2-D cross-correlation; weight (out_channels, in_channels, kh, kw)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, bias: bool = True):
        super().__init__()
        check_positive("Conv2d", in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = int_pair(kernel_size, "Conv2d", "kernel_size")
        self.stride = int_pair(stride, "Conv2d", "stride")
        self.padding = int_pair(padding, "Conv2d", "padding")
        check_positive("Conv2d", kernel_size=min(self.kernel_size), stride=min(self.stride))
        if min(self.padding) < 0:
            raise ValueError(f"Conv2d: padding must be >= 0, got {padding!r}")
        _add_weight_and_bias(self, (out_channels, in_channels, *self.kernel_size), bias)

    def reset_parameters(self) -> None:
        _reset_default(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s


class _Pool2d(Module):
    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None):
        super().__init__()
        layer = type(self).__name__
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        k, s = int_pair(self.kernel_size, layer, "kernel_size"), int_pair(self.stride, layer, "stride")
        check_positive(layer, kernel_size=min(k), stride=min(s))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"


class MaxPool2d(_Pool2d):
    """Max over kernel_size windows; stride defaults to kernel_size."""

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(_Pool2d):
    """Mean over kernel_size windows; stride defaults to kernel_size."""

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Merge dims start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        if not (-x.ndim <= self.start_dim < x.ndim and -x.ndim <= self.end_dim < x.ndim):
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} out of range "
                             f"for input of shape {x.shape}")
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """In training mode zero each element with probability p and scale the rest by
    1/(1-p); identity in eval mode. Masks come from `generator`, or the package's
    default generator (looked up at each call, so `manual_seed` applies)."""

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
