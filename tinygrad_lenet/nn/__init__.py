"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter`,
layers, losses, `init` and `utils` (gradient clipping)."""

from .. import functional
from . import fusion, init, utils
from .container import Sequential
from .layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    Hardtanh,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    SiLU,
    Softplus,
    Tanh,
)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, StateDictError
from .parameter import Parameter

__all__ = ["ELU", "GELU", "AdaptiveAvgPool2d", "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d", "BatchNorm2d", "Conv2d",
           "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Flatten", "Hardtanh", "Identity", "IncompatibleKeys",
           "LayerNorm", "LeakyReLU", "Linear", "MSELoss", "MaxPool2d", "Module", "NLLLoss", "Parameter", "ReLU",
           "Sequential", "SiLU", "Sigmoid", "Softplus", "StateDictError", "Tanh", "functional", "fusion", "init", "utils"]

