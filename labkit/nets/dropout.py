"""``Dropout``: inverted dropout, as ``torch.nn.Dropout``."""

from __future__ import annotations

import numpy as np

from .._checks import check_grad, check_input, probability
from ..runtime import as_generator
from .module import Module


class Dropout(Module):
    """Inverted dropout: in training y = x * m / (1 - p) with m ~ Bernoulli(1 - p);
    identity in eval.

    The scaled mask ``m / (1 - p)`` of the last forward is kept in ``self.mask`` and
    reused by backward. ``p = 1`` zeros everything (as torch); ``p = 0`` is the
    identity.

    Shape:
        - input: any shape
        - output: the input's shape
    """

    def __init__(self, p: float = 0.5, *, rng=None):
        super().__init__()
        self.p = probability(p, "p")
        self._rng = as_generator(rng)
        self.mask: np.ndarray | None = None

    def forward(self, x):
        x = check_input(x, "x")
        if not self.training or self.p == 0.0:
            self.mask = None
        elif self.p == 1.0:
            self.mask = np.zeros_like(x)
        else:
            keep = self._rng.random(x.shape) >= self.p  # True with probability 1 - p
            self.mask = keep / (1.0 - self.p)
        self._cache = x.shape
        return x if self.mask is None else x * self.mask

    def backward(self, grad_out):
        g = check_grad(grad_out, self._saved())
        return g if self.mask is None else g * self.mask

    def extra_repr(self) -> str:
        return f"p={self.p}"
