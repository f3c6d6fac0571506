"""Layers of the original LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998) that modern
networks dropped: the scaled tanh squashing function, trainable subsampling, a
convolution with a sparse connection table and Euclidean RBF output units.

Each layer is composed of existing differentiable ops, so autodiff derives its
gradient; none has a hand-written backward. Weights start as in the paper:
uniform in (-2.4 / F, 2.4 / F) with F the fan-in of the unit (biases alike).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinygrad_lenet import functional as F
from tinygrad_lenet.nn import Module, Parameter, init
from tinygrad_lenet.tensor import Tensor
from tinygrad_lenet.validation import check_positive, int_pair


def _check_input(layer: str, x: Tensor, ndim: int, what: str) -> None:
    if x.ndim != ndim:
        raise ValueError(f"{layer}: expected a {ndim}-D input {what}, got shape {x.shape}")


class ScaledTanh(Module):
    """f(a) = amplitude * tanh(slope * a); the paper's squashing function has
    amplitude A = 1.7159 and slope S = 2/3, so f(+-1) = +-1 and the gain is
    largest around the +-1 targets."""

    def __init__(self, amplitude: float = 1.7159, slope: float = 2.0 / 3.0):
        super().__init__()
        self.amplitude, self.slope = float(amplitude), float(slope)

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.slope).tanh() * self.amplitude

    def extra_repr(self) -> str:
        return f"amplitude={self.amplitude}, slope={self.slope:.6g}"


class ScaleShiftPad2d(Module):
    """y = x * scale + shift on (N, C, H, W) images, then `padding` pixels of
    `pad_value` on each side: a fixed (untrained) input layer, e.g. to map
    normalized 28x28 digits to the paper's 32x32 field with background -0.1."""

    def __init__(self, scale: float, shift: float, padding: int = 0, pad_value: float = 0.0):
        super().__init__()
        if not isinstance(padding, (int, np.integer)) or padding < 0:
            raise ValueError(f"ScaleShiftPad2d: padding must be an int >= 0, got {padding!r}")
        self.scale, self.shift = float(scale), float(shift)
        self.padding, self.pad_value = int(padding), float(pad_value)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("ScaleShiftPad2d", x, 4, "(N, C, H, W)")
        if self.padding == 0:
            return x * self.scale + self.shift
        p = self.padding
        # pad with zeros around (y - pad_value), then add pad_value back: the border is pad_value
        shifted = x * self.scale + (self.shift - self.pad_value)
        return shifted.pad(((0, 0), (0, 0), (p, p), (p, p))) + self.pad_value

    def extra_repr(self) -> str:
        return f"scale={self.scale:.6g}, shift={self.shift:.6g}, padding={self.padding}, pad_value={self.pad_value}"


class Subsampling2d(Module):
    """The paper's subsampling layer: each unit sums a non-overlapping
    kernel_size window of its own channel, multiplies the sum by a trainable
    coefficient and adds a trainable bias (one pair per channel):
    y[n, c] = weight[c] * window_sum(x[n, c]) + bias[c]. Parameters: 2 * channels."""

    def __init__(self, channels: int, kernel_size: int | tuple[int, int] = 2):
        super().__init__()
        check_positive("Subsampling2d", channels=channels)
        self.channels = int(channels)
        self.kernel_size = int_pair(kernel_size, "Subsampling2d", "kernel_size")
        check_positive("Subsampling2d", kernel_size=min(self.kernel_size))
        self.weight = Parameter(np.empty(self.channels, dtype=np.float32))
        self.bias = Parameter(np.empty(self.channels, dtype=np.float32))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """U(+-2.4 / F) with F = kh * kw, the number of inputs of a unit."""
        bound = 2.4 / (self.kernel_size[0] * self.kernel_size[1])
        init.uniform_(self.weight, -bound, bound)
        init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        _check_input("Subsampling2d", x, 4, "(N, C, H, W)")
        if x.shape[1] != self.channels:
            raise ValueError(f"Subsampling2d: expected {self.channels} channels, got input of shape {x.shape}")
        kh, kw = self.kernel_size
        # window sum = window mean * (kh * kw); the factor goes on the (C,) coefficient, not the maps
        coefficient = (self.weight * float(kh * kw)).reshape(1, self.channels, 1, 1)
        return F.avg_pool2d(x, self.kernel_size) * coefficient + self.bias.reshape(1, self.channels, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.channels}, kernel_size={self.kernel_size}"


class MaskedConv2d(Module):
    """Conv2d whose input-output channel pairs are limited by a fixed 0/1
    `connection_table` of shape (out_channels, in_channels) (True = connected).

    The convolution uses weight * mask, so absent connections contribute
    nothing and get exactly zero gradient; they are also zero in `weight`
    itself, so optimizers (momentum, Adam, weight decay) keep them at zero.
    Trainable parameters: connections * kh * kw + out_channels (see
    `num_trainable_parameters`). The table is a persistent buffer (`connections`),
    so a checkpoint carries the architecture it was trained with."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 connection_table: Any, bias: bool = True):
        super().__init__()
        check_positive("MaskedConv2d", in_channels=in_channels, out_channels=out_channels)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = int_pair(kernel_size, "MaskedConv2d", "kernel_size")
        check_positive("MaskedConv2d", kernel_size=min(self.kernel_size))
        table = np.asarray(connection_table.data if isinstance(connection_table, Tensor) else connection_table)
        if table.shape != (self.out_channels, self.in_channels):
            raise ValueError(f"MaskedConv2d: connection_table must have shape (out_channels, in_channels) = "
                             f"{(self.out_channels, self.in_channels)}, got {table.shape}")
        if table.dtype != np.bool_ and not np.isin(table, (0, 1)).all():
            raise ValueError("MaskedConv2d: connection_table must hold only 0/1 or booleans")
        table = table.astype(np.bool_)
        if not table.any(axis=1).all():
            missing = np.flatnonzero(~table.any(axis=1)).tolist()
            raise ValueError(f"MaskedConv2d: output channels {missing} have no input connection")
        self.register_buffer("connections", Tensor(table))
        self.weight = Parameter(np.empty((self.out_channels, self.in_channels, *self.kernel_size), dtype=np.float32))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def weight_mask(self) -> np.ndarray:
        """The 0/1 mask (out, in, 1, 1) in the weight's dtype."""
        return self.connections.data.astype(self.weight.dtype)[:, :, None, None]

    def reset_parameters(self) -> None:
        """Each output channel o gets U(+-2.4 / F_o), F_o = its connected inputs * kh * kw."""
        fan_in = self.connections.data.sum(axis=1) * (self.kernel_size[0] * self.kernel_size[1])
        bound = (2.4 / fan_in).astype(self.weight.dtype)
        init.uniform_(self.weight, -1.0, 1.0)
        self.weight.data *= bound[:, None, None, None] * self.weight_mask()
        if self.bias is not None:
            init.uniform_(self.bias, -1.0, 1.0)
            self.bias.data *= bound

    @property
    def num_masked_weights(self) -> int:
        """Entries of `weight` that the connection table holds at zero."""
        return int((~self.connections.data).sum()) * self.kernel_size[0] * self.kernel_size[1]

    def num_trainable_parameters(self) -> int:
        """Free parameters: connected weights plus biases (what the paper counts)."""
        return sum(p.size for p in self.parameters(recurse=False) if p.requires_grad) - (
            self.num_masked_weights if self.weight.requires_grad else 0)

    def forward(self, x: Tensor) -> Tensor:
        masked = self.weight * Tensor.wrap(self.weight_mask())
        return F.conv2d(x, masked, self.bias)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"connections={int(self.connections.data.sum())}/{self.connections.size}")
        return s + (", bias=False" if self.bias is None else "")


class EuclideanRBF(Module):
    """Euclidean radial basis function units: y[n, i] = sum_j (x[n, j] - centers[i, j])^2,
    a penalty that is small when the input is near class i's center. The
    centers (out_features, in_features) are fixed: a persistent buffer, not a
    parameter, so no optimizer moves them."""

    def __init__(self, in_features: int, out_features: int, centers: Any):
        super().__init__()
        check_positive("EuclideanRBF", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = int(in_features), int(out_features)
        arr = np.asarray(centers.data if isinstance(centers, Tensor) else centers)
        if arr.shape != (self.out_features, self.in_features):
            raise ValueError(f"EuclideanRBF: centers must have shape (out_features, in_features) = "
                             f"{(self.out_features, self.in_features)}, got {arr.shape}")
        if arr.dtype.kind not in "fiub" or not np.isfinite(arr.astype(np.float64)).all():
            raise ValueError(f"EuclideanRBF: centers must be finite numbers, got dtype {arr.dtype}")
        self.register_buffer("centers", Tensor(arr.astype(np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        _check_input("EuclideanRBF", x, 2, "(N, in_features)")
        if x.shape[1] != self.in_features:
            raise ValueError(f"EuclideanRBF: expected {self.in_features} input features, got shape {x.shape}")
        centers = self.centers
        if centers.dtype != x.dtype:
            raise TypeError(f"EuclideanRBF: input dtype {x.dtype} does not match centers dtype {centers.dtype}; "
                            "convert the module with .float() or .double()")
        diff = x.reshape(x.shape[0], 1, self.in_features) - centers.reshape(1, self.out_features, self.in_features)
        return (diff * diff).sum(axis=2)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def count_trainable_parameters(module: Module) -> int:
    """Free trainable parameters of `module`: entries of parameters that require
    grad, minus the weights a `MaskedConv2d` connection table holds at zero."""
    total = sum(p.size for p in module.parameters() if p.requires_grad)
    return total - sum(m.num_masked_weights for m in module.modules()
                       if isinstance(m, MaskedConv2d) and m.weight.requires_grad)
