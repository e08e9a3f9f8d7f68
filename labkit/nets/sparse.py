"""Embedding: a lookup table of trainable vectors, one row per token id."""

from __future__ import annotations

import numpy as np

from .._checks import check_grad, integer
from ..runtime import as_generator
from .module import Module, Parameter


class Embedding(Module):
    """y[..., :] = weight[input[...], :]: row ``i`` of the table is token i's vector.

    Equivalent to multiplying a one-hot row vector by ``weight``, without building it.
    The backward pass adds each upstream row into the row it was read from
    (``np.add.at``, so a token that occurs twice collects both gradients); there is no
    gradient for the integer input. Row ``padding_idx``, if given, starts at zero and
    never receives a gradient, as in torch. Initialised like torch: weight ~ N(0, 1).

    Shape:
        - Input: ``(*)``, an integer array of token ids in ``[0, num_embeddings)``
        - Output: ``(*, embedding_dim)``
        - weight: ``(num_embeddings, embedding_dim)``

    Examples:
        >>> emb = Embedding(10, 3, rng=0)
        >>> emb(np.array([[1, 2], [1, 9]])).shape
        (2, 2, 3)
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx=None, *, rng=None
    ):
        super().__init__()
        self.num_embeddings = integer(num_embeddings, "num_embeddings")
        self.embedding_dim = integer(embedding_dim, "embedding_dim")
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(
                padding_idx, (int, np.integer)
            ):
                raise ValueError(f"padding_idx must be an integer, got {padding_idx!r}")
            if not -self.num_embeddings <= padding_idx < self.num_embeddings:
                raise ValueError(
                    f"padding_idx must be in [-{self.num_embeddings}, "
                    f"{self.num_embeddings}), got {padding_idx}"
                )
            padding_idx = int(padding_idx) % self.num_embeddings
        self.padding_idx = padding_idx
        table = as_generator(rng).normal(size=(self.num_embeddings, self.embedding_dim))
        if padding_idx is not None:
            table[padding_idx] = 0.0
        self.weight = Parameter(table)

    def _ids(self, input) -> np.ndarray:
        if hasattr(input, "detach"):  # a torch tensor
            input = input.detach().cpu().numpy()
        ids = np.asarray(input)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(
                f"input must be an integer array of token ids, got dtype {ids.dtype}"
            )
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_embeddings):
            raise ValueError(
                f"input holds ids outside [0, {self.num_embeddings}): "
                f"min {ids.min()}, max {ids.max()}"
            )
        return ids

    def forward(self, input):
        ids = self._ids(input)
        self._cache = ids
        return self.weight.data[ids]  # (*, embedding_dim)

    def backward(self, grad_out):
        """Accumulate dL/dweight; return None (integer ids have no gradient)."""
        ids = self._saved()
        g = check_grad(grad_out, ids.shape + (self.embedding_dim,))
        dweight = np.zeros_like(self.weight.data)
        np.add.at(dweight, ids.reshape(-1), g.reshape(-1, self.embedding_dim))
        if self.padding_idx is not None:
            dweight[self.padding_idx] = 0.0
        self.weight.accumulate(dweight)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
