"""Units before gradients: step units, logic gates built from NAND, the perceptron, and
the numerically stable pieces of the one-unit network (logistic regression).

The unit
--------
A unit takes an input ``x`` in R^d, forms the pre-activation ``z = w . x + b`` and
outputs ``a = g(z)`` for an activation ``g``. The set ``{x : w . x + b = 0}`` is a
hyperplane, so a unit is a linear classifier whose non-linearity decides what it outputs
on either side (a hard 0/1 for the step, a probability for the sigmoid).

Shapes (batch first, as in PyTorch): ``X`` is ``(N, d)``. A single unit has ``w`` of
shape ``(d,)`` and a scalar ``b`` and returns ``(N,)``. A layer has ``weight`` of shape
``(out_features, in_features)`` and ``bias`` of shape ``(out_features,)``, like
``torch.nn.Linear``, and computes ``g(X @ weight.T + bias)`` of shape
``(N, out_features)``.

The step function
-----------------
``U(z) = 1 if z > 0 else 0``, so ``U(0) = 0``; this is ``torch.heaviside(z, values=0)``.
Weights for a gate should keep every row of the truth table away from ``z = 0``, so the
gate does not depend on this convention.

Gates
-----
``NAND(x1, x2) = U(3 - 2 x1 - 2 x2)``. Everything else is wired from NAND units only:
``NOT x = NAND(x, x)``, ``AND = NOT(NAND)``, ``OR(x1, x2) = NAND(NOT x1, NOT x2)`` (De
Morgan) and ``XOR(x1, x2) = NAND(NAND(x1, m), NAND(x2, m))`` with ``m = NAND(x1, x2)``:
four units in three layers.

The perceptron
--------------
Rosenblatt's rule with labels ``y`` in {0, 1}: visit the samples in order; for each,
``yhat = U(w . x + b)``, ``w <- w + lr (y - yhat) x``, ``b <- b + lr (y - yhat)``. Only
mistakes change the weights. On linearly separable data it makes finitely many mistakes
(Novikoff's theorem); on data that are not, such as XOR, it never stops making them.

Linear separability
-------------------
``separation_margin(X, y)`` solves the linear programme: maximise ``t`` subject to
``s_i (w . x_i + b) >= t`` for every sample, ``-1 <= w_j <= 1``, with
``s_i = 2 y_i - 1``. Some hyperplane strictly separates the two classes exactly when the
optimum ``t*`` is positive.

Stable sigmoid and binary cross-entropy
---------------------------------------
``sigmoid(z) = 1 / (1 + exp(-z))`` is evaluated as ``1 / (1 + e)`` for ``z >= 0`` and
``e / (1 + e)`` for ``z < 0`` with ``e = exp(-|z|) <= 1``, so nothing overflows. The
binary cross-entropy of a logit ``z`` against a target ``y`` in [0, 1],
``-[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]``, equals
``max(z, 0) - z y + log(1 + exp(-|z|))``, which is finite for every finite ``z``; its
derivative is ``sigmoid(z) - y``. ``BCEWithLogitsLoss`` is the same loss as a module
with ``forward`` and ``backward``, mirroring ``torch.nn.BCEWithLogitsLoss`` the way
``labkit.nets`` mirrors torch.nn (``labkit.nets`` has the multi-class
``CrossEntropyLoss``; this is its one-logit sibling).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .nets import Module

__all__ = [
    "step",
    "unit",
    "layer",
    "step_network",
    "compose_affine",
    "truth_table",
    "NAND_WEIGHT",
    "NAND_BIAS",
    "nand",
    "not_",
    "and_",
    "or_",
    "xor",
    "XOR_NAND_UNITS",
    "XOR_STEP_LAYERS",
    "PerceptronResult",
    "perceptron",
    "separation_margin",
    "sigmoid",
    "binary_cross_entropy_with_logits",
    "BCEWithLogitsLoss",
]


# --- input checks ---------------------------------------------------------------------


def _array(value, name: str, ndim: int | None = None) -> np.ndarray:
    """``value`` as a finite, non-empty float64 array, with ``ndim`` dimensions if
    given."""
    arr = np.asarray(value, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must contain only finite numbers (no NaN or inf)")
    return arr


def _binary(value, name: str) -> np.ndarray:
    """``value`` as a float64 array whose entries are all 0 or 1."""
    arr = _array(value, name)
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(
            f"{name} must contain only 0 and 1, got values {np.unique(arr)[:5]}"
        )
    return arr


# --- units, layers, networks ----------------------------------------------------------


def step(z) -> np.ndarray:
    """U(z) = 1 where z > 0, else 0 (so U(0) = 0), as float64."""
    z = np.asarray(z, dtype=np.float64)
    if np.isnan(z).any():
        raise ValueError("z must not contain NaN")
    return (z > 0).astype(np.float64)


def unit(X, w, b, activation: Callable = step) -> np.ndarray:
    """One unit on a batch: activation(X @ w + b); X (N, d), w (d,), b scalar ->
    (N,)."""
    X = _array(X, "X", ndim=2)
    w = _array(w, "w", ndim=1)
    b = float(_array(b, "b", ndim=0))
    if w.shape[0] != X.shape[1]:
        raise ValueError(f"w has {w.shape[0]} entries but X has {X.shape[1]} features")
    return activation(X @ w + b)


def layer(X, weight, bias, activation: Callable = step) -> np.ndarray:
    """A layer of units: activation(X @ weight.T + bias); weight (out, in) -> output (N,
    out)."""
    X = _array(X, "X", ndim=2)
    weight = _array(weight, "weight", ndim=2)
    bias = _array(bias, "bias", ndim=1)
    if weight.shape[1] != X.shape[1]:
        raise ValueError(
            f"weight has shape {weight.shape} (out, in) but X has {X.shape[1]} features"
        )
    if bias.shape[0] != weight.shape[0]:
        raise ValueError(
            f"bias has {bias.shape[0]} entries, expected {weight.shape[0]}"
        )
    return activation(X @ weight.T + bias)  # (N, out)


def step_network(X, layers, *, return_hidden: bool = False):
    """Feed X through step layers [(weight, bias), ...]; the output, or every layer's
    output."""
    if len(layers) == 0:
        raise ValueError("layers must hold at least one (weight, bias) pair")
    outputs = []
    A = X
    for weight, bias in layers:
        A = layer(A, weight, bias, step)
        outputs.append(A)
    return outputs if return_hidden else A


def compose_affine(layers) -> tuple[np.ndarray, np.ndarray]:
    """The single affine map (W, c) equal to the stack x -> W_L(...(W_1 x + b_1)...) +
    b_L.

    W = W_L ... W_1 and c = W_L(...(W_2 b_1 + b_2)...) + b_L, so the stack applied to a
    batch equals X @ W.T + c.
    """
    if len(layers) == 0:
        raise ValueError("layers must hold at least one (weight, bias) pair")
    W = None
    c = None
    for i, (weight, bias) in enumerate(layers):
        weight = _array(weight, f"layers[{i}] weight", ndim=2)
        bias = _array(bias, f"layers[{i}] bias", ndim=1)
        if bias.shape[0] != weight.shape[0]:
            raise ValueError(
                f"layers[{i}] bias has {bias.shape[0]} entries, expected "
                f"{weight.shape[0]}"
            )
        if W is None:
            W, c = weight.copy(), bias.copy()
            continue
        if weight.shape[1] != W.shape[0]:
            raise ValueError(
                f"layers[{i}] weight has shape {weight.shape} but the previous "
                f"layer has {W.shape[0]} outputs"
            )
        W, c = weight @ W, weight @ c + bias
    return W, c


def truth_table(n: int) -> np.ndarray:
    """Every binary input of length n, one per row, in counting order: (2**n, n)
    float64."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 20:
        raise ValueError(f"n must be an integer between 1 and 20, got {n!r}")
    return np.array(list(itertools.product((0.0, 1.0), repeat=int(n))))


# --- logic gates from NAND ------------------------------------------------------------

NAND_WEIGHT = np.array([-2.0, -2.0])
NAND_BIAS = 3.0


def nand(x1, x2) -> np.ndarray:
    """NAND(x1, x2) = U(3 - 2 x1 - 2 x2), elementwise on arrays of 0s and 1s."""
    x1, x2 = np.broadcast_arrays(_binary(x1, "x1"), _binary(x2, "x2"))
    X = np.stack([x1.ravel(), x2.ravel()], axis=1)  # (N, 2)
    return unit(X, NAND_WEIGHT, NAND_BIAS).reshape(x1.shape)


def not_(x) -> np.ndarray:
    """NOT x = NAND(x, x)."""
    return nand(x, x)


def and_(x1, x2) -> np.ndarray:
    """AND(x1, x2) = NOT(NAND(x1, x2)) = NAND(m, m) with m = NAND(x1, x2)."""
    return not_(nand(x1, x2))


def or_(x1, x2) -> np.ndarray:
    """OR(x1, x2) = NAND(NOT x1, NOT x2), De Morgan's law."""
    return nand(not_(x1), not_(x2))


def xor(x1, x2) -> np.ndarray:
    """XOR(x1, x2) = NAND(NAND(x1, m), NAND(x2, m)) with m = NAND(x1, x2)."""
    m = nand(x1, x2)
    return nand(nand(x1, m), nand(x2, m))


XOR_NAND_UNITS = 4  # the number of NAND units ``xor`` uses

# XOR as a two-layer step network in torch's shapes: hidden units OR and NAND, output
# AND.
XOR_STEP_LAYERS = (
    (
        np.array([[2.0, 2.0], [-2.0, -2.0]]),
        np.array([-1.0, 3.0]),
    ),  # OR, NAND: (2, 2), (2,)
    (np.array([[2.0, 2.0]]), np.array([-3.0])),  # AND: (1, 2), (1,)
)


# --- the perceptron and linear separability -------------------------------------------


@dataclass(frozen=True)
class PerceptronResult:
    """What ``perceptron`` learned: final weights, and per epoch the mistakes and the
    weights."""

    weight: np.ndarray  # (d,)
    bias: float
    mistakes: np.ndarray  # (epochs,) int64: mistakes made during each epoch
    weights: np.ndarray  # (epochs, d): w after each epoch
    biases: np.ndarray  # (epochs,): b after each epoch


def perceptron(X, y, *, epochs: int = 20, lr: float = 1.0) -> PerceptronResult:
    """Rosenblatt's rule from w = 0, b = 0: on each mistake w += lr (y - yhat) x, b +=
    lr (y - yhat)."""
    X = _array(X, "X", ndim=2)
    y = _binary(y, "y")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    if (
        isinstance(epochs, bool)
        or not isinstance(epochs, (int, np.integer))
        or epochs < 1
    ):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    w, b = np.zeros(X.shape[1]), 0.0
    mistakes = np.zeros(epochs, dtype=np.int64)
    weights, biases = np.zeros((epochs, X.shape[1])), np.zeros(epochs)
    for epoch in range(epochs):
        for x_i, y_i in zip(X, y):
            error = y_i - float(x_i @ w + b > 0)  # -1, 0 or +1
            if error:
                w = w + lr * error * x_i
                b = b + lr * error
                mistakes[epoch] += 1
        weights[epoch], biases[epoch] = w, b
    return PerceptronResult(w, float(b), mistakes, weights, biases)


def separation_margin(X, y) -> float:
    """max t s.t. (2 y_i - 1)(w . x_i + b) >= t for all i, ``|w_j| <= 1``: positive iff
    separable."""
    X = _array(X, "X", ndim=2)
    y = _binary(y, "y")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    if y.min() == y.max():
        raise ValueError("y must contain both classes, 0 and 1")
    n, d = X.shape
    s = 2.0 * y - 1.0
    # variables v = (w_1..w_d, b, t); constraint t - s_i (w . x_i + b) <= 0
    A_ub = np.hstack([-s[:, None] * X, -s[:, None], np.ones((n, 1))])
    cost = np.zeros(d + 2)
    cost[-1] = -1.0  # maximise t
    bounds = [(-1.0, 1.0)] * d + [(None, None), (None, None)]
    from scipy.optimize import linprog  # here: scipy.optimize takes half a second

    result = linprog(cost, A_ub=A_ub, b_ub=np.zeros(n), bounds=bounds, method="highs")
    if (
        not result.success
    ):  # pragma: no cover - the programme is always feasible and bounded
        raise RuntimeError(f"linear programme failed: {result.message}")
    return float(result.x[-1])


# --- stable sigmoid and binary cross-entropy ------------------------------------------


def sigmoid(z) -> np.ndarray:
    """sigmoid(z) = 1 / (1 + exp(-z)), evaluated with ``e = exp(-|z|)`` so nothing
    overflows."""
    z = np.asarray(z, dtype=np.float64)
    if np.isnan(z).any():
        raise ValueError("z must not contain NaN")
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def binary_cross_entropy_with_logits(z, y) -> float:
    """``mean(max(z, 0) - z y + log1p(exp(-|z|)))`` over the batch: the BCE of
    sigmoid(z) and y."""
    z = _array(z, "z")
    y = _array(y, "y")
    if y.shape != z.shape:
        raise ValueError(f"y must have the shape of z, {z.shape}, got {y.shape}")
    if y.min() < 0 or y.max() > 1:
        raise ValueError("y must lie in [0, 1]")
    return float(np.mean(np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))))


class BCEWithLogitsLoss(Module):
    """``L = mean (or sum) of max(z, 0) - z y + log1p(exp(-|z|))``; dL/dz = (sigmoid(z)
    - y) / numel.

    ``loss = loss_fn(z, y)`` returns a float for logits ``z`` and targets ``y`` in [0,
    1] of the same shape; ``loss_fn.backward()`` returns dL/dz, like
    ``labkit.nets.CrossEntropyLoss``.
    """

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction

    def forward(self, input, target):
        z = _array(input, "input")
        y = _array(target, "target")
        if y.shape != z.shape:
            raise ValueError(
                f"target has shape {y.shape}, expected the input's shape {z.shape}"
            )
        if y.min() < 0 or y.max() > 1:
            raise ValueError("target must lie in [0, 1]")
        self._cache = (z, y)
        losses = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
        return float(losses.mean() if self.reduction == "mean" else losses.sum())

    def backward(self, grad_out=None):
        z, y = self._saved()
        scale = 1.0 if grad_out is None else float(grad_out)
        if self.reduction == "mean":
            scale /= z.size
        return (sigmoid(z) - y) * scale

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
