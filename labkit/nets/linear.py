"""``Linear`` and ``Identity``."""

from __future__ import annotations

import math

from .._checks import check_grad, check_input, check_size, integer
from ..runtime import as_generator
from .module import Module, Parameter


class Linear(Module):
    """y = x W^T + b for x of shape ``(*, in_features)``; W is
    ``(out_features, in_features)``.

    Initialised like torch: W and b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).

    Shape:
        - input ``(*, in_features)``: any leading dimensions
        - output ``(*, out_features)``
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, rng=None
    ):
        super().__init__()
        self.in_features = integer(in_features, "in_features")
        self.out_features = integer(out_features, "out_features")
        rng = as_generator(rng)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(
            rng.uniform(-bound, bound, (self.out_features, self.in_features))
        )
        self.bias = (
            Parameter(rng.uniform(-bound, bound, self.out_features)) if bias else None
        )

    def forward(self, x):
        x = check_input(x, "x", ndim=None)
        if x.ndim == 0:
            raise ValueError(
                "x must have at least 1 dimension (*, in_features), got a scalar"
            )
        check_size(x, -1, self.in_features, "x", "features in its last dimension")
        self._cache = x
        y = x @ self.weight.data.T  # (*, out_features)
        return y + self.bias.data if self.bias is not None else y

    def backward(self, grad_out):
        x = self._saved()
        g = check_grad(grad_out, x.shape[:-1] + (self.out_features,))
        g2 = g.reshape(-1, self.out_features)  # (M, out) with M = prod(*)
        self.weight.accumulate(g2.T @ x.reshape(-1, self.in_features))
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0))
        return g @ self.weight.data  # (*, in_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module):
    """y = x; backward passes the gradient through.

    Shape:
        - input: any shape
        - output: the input's shape
    """

    def forward(self, x):
        x = check_input(x, "x")
        self._cache = x.shape
        return x

    def backward(self, grad_out):
        return check_grad(grad_out, self._saved())
