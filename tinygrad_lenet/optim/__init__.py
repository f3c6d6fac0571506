"""Optimizers (SGD, Adam, AdamW, Adadelta) and learning-rate schedules, with PyTorch's
names, arguments and update rules."""

from . import lr_scheduler
from .adadelta import Adadelta
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["SGD", "Adadelta", "Adam", "AdamW", "Optimizer", "lr_scheduler"]
