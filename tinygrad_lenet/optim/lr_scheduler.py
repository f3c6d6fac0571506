"""Learning-rate schedules with PyTorch's names and formulas.

A scheduler sets each parameter group's "lr" from a closed form of the step
count `last_epoch` (so schedulers are not chained). Construction performs the
initial step (`last_epoch` = 0); call `step()` after each `optimizer.step()`
(per epoch or per batch, as the schedule is defined). `state_dict()` holds only
JSON-friendly values, so checkpoints store it without pickle.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Mapping, Sequence

from ..validation import same_kind
from .optimizer import Optimizer


def per_group(scheduler: str, name: str, value: Any, groups: list) -> list[float]:
    """One value of `name` per parameter group: a list of them, or one for all."""
    values = list(value) if isinstance(value, (list, tuple)) else [value] * len(groups)
    if len(values) != len(groups):
        raise ValueError(f"{scheduler}: {len(values)} {name} values for {len(groups)} parameter groups")
    return [float(v) for v in values]


class SchedulerState:
    """A scheduler's state as plain data: `state_dict` (every attribute but the optimizer)
    and `load_state_dict` (the same keys, values of the same kinds), then `_loaded()`."""

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (numbers, strings and lists only)."""
        return {k: (list(v) if isinstance(v, (list, tuple)) else v)
                for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the state `state_dict()` returned (to resume a run)."""
        unknown = sorted(set(state_dict) - set(self.__dict__) - {"optimizer"})
        if unknown or "optimizer" in state_dict:
            raise ValueError(f"{type(self).__name__}.load_state_dict: unknown keys {unknown or ['optimizer']} "
                             "(is this the state of a different scheduler?)")
        wrong = [f"{k}={v!r:.40}" for k, v in state_dict.items() if not same_kind(self.__dict__[k], v)]
        if wrong:
            raise ValueError(f"{type(self).__name__}.load_state_dict: invalid values {', '.join(wrong)}")
        self.__dict__.update({k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in state_dict.items()})
        self._loaded()

    def _loaded(self) -> None:
        """Called after a state is loaded."""


class LRScheduler(SchedulerState):
    """Base class: subclasses define `_lr_at(base_lr, epoch, group)`."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param_groups[{i}] has no 'initial_lr' "
                                   f"(needed to resume at last_epoch={last_epoch})")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def _lr_at(self, base_lr: float, epoch: int, group: dict[str, Any]) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define _lr_at()")

    def step(self) -> None:
        """Advance one step and set every group's lr."""
        self.last_epoch += 1
        self._apply()

    def _apply(self) -> None:
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = float(self._lr_at(base_lr, self.last_epoch, group))
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates set by the last `step()`, one per parameter group."""
        return list(self._last_lr)

    def _loaded(self) -> None:
        """Set the optimizer's lr (and cycled momentum) for the loaded position, so optimizer
        and scheduler state load in either order."""
        self._apply()


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int, group: dict[str, Any]) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int, group: dict[str, Any]) -> float:
        return base_lr * self.gamma ** epoch


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1, last_epoch: int = -1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int, group: dict[str, Any]) -> float:
        return base_lr * self.gamma ** bisect_right(self.milestones, epoch)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if not isinstance(T_max, int) or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be a positive int, got {T_max!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int, group: dict[str, Any]) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Linear warm-up (or decay) of the lr factor from start_factor to end_factor over
    total_iters steps, then constant: lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        if not 0.0 < start_factor <= 1.0:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor}")
        if not 0.0 <= end_factor <= 1.0:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor}")
        if not isinstance(total_iters, int) or total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be a positive int, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = float(start_factor), float(end_factor), total_iters
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, epoch: int, group: dict[str, Any]) -> float:
        frac = min(epoch, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith & Topin), stepped once per batch: the lr rises from
    max_lr / div_factor to max_lr over the first pct_start of total_steps, then
    falls to max_lr / div_factor / final_div_factor (three_phase: back to the
    initial lr first, then down). With cycle_momentum the momentum (or Adam's
    beta1) moves inversely between max_momentum and base_momentum. PyTorch's
    formulas, including its phase boundaries at pct_start * total_steps - 1."""

    def __init__(self, optimizer: Optimizer, max_lr: float | Sequence[float], total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or both epochs and steps_per_epoch")
            if not (isinstance(epochs, int) and epochs > 0 and isinstance(steps_per_epoch, int) and steps_per_epoch > 0):
                raise ValueError(f"OneCycleLR: epochs and steps_per_epoch must be positive ints, "
                                 f"got {epochs!r} and {steps_per_epoch!r}")
            total_steps = epochs * steps_per_epoch
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"OneCycleLR: total_steps must be a positive int, got {total_steps!r}")
        if not 0.0 <= pct_start <= 1.0:
            raise ValueError(f"OneCycleLR: pct_start must be in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        groups = optimizer.param_groups
        max_lrs = per_group("OneCycleLR", "max_lr", max_lr, groups)
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.cycle_momentum = bool(cycle_momentum)
        total = float(total_steps)
        if three_phase:
            self.phases = [
                [pct_start * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [2 * pct_start * total - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"],
                [total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum"],
            ]
        else:
            self.phases = [
                [pct_start * total - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"],
                [total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum"],
            ]
        if last_epoch == -1:
            for group, top in zip(groups, max_lrs):
                group["initial_lr"] = float(top) / div_factor
                group["max_lr"] = float(top)
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.use_beta1 = "betas" in optimizer.defaults
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and not self.use_beta1:
                raise ValueError(f"OneCycleLR: cycle_momentum needs an optimizer with momentum or betas, "
                                 f"got {type(optimizer).__name__}")
            if last_epoch == -1:
                for group in groups:
                    group["max_momentum"], group["base_momentum"] = float(max_momentum), float(base_momentum)
                    self._set_momentum(group, group["max_momentum"])
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict[str, Any], value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _lr_at(self, base_lr: float, epoch: int, group: dict[str, Any]) -> float:
        if epoch > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {epoch} times, but total_steps is {self.total_steps}")
        start_step = 0.0
        for i, (end_step, start_lr, end_lr, start_m, end_m) in enumerate(self.phases):
            if epoch <= end_step or i == len(self.phases) - 1:
                span = end_step - start_step
                pct = (epoch - start_step) / span if span else 1.0
                if self.cycle_momentum:
                    self._set_momentum(group, self._anneal(group[start_m], group[end_m], pct))
                return self._anneal(group[start_lr], group[end_lr], pct)
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")


class ReduceLROnPlateau(SchedulerState):
    """Multiply every group's lr by `factor` when the metric given to `step(metric)` has
    not improved for `patience` epochs (PyTorch's ReduceLROnPlateau: `mode` "min" or
    "max", `threshold` relative ("rel") or absolute ("abs"), `cooldown` epochs after a
    reduction, no lr below `min_lr`, and no change smaller than `eps`)."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0,
                 min_lr: float | Sequence[float] = 0.0, eps: float = 1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: {type(optimizer).__name__} is not an Optimizer")
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs', "
                             f"got {mode!r} and {threshold_mode!r}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode, self.cooldown = float(threshold), threshold_mode, int(cooldown)
        self.min_lrs, self.eps = per_group("ReduceLROnPlateau", "min_lr", min_lr, optimizer.param_groups), float(eps)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def _better(self, value: float) -> bool:
        if self.threshold_mode == "rel":
            margin = self.best * self.threshold if self.best not in (math.inf, -math.inf) else 0.0
            return value < self.best - abs(margin) if self.mode == "min" else value > self.best + abs(margin)
        return value < self.best - self.threshold if self.mode == "min" else value > self.best + self.threshold

    def step(self, metrics: float) -> None:
        """One epoch's metric (e.g. the validation loss)."""
        value = float(metrics)
        self.last_epoch += 1
        if self._better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, min_lr)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rate of each parameter group after the last step."""
        return list(self._last_lr)
