r"""Learning-rate schedules for ``labkit.optim`` optimizers, with
``torch.optim.lr_scheduler``'s names, arguments and arithmetic.

A scheduler owns no learning rate of its own: it rewrites ``group["lr"]`` in the
optimizer's ``param_groups``. The loop is torch's::

    scheduler = StepLR(optimizer, step_size=30, gamma=0.1)  # stores group["initial_lr"]
    for epoch in range(n_epochs):
        train_one_epoch(model, optimizer)  # optimizer.step() inside
        scheduler.step()                   # then the schedule moves on

``t = scheduler.last_epoch`` counts the ``scheduler.step()`` calls (0 right after
construction) and the learning rate used during epoch ``t`` is, for base rate
``lr0 = group["initial_lr"]``:

- ``StepLR``: ``lr0 * gamma ** (t // step_size)``
- ``MultiStepLR``: ``lr0 * gamma ** (number of milestones <= t)``
- ``ExponentialLR``: ``lr0 * gamma ** t``
- ``CosineAnnealingLR``: ``eta_min + (lr0 - eta_min) * (1 + cos(pi * t / T_max)) / 2``
- ``LinearLR``:
  ``lr0 * (start_factor + (end_factor - start_factor) * min(t, total_iters)
  / total_iters)``
- ``LambdaLR``: ``lr0 * lr_lambda(t)``

Like torch, ``step()`` does not evaluate these closed forms: all but ``LambdaLR`` update
the *current* ``group["lr"]`` by the ratio between consecutive closed-form values (for
the cosine, the ratio of their distances to ``eta_min``). When one scheduler owns the
learning rate the two agree (to rounding, which the tests bound); when two schedulers
drive the same optimizer their factors multiply, which is how torch chains a warm-up
with a decay. ``LambdaLR`` always recomputes from ``initial_lr`` and overrides anything
else.

Inverse-time decay, ``lr = lr0 / (1 + decay_rate * t)``, needs no class of its own::

    LambdaLR(optimizer, lr_lambda=lambda t: 1 / (1 + decay_rate * t))

``CosineAnnealingLR`` does not restart: past ``T_max`` the cosine climbs back to ``lr0``
over the next ``T_max`` steps (torch's behaviour), so stop at ``T_max``.

Differences from torch: ``step()`` takes no ``epoch`` argument (deprecated in torch) and
there is no ``state_dict()``; a bad argument (a non-optimizer, a non-positive
``step_size``, unsorted ``milestones``, a resume with ``last_epoch >= 0`` whose groups
lack ``initial_lr``) raises a ``ValueError`` (torch raises ``TypeError`` or ``KeyError``
for some, and does not check others).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from numbers import Integral, Real

from .optim import Optimizer

__all__ = [
    "LRScheduler",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "LambdaLR",
]


def _check_int(name: str, value, low: int) -> None:
    if not isinstance(value, Integral) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {value!r}")


def _check_real(
    name: str, value, low: float, high: float = math.inf, *, low_open: bool = False
) -> None:
    ok = (
        isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    )
    if not ok or not (low < value if low_open else low <= value) or value > high:
        left = "(" if low_open else "["
        right = "]" if high < math.inf else ")"
        raise ValueError(
            f"{name}: expected a finite number in {left}{low}, {high}{right}, "
            f"got {value!r}"
        )


class LRScheduler:
    """Base class: stores ``initial_lr`` in each group, counts ``last_epoch``, and on
    ``step()`` writes ``get_lr()`` into the groups; subclasses implement
    ``get_lr()``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise ValueError(
                "optimizer: expected a labkit.optim optimizer, got "
                f"{type(optimizer).__module__}.{type(optimizer).__name__}"
            )
        _check_int("last_epoch", last_epoch, -1)
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(
                    f"last_epoch={last_epoch} resumes a schedule, but "
                    f"optimizer.param_groups[{i}] has no 'initial_lr'; use "
                    "last_epoch=-1 to start a new schedule"
                )
        self.optimizer = optimizer
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._is_initial = True  # the constructor's own step, as torch's _initial_step
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The learning rate of each group for epoch ``last_epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance ``last_epoch`` by one and write the new learning rates into the
        groups."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr(), strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The learning rates the last ``step()`` (or the constructor) set, one per
        group."""
        return list(self._last_lr)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class LambdaLR(LRScheduler):
    """``lr = initial_lr * lr_lambda(last_epoch)``, one function for all groups or one
    per group.

    Not chainable: it recomputes from ``initial_lr`` each step.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ):
        n_groups = len(getattr(optimizer, "param_groups", []))
        if isinstance(lr_lambda, (list, tuple)):
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n_groups
        if len(lambdas) != n_groups:
            raise ValueError(
                f"lr_lambda: expected one function or a list of {n_groups} "
                f"(one per parameter group), got a list of {len(lambdas)}"
            )
        if not all(callable(f) for f in lambdas):
            raise ValueError(
                f"lr_lambda: expected a function of the epoch, got {lr_lambda!r}"
            )
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [
            base_lr * f(self.last_epoch)
            for f, base_lr in zip(self.lr_lambdas, self.base_lrs)
        ]


class StepLR(LRScheduler):
    """``lr = initial_lr * gamma ** (last_epoch // step_size)``: multiply by ``gamma``
    every ``step_size`` epochs (applied as ``lr <- gamma * lr`` at each multiple of
    ``step_size``)."""

    def __init__(
        self,
        optimizer: Optimizer,
        step_size: int,
        gamma: float = 0.1,
        last_epoch: int = -1,
    ):
        _check_int("step_size", step_size, 1)
        _check_real("gamma", gamma, 0.0, low_open=True)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class MultiStepLR(LRScheduler):
    """``lr = initial_lr * gamma ** (number of milestones <= last_epoch)``; a milestone
    listed twice decays twice (applied as ``lr <- gamma**k * lr`` at a milestone listed
    k times)."""

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ):
        milestones = list(milestones)
        if not milestones:
            raise ValueError("milestones: expected a non-empty list of epochs, got []")
        for m in milestones:
            _check_int("milestones", m, 1)
        if milestones != sorted(milestones):
            raise ValueError(
                f"milestones: expected epochs in increasing order, got {milestones}"
            )
        _check_real("gamma", gamma, 0.0, low_open=True)
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self.last_epoch not in self.milestones:
            return self._current_lrs()
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    """``lr = initial_lr * gamma ** last_epoch`` (applied as ``lr <- gamma * lr`` each
    step)."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        _check_real("gamma", gamma, 0.0, low_open=True)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    """``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``,
    t = last_epoch.

    Half a cosine from ``initial_lr`` down to ``eta_min`` over ``T_max`` steps (the SGDR
    schedule of Loshchilov & Hutter without its restarts). Applied, like torch, as the
    recursion::

        lr_t - eta_min = (lr_{t-1} - eta_min) * c_t / c_{t-1}
        c_t = 1 + cos(pi * t / T_max)

    with the step out of the trough (where that ratio would be 0/0) taken additively.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_max: int,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ):
        _check_int("T_max", T_max, 1)
        _check_real("eta_min", eta_min, 0.0)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if (t - 1 - T) % (2 * T) == 0:  # leaving the trough at t = T + 1, 3T + 1, ...
            return [
                lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for lr, base_lr in zip(self._current_lrs(), self.base_lrs)
            ]
        ratio = (1 + math.cos(math.pi * t / T)) / (1 + math.cos(math.pi * (t - 1) / T))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]


class LinearLR(LRScheduler):
    """``lr = initial_lr * factor_t`` with a factor moving linearly from
    ``start_factor`` to ``end_factor``:
    ``factor_t = start_factor + (end_factor - start_factor) * min(t, total_iters)
    / total_iters``.

    A linear ramp of the factor (a warm-up when ``start_factor < end_factor``), constant
    after ``total_iters`` steps; applied, like torch, as
    ``lr <- lr * factor_t / factor_{t-1}``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        _check_real("start_factor", start_factor, 0.0, 1.0, low_open=True)
        _check_real("end_factor", end_factor, 0.0, 1.0)
        _check_int("total_iters", total_iters, 1)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t, start, end = self.last_epoch, self.start_factor, self.end_factor
        if t == 0:
            return [lr * start for lr in self._current_lrs()]
        if self._is_initial or t > self.total_iters:
            return self._current_lrs()
        ratio = 1.0 + (end - start) / (
            self.total_iters * start + (t - 1) * (end - start)
        )
        return [lr * ratio for lr in self._current_lrs()]
