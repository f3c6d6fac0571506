"""Every recordable op. Importing this package registers them all in
`tinygrad_lenet.autograd.OPS`."""

from .conv import Conv2d
from .elementwise import Add, Cast, Div, Exp, Log, Maximum, Minimum, Mul, Neg, Pow, Relu, Sigmoid, Sqrt, Sub, Tanh
from .linalg import MatMul
from .pool import AvgPool2d, MaxPool2d
from .reduce import LogSumExp, Max, Mean, Sum
from .shape import BroadcastTo, Concatenate, GetItem, Pad, Permute, Reshape, Stack
from .softmax import CrossEntropy, Dropout, LogSoftmax, MSELoss, NLLLoss, Softmax

__all__ = [
    "Add", "AvgPool2d", "BroadcastTo", "Cast", "Concatenate", "Conv2d", "CrossEntropy", "Div",
    "Dropout", "Exp", "GetItem", "Log", "LogSoftmax", "LogSumExp", "MatMul", "MSELoss", "Max",
    "MaxPool2d", "Maximum", "Mean", "Minimum", "Mul", "NLLLoss", "Neg", "Pad", "Permute", "Pow",
    "Relu", "Reshape", "Sigmoid", "Softmax", "Sqrt", "Stack", "Sub", "Sum", "Tanh",
]
