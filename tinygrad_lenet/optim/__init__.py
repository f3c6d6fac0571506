"""Optimizers (SGD, Adam, AdamW, Adadelta, RMSprop) and learning-rate schedules, with PyTorch's
names, arguments and update rules."""

from . import lr_scheduler, swa_utils
from .adadelta import Adadelta
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["SGD", "Adadelta", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler", "swa_utils"]
