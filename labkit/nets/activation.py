"""Element-wise activations as modules (``ReLU``, ``Tanh``, ``Sigmoid``) and the
functions ``sigmoid``, ``softmax`` and ``log_softmax``, each written so that it never
overflows."""

from __future__ import annotations

import numpy as np

from .._checks import check_grad, check_input, float_array
from .module import Module


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` without overflow: ``exp(-|x|)`` never exceeds 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """log softmax(x) = (x - max x) - log sum exp(x - max x) along ``axis``, never
    overflowing."""
    x = float_array(x, "x")
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``axis``."""
    x = float_array(x, "x")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class ReLU(Module):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0 (0 at the kink, as torch).

    Shape:
        - input: any shape
        - output: the input's shape
    """

    def forward(self, x):
        x = check_input(x, "x")
        self._cache = x > 0
        return np.where(self._cache, x, 0.0)

    def backward(self, grad_out):
        positive = self._saved()
        return check_grad(grad_out, positive.shape) * positive


class Tanh(Module):
    """y = tanh(x); dy/dx = 1 - y^2.

    Shape:
        - input: any shape
        - output: the input's shape
    """

    def forward(self, x):
        y = np.tanh(check_input(x, "x"))
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._saved()
        return check_grad(grad_out, y.shape) * (1.0 - y**2)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x)), computed without overflow; dy/dx = y (1 - y).

    Shape:
        - input: any shape
        - output: the input's shape
    """

    def forward(self, x):
        y = sigmoid(check_input(x, "x"))
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._saved()
        return check_grad(grad_out, y.shape) * y * (1.0 - y)
