"""Losses as modules: ``loss = loss_fn(input, target)`` returns the loss, and
``loss_fn.backward()`` returns dLoss/dinput (``MSELoss``, ``CrossEntropyLoss``)."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_grad, check_input, probability
from .activation import log_softmax
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    """A loss: ``forward(input, target)`` returns the loss, ``backward()`` returns
    dLoss/dinput."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS}, got {reduction!r}"
            )
        self.reduction = reduction

    def _reduce(self, losses: np.ndarray):
        """Mean or sum as a Python float, or the per-element losses for
        ``reduction='none'``."""
        if self.reduction == "none":
            return losses
        return float(losses.mean() if self.reduction == "mean" else losses.sum())

    def _upstream(self, grad_out, shape: tuple[int, ...]):
        """dLoss/d(per-element loss): 1/numel (mean), 1 (sum), or ``grad_out`` itself
        (none)."""
        if self.reduction == "none":
            return np.ones(shape) if grad_out is None else check_grad(grad_out, shape)
        scale = 1.0 if grad_out is None else float(grad_out)
        return scale / math.prod(shape) if self.reduction == "mean" else scale

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """L = mean((input - target)^2) (or sum, or elementwise); dL/dinput = 2 (input -
    target) / numel.

    Shape:
        - input: any shape; target: the same shape
        - output: a float, or the input's shape with ``reduction='none'``
    """

    def forward(self, input, target):
        x = check_input(input, "input")
        t = check_input(target, "target")
        if t.shape != x.shape:
            raise ValueError(
                f"target has shape {t.shape}, expected the input's shape {x.shape}"
            )
        diff = x - t
        self._cache = diff
        return self._reduce(diff**2)

    def backward(self, grad_out=None):
        diff = self._saved()
        return 2.0 * diff * self._upstream(grad_out, diff.shape)


class CrossEntropyLoss(_Loss):
    """L_n = -sum_c q_nc log softmax(z_n)_c for logits z (N, C); mean over n by default.

    ``target`` is either class indices (N,) of an integer dtype (q = one-hot) or class
    probabilities (N, C) of a float dtype (q = target), as in torch. With
    ``label_smoothing`` eps, q becomes (1 - eps) q + eps / C. Gradient: dL_n/dz_n =
    softmax(z_n) sum_c q_nc - q_n.

    Shape:
        - input ``(N, C)`` logits; target ``(N,)`` integer class indices or ``(N, C)``
          float class probabilities
        - output: a float, or ``(N,)`` with ``reduction='none'``
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.label_smoothing = probability(label_smoothing, "label_smoothing")

    def _target_distribution(self, target, n: int, c: int) -> np.ndarray:
        """q (N, C) from class indices or probabilities, label smoothing applied."""
        if hasattr(target, "detach"):
            target = target.detach().cpu().numpy()
        t = np.asarray(target)
        if t.ndim == 1 and np.issubdtype(t.dtype, np.integer):
            if t.shape != (n,):
                raise ValueError(
                    f"target has shape {t.shape}, expected ({n},) class indices"
                )
            if t.min() < 0 or t.max() >= c:
                raise ValueError(
                    f"target holds class indices outside [0, {c}): min {t.min()}, max "
                    f"{t.max()}"
                )
            q = np.zeros((n, c))
            q[np.arange(n), t] = 1.0
        elif t.ndim == 2 and np.issubdtype(t.dtype, np.floating):
            q = check_input(t, "target", ndim=2)
            if q.shape != (n, c):
                raise ValueError(
                    f"target has shape {q.shape}, expected ({n}, {c}) class "
                    "probabilities"
                )
        else:
            raise ValueError(
                f"target must be integer class indices of shape ({n},) or float class "
                f"probabilities of shape ({n}, {c}); got dtype {t.dtype}, shape "
                f"{t.shape}"
            )
        eps = self.label_smoothing
        return (1.0 - eps) * q + eps / c if eps else q

    def forward(self, input, target):
        z = check_input(input, "input", ndim=2, layout="(N, C) of logits")
        n, c = z.shape
        q = self._target_distribution(target, n, c)
        logp = log_softmax(z, axis=1)  # (N, C)
        self._cache = (np.exp(logp), q)
        return self._reduce(-(q * logp).sum(axis=1))

    def backward(self, grad_out=None):
        p, q = self._saved()
        upstream = self._upstream(grad_out, (p.shape[0],))
        if self.reduction == "none":
            upstream = upstream[:, None]  # (N, 1)
        return (p * q.sum(axis=1, keepdims=True) - q) * upstream

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"
