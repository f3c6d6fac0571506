"""Model definitions (declared as layers), their registry, the 1998 paper's special
layers, and building a model from a `--model` spec or a checkpoint."""

from .checkpoints import CheckpointError, TrainedModel, config_of, load_trained_model, model_to_build
from .layers_1998 import count_trainable_parameters
from .lenet5 import LeNet5  # registers "lenet5"
from .lenet5_1998 import LeNet5_1998, map_loss  # registers "lenet5_1998"
from .registry import MODELS, available_models, get_model, get_model_for_data, register_model
from .spec import (
    ModelSpecError,
    accepts_argument,
    build_model,
    check_output_size,
    check_spec,
    file_sha256,
    names_code,
    resolve_builder,
)

__all__ = ["MODELS", "CheckpointError", "LeNet5", "LeNet5_1998", "ModelSpecError", "TrainedModel",
           "accepts_argument", "available_models", "build_model", "check_output_size", "check_spec", "config_of",
           "count_trainable_parameters", "file_sha256", "get_model", "get_model_for_data", "load_trained_model", "map_loss",
           "model_to_build", "names_code", "register_model", "resolve_builder"]
