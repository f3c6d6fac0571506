"""Every recordable op. Importing this package registers them all in
`tinygrad_lenet.autograd.OPS`."""

from .conv import Conv2d, Conv2dInputGrad, Conv2dWeightGrad
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
from .pool import AvgPool2d, AvgPool2dGrad, MaxPool2d, MaxPool2dGrad
from .reduce import Cumsum, LogSumExp, Max, Mean, Sum
from .shape import BroadcastTo, Concatenate, Flip, GetItem, GetItemGrad, Pad, Permute, Reshape, Stack
from .softmax import CrossEntropy, Dropout, LogSoftmax, MSELoss, NLLLoss, Softmax

__all__ = [
    "Abs", "Clip", "Cos", "Cumsum", "Elu", "Erf", "Flip", "Expm1", "LeakyRelu", "Log1p", "PowTensor", "Sin", "Softplus", "Where",
    "Add", "AvgPool2d", "AvgPool2dGrad", "BroadcastTo", "Cast", "Concatenate", "Conv2d", "Conv2dInputGrad",
    "Conv2dWeightGrad", "CrossEntropy", "Div", "Dropout", "Exp", "GetItem", "GetItemGrad", "Log", "LogSoftmax",
    "Linear", "LogSumExp", "MatMul", "MSELoss", "Max",
    "MaxPool2d", "MaxPool2dGrad", "Maximum", "Mean", "Minimum", "Mul", "NLLLoss", "Neg", "Pad", "Permute", "Pow",
    "Relu", "ReluMaxPool2d", "Reshape", "Sigmoid", "Softmax", "Sqrt", "Stack", "Sub", "Sum", "Tanh",
]
