r"""Exponentially weighted moving averages (EWMA), with every convention named.

The recurrence
--------------
labkit writes the average with a *decay* ``beta`` that weights the past:

.. math::  v_t = \beta\, v_{t-1} + (1 - \beta)\, x_t, \qquad t = 1, 2, \dots

Many texts (and pandas) use the *weight on the new sample* instead,
``alpha = 1 - beta``: ``v_t = alpha * x_t + (1 - alpha) * v_{t-1}``. The two are the
same average; only the name of the knob differs, and passing 0.9 to the wrong one gives
a 10-sample window instead of a 1.1-sample one. labkit takes ``beta`` only. Unrolled,
sample ``x_{t-k}`` carries weight ``(1 - beta) * beta**k``, so the average "remembers"
about ``1 / (1 - beta)`` samples.

The start
---------
- ``start="zero"``: ``v_0 = 0`` (the optimizer convention: momentum, RMSprop, Adam).
  Early values are pulled towards zero, because the weights ``(1 - beta) * beta**k`` of
  the ``t`` samples seen so far sum to ``1 - beta**t`` rather than 1.
- ``start="first"``: ``v_1 = x_1``, then the recurrence. This is pandas
  ``Series.ewm(alpha=1 - beta, adjust=False).mean()``.

Bias correction
---------------
With the zero start, ``bias_correction=True`` returns ``v_t / (1 - beta**t)``: the
weights are renormalised to sum to 1, so the result is the weighted mean
``sum_k beta**k x_{t-k} / sum_k beta**k``. That is exactly pandas
``Series.ewm(alpha=1 - beta, adjust=True).mean()`` (pandas' default), and exactly Adam's
``m_hat = m / (1 - beta1**t)`` and ``v_hat = v / (1 - beta2**t)``. The correction has no
meaning for the first-sample start (which is not biased towards zero), so asking for
both is an error.

Implementation
--------------
The recurrence is a first-order linear recursive (IIR) filter,
``v_t - beta v_{t-1} = (1 - beta) x_t``, so the whole series is one call of
``scipy.signal.lfilter([1 - beta], [1, -beta], x)`` (a compiled loop). The first-sample
start is the same filter with the initial state ``beta * x_1``. ``1 - beta**t`` is
computed as ``-expm1(t log beta)``, which keeps its digits when ``beta`` is close to 1.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
from scipy.signal import lfilter

__all__ = ["ewma", "EWMA", "ModelEMA", "effective_window"]

_STARTS = ("zero", "first")


def _check_beta(beta, name: str = "beta") -> float:
    if (
        isinstance(beta, bool)
        or not isinstance(beta, numbers.Real)
        or not 0.0 <= float(beta) < 1.0
    ):
        raise ValueError(
            f"{name} must be a number in [0, 1) weighting the past "
            f"(alpha = 1 - {name} weights the new sample), got {beta!r}"
        )
    return float(beta)


def _check_options(start: str, bias_correction: bool) -> None:
    if start not in _STARTS:
        raise ValueError(f"start must be 'zero' or 'first', got {start!r}")
    if not isinstance(bias_correction, bool):
        raise ValueError(
            f"bias_correction must be True or False, got {bias_correction!r}"
        )
    if bias_correction and start == "first":
        raise ValueError(
            "bias_correction=True corrects the zero start only; with start='first' "
            "the average is not biased towards zero (use start='zero')"
        )


def _as_samples(x, name: str = "x") -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of numbers ({exc})") from None
    if not np.isfinite(arr.sum()):  # one fast pass; finite sum => all finite
        if np.isnan(arr).any():
            raise ValueError(
                f"{name} contains NaN at index {tuple(np.argwhere(np.isnan(arr))[0])}"
            )
        if np.isinf(arr).any():
            raise ValueError(f"{name} contains an infinite value")
    return arr


def bias_correction_factor(beta: float, t) -> np.ndarray:
    """``1 - beta**t`` for steps ``t >= 1``, accurate when ``beta`` is close to 1."""
    t = np.asarray(t, dtype=np.float64)
    if beta == 0.0:
        return np.ones_like(t)
    return -np.expm1(t * np.log(beta))


def ewma(
    x, beta: float, *, start: str = "zero", bias_correction: bool = False, axis: int = 0
) -> np.ndarray:
    """The EWMA ``v_t = beta v_{t-1} + (1 - beta) x_t`` of every prefix of ``x`` along
    ``axis``.

    Returns a float64 array of the same shape as ``x``: ``out[t-1]`` is ``v_t`` (or the
    bias-corrected ``v_t / (1 - beta**t)``). See the module docstring for ``start`` and
    ``bias_correction`` and their pandas and Adam equivalents.
    """
    beta = _check_beta(beta)
    _check_options(start, bias_correction)
    arr = _as_samples(x)
    if arr.ndim == 0:
        raise ValueError("x must have at least one dimension (a sequence of samples)")
    if not -arr.ndim <= axis < arr.ndim:
        raise ValueError(
            f"axis {axis} is out of range for x with {arr.ndim} dimension(s)"
        )
    if arr.shape[axis] == 0:
        raise ValueError("x is empty along axis: an average needs at least one sample")
    if start == "zero":
        out = lfilter([1.0 - beta], [1.0, -beta], arr, axis=axis)
    else:
        first = np.take(arr, [0], axis=axis)  # keeps the time axis, length 1
        out, _ = lfilter([1.0 - beta], [1.0, -beta], arr, axis=axis, zi=beta * first)
    if bias_correction:
        # 1 - beta**t rounds to exactly 1.0 once beta**t < 2**-54: only the first steps
        # need dividing
        n = arr.shape[axis]
        steps = np.arange(1, min(n, _steps_until_unbiased(beta)) + 1)
        shape = [1] * arr.ndim
        shape[axis] = len(steps)
        head = [slice(None)] * arr.ndim
        head[axis] = slice(0, len(steps))
        out[tuple(head)] /= bias_correction_factor(beta, steps).reshape(shape)
    return out


def _steps_until_unbiased(beta: float) -> int:
    """The first ``t`` from which ``1 - beta**t`` equals 1.0 in float64
    (``beta**t < 2**-54``)."""
    if beta == 0.0:
        return 1
    return int(np.ceil(-54 * np.log(2) / np.log(beta))) + 1


def effective_window(beta: float) -> float:
    """``1 / (1 - beta)``: the number of recent samples an EWMA with decay ``beta``
    roughly averages."""
    return 1.0 / (1.0 - _check_beta(beta))


class EWMA:
    """Streaming EWMA: ``update(x)`` folds in one sample (a number or an array) and
    returns the average.

    Fed the samples of ``x`` one at a time, the returned values equal
    ``ewma(x, beta, start=start, bias_correction=bias_correction)`` row by row.
    """

    def __init__(
        self, beta: float, *, start: str = "zero", bias_correction: bool = False
    ):
        self.beta = _check_beta(beta)
        _check_options(start, bias_correction)
        self.start = start
        self.bias_correction = bias_correction
        self.t = 0
        self._v: np.ndarray | None = None

    def update(self, x) -> float | np.ndarray:
        """Fold in sample ``x`` (its shape must match earlier samples) and return the
        current average."""
        x = _as_samples(x)
        if self._v is not None and x.shape != self._v.shape:
            raise ValueError(
                f"x has shape {x.shape}, but earlier samples had shape {self._v.shape}"
            )
        if self._v is None:
            self._v = x.copy() if self.start == "first" else (1.0 - self.beta) * x
        else:
            self._v = self.beta * self._v + (1.0 - self.beta) * x
        self.t += 1
        return self.value

    @property
    def value(self) -> float | np.ndarray:
        """The current average (bias-corrected if asked for); ValueError before the
        first sample."""
        if self._v is None:
            raise ValueError("no sample yet: call update(x) first")
        v = (
            self._v / bias_correction_factor(self.beta, self.t)
            if self.bias_correction
            else self._v
        )
        return float(v) if v.ndim == 0 else v.copy()


class ModelEMA:
    """An exponential moving average of a torch module's weights, kept in a copy at
    ``.module``.

    After each optimizer step call ``update(model)``: every parameter and floating-point
    buffer ``w`` of the copy becomes ``decay * w_avg + (1 - decay) * w`` (integer
    buffers such as BatchNorm's ``num_batches_tracked`` are copied). The average starts
    from the model's weights at construction (the first-sample start), which matches
    ``torch.optim.swa_utils.AveragedModel(model,
    multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)`` updated once with
    those weights.

    With ``bias_correction=True`` the average starts from zero instead and ``.module``
    holds the corrected read-out ``avg / (1 - decay**t)`` (the form used when the first
    weights are not trusted); before the first update it holds the model's weights.
    """

    def __init__(self, model, decay: float, *, bias_correction: bool = False):
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ValueError(
                f"model must be a torch.nn.Module, got {type(model).__name__}"
            )
        self.decay = _check_beta(decay, "decay")
        if not isinstance(bias_correction, bool):
            raise ValueError(
                f"bias_correction must be True or False, got {bias_correction!r}"
            )
        self.bias_correction = bias_correction
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0
        self._avg = None
        if bias_correction:
            self._avg = {
                k: torch.zeros_like(v)
                for k, v in self._state(self.module).items()
                if v.is_floating_point()
            }

    @staticmethod
    def _state(module) -> dict:
        return dict(module.state_dict(keep_vars=False))

    def update(self, model) -> None:
        """Fold the current weights of ``model`` (same architecture as the copy) into
        the average."""
        import torch

        source = self._state(model)
        target = self._state(self.module)
        if source.keys() != target.keys():
            raise ValueError(
                "model does not have the same parameters and buffers as the averaged "
                "copy"
            )
        self.updates += 1
        with torch.no_grad():
            for name, w in source.items():
                w = w.detach().to(target[name].device)
                if not w.is_floating_point():
                    target[name].copy_(w)
                elif self.bias_correction:
                    self._avg[name].mul_(self.decay).add_(w, alpha=1.0 - self.decay)
                    correction = float(bias_correction_factor(self.decay, self.updates))
                    target[name].copy_(self._avg[name] / correction)
                else:
                    target[name].mul_(self.decay).add_(w, alpha=1.0 - self.decay)
