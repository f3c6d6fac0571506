"""tinygrad_lenet: a small reverse-mode autodiff framework on numpy, built to
train and look inside LeNet-5."""

from . import checkpoint, functional, nn, optim
from .autograd import OPS, Function, enable_grad, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .random import manual_seed
from .tensor import Tensor, grad, tensor

__all__ = ["OPS", "Function", "GradcheckError", "Tensor", "checkpoint", "enable_grad", "functional", "grad",
           "gradcheck", "gradgradcheck", "is_grad_enabled", "manual_seed", "nn", "no_grad", "optim", "tensor"]
__version__ = "0.1.0"
