"""``BatchNorm1d``: batch normalisation over (N, C) or (N, C, L), as torch's."""

from __future__ import annotations

import numpy as np

from .._checks import check_grad, check_input, check_size, integer, probability
from .module import Module, Parameter


class BatchNorm1d(Module):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per feature, for x (N, C) or (N, C, L).

    Training: mu and the biased var are the batch statistics over N (and L); the running
    estimates become (1 - momentum) * running + momentum * batch, using the *unbiased* batch
    variance for ``running_var`` (as torch); ``momentum=None`` gives the cumulative average.
    Eval: the running estimates replace the batch statistics. ``weight`` is gamma, ``bias`` beta.
    Backward in training, with xhat = (x - mu) / sqrt(var + eps) and dxhat = gamma * dy:
    dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps).

    Shape:
        - input ``(N, C)`` or ``(N, C, L)``, ``C = num_features``
        - output: the input's shape
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        self.num_features = integer(num_features, "num_features")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else probability(momentum, "momentum")
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        c = self.num_features
        self.weight = Parameter(np.ones(c)) if self.affine else None
        self.bias = Parameter(np.zeros(c)) if self.affine else None
        tracked = self.track_running_stats
        self.register_buffer("running_mean", np.zeros(c) if tracked else None)
        self.register_buffer("running_var", np.ones(c) if tracked else None)
        self.register_buffer(
            "num_batches_tracked", np.array(0, dtype=np.int64) if tracked else None
        )

    def _update_running_stats(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        """running <- (1 - factor) running + factor batch, with the unbiased variance var m/(m-1)."""
        self.num_batches_tracked += 1
        factor = (
            1.0 / float(self.num_batches_tracked)
            if self.momentum is None
            else self.momentum
        )
        self.running_mean[...] = (1.0 - factor) * self.running_mean + factor * mean
        self.running_var[...] = (1.0 - factor) * self.running_var + factor * var * m / (
            m - 1
        )

    def forward(self, x):
        x = check_input(x, "x", ndim=(2, 3), layout="(N, C) or (N, C, L)")
        check_size(x, 1, self.num_features, "x", "features (dimension 1)")
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, self.num_features) + (1,) * (
            x.ndim - 2
        )  # broadcasts over N (and L)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            m = x.size // self.num_features
            if m < 2:
                raise ValueError(
                    f"x: batch statistics need more than 1 value per feature, got shape {x.shape}"
                )
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var, m)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        self._cache = (xhat, inv_std.reshape(shape), axes, use_batch_stats)
        if not self.affine:
            return xhat
        return xhat * self.weight.data.reshape(shape) + self.bias.data.reshape(shape)

    def backward(self, grad_out):
        xhat, inv_std, axes, used_batch_stats = self._saved()
        g = check_grad(grad_out, xhat.shape)
        if self.affine:
            self.weight.accumulate((g * xhat).sum(axis=axes))
            self.bias.accumulate(g.sum(axis=axes))
            dxhat = g * self.weight.data.reshape(inv_std.shape)
        else:
            dxhat = g
        if not used_batch_stats:  # the running statistics are constants
            return dxhat * inv_std
        return inv_std * (
            dxhat
            - dxhat.mean(axis=axes, keepdims=True)
            - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )
