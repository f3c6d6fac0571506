"""tinygrad_lenet: a small reverse-mode autodiff framework on numpy, built to
train and look inside LeNet-5."""

from . import checkpoint, functional, nn, optim, utils
from .autograd import OPS, Function, enable_grad, is_grad_enabled, no_grad
from .checkpoint import load
from .errors import DimError, ShapeError
from .functional import concatenate as cat
from .functional import einsum, stack
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .random import manual_seed
from .tensor import Tensor, grad, tensor
from .torch_names import Device as device
from .torch_names import cuda

# PyTorch's top-level names for what small programs call on `torch.`: with these,
# `import tinygrad_lenet as torch` runs such a program (see docs/pytorch.md).
zeros, ones, randn = Tensor.zeros, Tensor.ones, Tensor.randn  # type: ignore[attr-defined]
from_numpy = Tensor.wrap


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Dimensions `start_dim` to `end_dim` of `x` merged into one (`torch.flatten`)."""
    return x.flatten(start_dim, end_dim)


def save(obj: dict, path: str) -> None:
    """PyTorch's argument order, `save(model.state_dict(), path)`: arrays written without
    pickle (`checkpoint.save`); `load(path)` reads them back."""
    checkpoint.save(path, obj)


__all__ = ["OPS", "DimError", "Function", "GradcheckError", "ShapeError", "Tensor", "cat", "checkpoint", "cuda",
           "device", "einsum", "enable_grad", "flatten", "from_numpy", "functional", "grad", "gradcheck", "gradgradcheck",
           "is_grad_enabled", "load", "manual_seed", "nn", "no_grad", "ones", "optim", "randn", "save", "stack",
           "tensor", "utils", "zeros"]
__version__ = "0.1.0"
