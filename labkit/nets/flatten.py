"""``Flatten``: merge dimensions into one, as ``torch.nn.Flatten``."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_input, float_array
from .module import Module


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one: (N, C, H, W) -> (N,
    C*H*W) by default.

    Shape:
        - input ``(N, *dims)``
        - output: ``start_dim`` .. ``end_dim`` merged, ``(N, prod(dims))`` by default
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        x = check_input(x, "x")
        start = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < x.ndim:
            raise ValueError(
                f"x of shape {x.shape} cannot be flattened from "
                f"start_dim={self.start_dim} "
                f"to end_dim={self.end_dim}"
            )
        self._cache = x.shape
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])

    def backward(self, grad_out):
        shape = self._saved()
        g = float_array(grad_out, "grad_out")
        if g.size != math.prod(shape):
            raise ValueError(
                f"grad_out has shape {g.shape}, which does not flatten the input "
                f"{shape}"
            )
        return g.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
