r"""Optimizers over :class:`~labkit.nets.module.Parameter`, with the names, defaults and
arithmetic of ``torch.optim``.

A numpy model and a torch model started from the same weights and fed the same gradients
follow the same trajectory under ``labkit.optim.X`` and ``torch.optim.X`` (the tests
hold every optimizer and option to torch's to ``rtol=1e-10`` over hundreds of steps of a
non-quadratic loss).

Conventions, as in torch
------------------------
- ``params`` is an iterable of ``Parameter``\s, or of dicts
  ``{"params": [...], **options}`` (parameter groups); options a group leaves out come
  from the constructor's arguments. ``optimizer.param_groups`` is that list of dicts
  (change ``group["lr"]`` to change the learning rate; the schedulers in
  ``labkit.lr_scheduler`` do exactly that).
- ``optimizer.state[p]`` is a dict per parameter holding the running quantities under
  torch's names (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``,
  ``square_avg``, ``acc_delta``, ``grad_avg``, ``sum``, ``step``). Buffers are created
  at a parameter's first update (Adagrad's at construction, as in torch).
- ``step()`` updates every parameter whose ``grad`` is not ``None``, in place
  (``p.data`` is the same array before and after), and leaves ``p.grad`` alone.
  Parameters with ``grad is None`` are skipped: no update, no state, their step counter
  does not advance.
- ``zero_grad()`` sets every ``grad`` to ``None`` (torch's default
  ``set_to_none=True``); ``zero_grad(set_to_none=False)`` fills the gradient arrays with
  zeros instead.
- In every update rule below, ``g`` is the gradient after the two optional edits every
  optimizer makes first, in this order: ``g <- -g`` if ``maximize``, then
  ``g <- g + weight_decay * p`` (L2 regularisation folded into the gradient; AdamW
  decays the weights directly instead).

Differences from torch: ``state["step"]`` is a Python ``int`` (torch keeps a 0-d
tensor); the torch-only switches ``foreach``, ``fused``, ``capturable`` and
``differentiable`` do not exist, nor do tensor learning rates, named parameters or
``state_dict()``; every group's options are validated (torch validates only the
constructor's), and an empty group, a repeated parameter or a gradient of the wrong
shape is a ``ValueError``. ``maximize`` is keyword-only everywhere, so a positional call
that works here means the same in torch.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from numbers import Real
from typing import Any

import numpy as np

from .nets import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"]


# --------------------------------------------------------------------------- validation


def _check_number(
    name: str,
    value: Any,
    low: float = 0.0,
    high: float = math.inf,
    *,
    high_open: bool = False,
) -> None:
    """Raise unless ``value`` is a finite real with low <= value <= high (< high if
    high_open)."""
    finite = (
        isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    )
    if not (finite and low <= value and (value < high if high_open else value <= high)):
        interval = (
            f"[{low}, {high})" if high_open or high == math.inf else f"[{low}, {high}]"
        )
        raise ValueError(
            f"{name}: expected a finite number in {interval}, got {value!r}"
        )


def _check_flag(name: str, value: Any) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {value!r}")


# --------------------------------------------------------------------------- base class


class Optimizer:
    """Parameter groups, per-parameter state, ``step()`` and ``zero_grad()``; subclasses
    implement ``_validate(options)`` and ``_update(p, grad, state, group)`` for one
    parameter."""

    def __init__(
        self, params: Iterable[Parameter] | Iterable[dict], defaults: dict[str, Any]
    ):
        self._validate(defaults)
        self.defaults = defaults
        self.state: defaultdict[Parameter, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, (Parameter, dict)) or not isinstance(params, Iterable):
            raise ValueError(
                "params: expected an iterable (a list, model.parameters()) of "
                f"Parameters or of parameter-group dicts, got {type(params).__name__}"
            )
        params = list(params)
        if not params:
            raise ValueError("params: optimizer got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group ``{"params": [...], **options}``; missing options come from
        defaults."""
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise ValueError(
                "params: a parameter group must be a dict with a 'params' key, "
                f"got {param_group!r}"
            )
        params = param_group["params"]
        params = [params] if isinstance(params, Parameter) else list(params)
        for p in params:
            if not isinstance(p, Parameter):
                raise ValueError(
                    "params: expected labkit.nets.Parameter objects, got "
                    f"{type(p).__name__} (wrap arrays in Parameter(...))"
                )
        if not params:
            raise ValueError("params: a parameter group has an empty 'params' list")
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        ids = [id(p) for p in params]
        if len(set(ids)) < len(ids) or seen.intersection(ids):
            raise ValueError(
                "params: some parameters appear more than once (in one group or "
                "in several groups)"
            )
        group = {
            "params": params,
            **{k: v for k, v in param_group.items() if k != "params"},
        }
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._validate(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every ``p.grad`` to None (default), or fill it with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.fill(0.0)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update each parameter that has a gradient; return ``closure()`` if one is
        given."""
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.shape != p.data.shape:
                    raise ValueError(
                        f"grad: shape {p.grad.shape} does not match the parameter's "
                        f"shape {p.data.shape}"
                    )
                self._update(p, self._preprocess(p, group), self.state[p], group)
        return loss

    def _preprocess(self, p: Parameter, group: dict[str, Any]) -> np.ndarray:
        """g = (-grad if maximize else grad) + weight_decay * p, never modifying
        ``p.grad``."""
        grad = -p.grad if group["maximize"] else p.grad
        if group["weight_decay"] != 0 and not group.get(
            "decoupled_weight_decay", False
        ):
            grad = grad + group["weight_decay"] * p.data
        return grad

    def _validate(self, options: dict[str, Any]) -> None:
        raise NotImplementedError

    def _update(self, p: Parameter, grad: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [
                f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"
            ]
        return "\n".join(lines + [")"])


# --------------------------------------------------------------------------- optimizers


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and Nesterov momentum
    (torch.optim.SGD).

    Per parameter ``p`` with gradient ``g`` (after the ``maximize`` / ``weight_decay``
    edits)::

        b <- g                                   first step   state["momentum_buffer"]
        b <- momentum * b + (1 - dampening) * g  later steps  (only if momentum != 0)
        d <- g + momentum * b  if nesterov, else d <- b       (d = g if momentum == 0)
        p <- p - lr * d

    Where torch departs from the textbook (Polyak's heavy ball
    ``v <- mu v - lr g; p <- p + v``):

    - the learning rate multiplies the whole buffer, outside it, so changing ``lr``
      mid-run rescales past gradients too, not only new ones;
    - with the default ``dampening=0`` the buffer is a running *sum*: for a constant
      gradient it tends to ``g / (1 - momentum)``, a step ``1 / (1 - momentum)`` times
      larger (10x for 0.9) than plain SGD with the same ``lr``. ``dampening = momentum``
      makes it an exponentially weighted *average* instead;
    - the buffer starts at the first gradient, not at zero, so the first step is plain
      SGD whatever the dampening (no start-up bias to correct);
    - Nesterov momentum (Sutskever et al., 2013) is rewritten in terms of the current
      weights instead of the look-ahead point: the step uses ``g + momentum * b``, and
      requires ``momentum > 0`` and ``dampening == 0``.

    There is no epsilon.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
                maximize=maximize,
            ),
        )

    def _validate(self, options):
        _check_number("lr", options["lr"])
        _check_number("momentum", options["momentum"])
        _check_number("dampening", options["dampening"], 0.0, 1.0)
        _check_number("weight_decay", options["weight_decay"])
        _check_flag("nesterov", options["nesterov"])
        _check_flag("maximize", options["maximize"])
        if options["nesterov"] and (
            options["momentum"] <= 0 or options["dampening"] != 0
        ):
            raise ValueError(
                "nesterov: Nesterov momentum requires momentum > 0 and dampening = 0, "
                f"got momentum={options['momentum']}, "
                f"dampening={options['dampening']}"
            )

    def _update(self, p, grad, state, group):
        momentum = group["momentum"]
        if momentum != 0:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.array(
                    grad
                )  # a copy, and an array even when 0-d
            else:
                buf = state["momentum_buffer"]
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            buf = state["momentum_buffer"]
            grad = grad + momentum * buf if group["nesterov"] else buf
        p.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), optionally AMSGrad or with decoupled weight decay, as
    torch.optim.Adam.

    Per parameter ``p`` with gradient ``g`` (after the ``maximize`` / ``weight_decay``
    edits; with ``decoupled_weight_decay`` the decay is not added to ``g``, and
    ``p <- p * (1 - lr * weight_decay)`` comes first instead, see :class:`AdamW`)::

        t <- t + 1                                                  state["step"]
        m <- beta1 * m + (1 - beta1) * g                            state["exp_avg"]
        v <- beta2 * v + (1 - beta2) * g**2                         state["exp_avg_sq"]
        v_max <- max(v_max, v)  if amsgrad; v_max replaces v   state["max_exp_avg_sq"]
        p <- p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``m`` and ``v`` start at zero; dividing by ``1 - beta**t`` removes the pull towards
    zero (the bias correction, see ``labkit.ewma``). Epsilon is added *after* the square
    root and after the bias correction, ``sqrt(v_hat) + eps`` with
    ``v_hat = v / (1 - beta2**t)``: the paper's Algorithm 1. Some libraries add it to
    ``sqrt(v)`` before the correction (the paper's "efficient" variant), which is a
    different optimizer while ``t`` is small.

    AMSGrad in torch keeps the running maximum of the *raw* ``v`` and bias-corrects that
    maximum; Reddi et al. (2018) state it without bias correction.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                betas=betas,
                eps=eps,
                weight_decay=weight_decay,
                amsgrad=amsgrad,
                maximize=maximize,
                decoupled_weight_decay=decoupled_weight_decay,
            ),
        )

    def _validate(self, options):
        _check_number("lr", options["lr"])
        _check_number("eps", options["eps"])
        betas = options["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        _check_number("betas[0]", betas[0], 0.0, 1.0, high_open=True)
        _check_number("betas[1]", betas[1], 0.0, 1.0, high_open=True)
        _check_number("weight_decay", options["weight_decay"])
        _check_flag("amsgrad", options["amsgrad"])
        _check_flag("maximize", options["maximize"])
        _check_flag("decoupled_weight_decay", options["decoupled_weight_decay"])

    def _update(self, p, grad, state, group):
        lr, eps, (beta1, beta2) = group["lr"], group["eps"], group["betas"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if group["decoupled_weight_decay"] and group["weight_decay"] != 0:
            p.data *= 1 - lr * group["weight_decay"]

        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)  # = beta1 * m + (1 - beta1) * g
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            exp_avg_sq = state["max_exp_avg_sq"]

        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        step_size = lr / bias_correction1
        denom = np.sqrt(exp_avg_sq) / math.sqrt(bias_correction2) + eps
        p.data -= step_size * (exp_avg / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as
    torch.optim.AdamW.

    The weights shrink first, ``p <- p * (1 - lr * weight_decay)`` (decay scaled by
    ``lr`` but not by Adam's per-coordinate step size), then the Adam step of
    :class:`Adam` runs on the unedited gradient (``g <- -g`` if ``maximize``), with the
    same state names and epsilon placement. Note the default ``weight_decay=1e-2``,
    where Adam's is 0; in plain Adam the decay term enters ``m`` and ``v`` and is
    divided by ``sqrt(v_hat)``, so weights with large gradients are decayed less.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton, 2012), optionally centred and with momentum, as
    torch.optim.RMSprop.

    Per parameter ``p`` with gradient ``g`` (after the ``maximize`` / ``weight_decay``
    edits)::

        t <- t + 1                                  state["step"] (counted, not used)
        v <- alpha * v + (1 - alpha) * g**2         state["square_avg"]
        if centered:
            gbar <- alpha * gbar + (1 - alpha) * g  state["grad_avg"]
            s = sqrt(v - gbar**2) + eps             (an estimate of the gradient's std)
        else:
            s = sqrt(v) + eps
        if momentum > 0:
            b <- momentum * b + g / s               state["momentum_buffer"]
            p <- p - lr * b
        else:
            p <- p - lr * g / s

    All buffers start at zero and there is no bias correction, so the first steps are
    large: ``v = (1 - alpha) g**2`` after one step makes the first step
    ``lr / sqrt(1 - alpha)`` (10x ``lr`` at the default ``alpha = 0.99``, which is
    larger than the 0.9 of the lecture notes). Epsilon is added outside the square root;
    some libraries put it inside, ``sqrt(v + eps)``. Unlike SGD's, the momentum buffer
    starts at zero and accumulates the normalised step.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                alpha=alpha,
                eps=eps,
                centered=centered,
                weight_decay=weight_decay,
                maximize=maximize,
            ),
        )

    def _validate(self, options):
        _check_number("lr", options["lr"])
        _check_number("eps", options["eps"])
        _check_number("momentum", options["momentum"])
        _check_number("weight_decay", options["weight_decay"])
        _check_number("alpha", options["alpha"], 0.0, 1.0)
        _check_flag("centered", options["centered"])
        _check_flag("maximize", options["maximize"])

    def _update(self, p, grad, state, group):
        alpha, momentum = group["alpha"], group["momentum"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
        state["step"] += 1

        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (
                grad - grad_avg
            )  # = alpha * gbar + (1 - alpha) * g
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + group["eps"]
        else:
            avg = np.sqrt(square_avg) + group["eps"]

        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            p.data -= group["lr"] * buf
        else:
            p.data -= group["lr"] * (grad / avg)


class Adagrad(Optimizer):
    """Adagrad (Duchi, Hazan & Singer, 2011), as torch.optim.Adagrad.

    Per parameter ``p`` with gradient ``g`` (after the ``maximize`` / ``weight_decay``
    edits)::

        t <- t + 1                                          state["step"]
        clr = lr / (1 + (t - 1) * lr_decay)
        s <- s + g**2                                       state["sum"]
        p <- p - clr * g / (sqrt(s) + eps)

    ``s`` starts at ``initial_accumulator_value`` and only grows, so for gradients of
    steady size every coordinate's step shrinks like ``1 / sqrt(t)``, even without
    ``lr_decay``. Epsilon is added outside the square root. The state of every parameter
    exists from construction (as in torch), with ``step = 0``.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(
                lr=lr,
                lr_decay=lr_decay,
                eps=eps,
                weight_decay=weight_decay,
                initial_accumulator_value=initial_accumulator_value,
                maximize=maximize,
            ),
        )

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self.state[p]["step"] = 0
            self.state[p]["sum"] = np.full_like(
                p.data, group["initial_accumulator_value"]
            )

    def _validate(self, options):
        _check_number("lr", options["lr"])
        _check_number("lr_decay", options["lr_decay"])
        _check_number("weight_decay", options["weight_decay"])
        _check_number("initial_accumulator_value", options["initial_accumulator_value"])
        _check_number("eps", options["eps"])
        _check_flag("maximize", options["maximize"])

    def _update(self, p, grad, state, group):
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        std = np.sqrt(state["sum"]) + group["eps"]
        p.data -= clr * (grad / std)


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), as torch.optim.Adadelta.

    Per parameter ``p`` with gradient ``g`` (after the ``maximize`` / ``weight_decay``
    edits)::

        t <- t + 1                                  state["step"] (counted, not used)
        v <- rho * v + (1 - rho) * g**2             state["square_avg"]
        d = sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho * u + (1 - rho) * d**2             state["acc_delta"]
        p <- p - lr * d

    Epsilon goes *inside* both square roots (Zeiler's ``RMS[x] = sqrt(E[x**2] + eps)``);
    it is what lets the first steps move at all, since ``u`` starts at zero: the first
    step has size about ``lr * sqrt(eps) / sqrt(1 - rho)``. The paper has no learning
    rate; torch multiplies the step by ``lr`` (default 1.0, which recovers the paper).
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize),
        )

    def _validate(self, options):
        _check_number("lr", options["lr"])
        _check_number("rho", options["rho"], 0.0, 1.0)
        _check_number("eps", options["eps"])
        _check_number("weight_decay", options["weight_decay"])
        _check_flag("maximize", options["maximize"])

    def _update(self, p, grad, state, group):
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p.data)
            state["acc_delta"] = np.zeros_like(p.data)
        state["step"] += 1

        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg *= rho
        square_avg += (1 - rho) * grad * grad
        delta = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * grad
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        p.data -= group["lr"] * delta
