"""Model definitions, declared as layers and selected by name with `get_model`."""

from .registry import MODELS, available_models, get_model, register_model
from . import lenet5 as _lenet5  # noqa: F401  (registers "lenet5")
from .lenet5 import LeNet5

__all__ = ["MODELS", "LeNet5", "available_models", "get_model", "register_model"]
from . import lenet5_1998 as _lenet5_1998  # noqa: F401,E402  (registers "lenet5_1998")
from .lenet5_1998 import LeNet5_1998, map_loss  # noqa: E402

__all__ += ["LeNet5_1998", "map_loss"]
