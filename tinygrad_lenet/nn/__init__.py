"""Neural-network building blocks with PyTorch's names: `Module`, `Parameter`,
layers, losses, `init` and `utils` (gradient clipping)."""

from .. import functional
from . import fusion, init, utils
from .container import ModuleDict, ModuleList, Sequential
from .layers import (
    ELU,
    GELU,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool1d,
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv1d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Dropout2d,
    Flatten,
    GroupNorm,
    Hardtanh,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    MaxPool1d,
    MaxPool2d,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    Upsample,
)
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module, StateDictError
from .parameter import Parameter

__all__ = ["AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool1d", "AvgPool2d", "BCEWithLogitsLoss", "BatchNorm1d",
           "BatchNorm2d", "Conv1d", "Conv2d", "ConvTranspose2d", "CrossEntropyLoss", "Dropout", "Dropout2d", "ELU",
           "Flatten", "GELU", "GroupNorm", "Hardtanh", "Identity", "IncompatibleKeys", "LayerNorm", "LeakyReLU",
           "Linear", "LogSoftmax", "MSELoss", "MaxPool1d", "MaxPool2d", "Module", "ModuleDict", "ModuleList",
           "NLLLoss", "Parameter", "ReLU", "ReLU6", "Sequential", "SiLU", "Sigmoid", "Softmax", "Softplus",
           "StateDictError", "Tanh", "Upsample", "functional", "fusion", "init", "utils"]

