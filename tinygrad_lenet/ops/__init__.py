"""Every recordable op. Importing this package registers them all in
`tinygrad_lenet.autograd.OPS`."""

from ..autograd import OPS
from .activation import Gelu, Silu
from .conv import Conv2d, Conv2dInputGrad, Conv2dWeightGrad
from .depthwise import DepthwiseConv2d, DepthwiseConv2dInputGrad, DepthwiseConv2dWeightGrad
from .dropout import Dropout
from .einsum import Einsum
from .elementwise import (
    Abs,
    Add,
    Cast,
    Clip,
    Cos,
    Div,
    Elu,
    Erf,
    Exp,
    Expm1,
    LeakyRelu,
    Log,
    Log1p,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    PowTensor,
    Relu,
    Sigmoid,
    Sin,
    Softplus,
    Sqrt,
    Sub,
    Tanh,
    Where,
)
from .fused import ReluMaxPool2d
from .linalg import Linear, MatMul
from .loss import CrossEntropy, MSELoss, NLLLoss
from .normalize import BatchNorm, LayerNorm, Normalize
from .pool import AvgPool2d, AvgPool2dGrad, MaxPool2d, MaxPool2dGrad
from .reduce import Cumsum, LogSumExp, Max, Mean, Sum
from .shape import BroadcastTo, Concatenate, Flip, GetItem, GetItemGrad, Pad, Permute, Reshape, Stack
from .softmax import LogSoftmax, Softmax

# The registry is the one list of ops: `__all__` is every op class registered from this
# package (the tests check that each is imported here, has a Tensor method or functional
# wrapper, a gradient test and a PyTorch counterpart).
__all__ = sorted(cls.__name__ for cls in OPS.values() if cls.__module__.startswith(__name__ + "."))
