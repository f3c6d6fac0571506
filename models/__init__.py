"""Model definitions, declared as layers and selected by name with `get_model`."""

from .registry import MODELS, available_models, get_model, get_model_for_data, register_model
from .lenet5 import LeNet5  # registers "lenet5"
from .lenet5_1998 import LeNet5_1998, map_loss  # registers "lenet5_1998"

__all__ = ["MODELS", "LeNet5", "LeNet5_1998", "available_models", "get_model", "get_model_for_data", "map_loss",
           "register_model"]
