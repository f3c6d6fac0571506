"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter`,
layers, losses, `init` and `utils` (gradient clipping)."""

from .. import functional
from . import init, utils
from .container import Sequential
from .layers import AvgPool2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, StateDictError
from .parameter import Parameter

__all__ = ["AvgPool2d", "Conv2d", "CrossEntropyLoss", "Dropout", "Flatten", "Identity", "IncompatibleKeys",
           "Linear", "MSELoss", "MaxPool2d", "Module", "NLLLoss", "Parameter", "ReLU", "Sequential", "Sigmoid",
           "StateDictError", "Tanh", "functional", "init", "utils"]

