"""``BatchNorm1d`` (statistics over the batch) and ``LayerNorm`` (over each example's
features), as torch's."""

from __future__ import annotations

import numpy as np

from .._checks import check_grad, check_input, check_size, integer, probability
from .module import Module, Parameter


class BatchNorm1d(Module):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per feature, for x (N, C) or (N, C,
    L).

    Training: mu and the biased var are the batch statistics over N (and L); the running
    estimates become (1 - momentum) * running + momentum * batch, using the *unbiased*
    batch variance for ``running_var`` (as torch); ``momentum=None`` gives the
    cumulative average. Eval: the running estimates replace the batch statistics.
    ``weight`` is gamma, ``bias`` beta. Backward in training, with xhat = (x - mu) /
    sqrt(var + eps) and dxhat = gamma * dy: dx = (dxhat - mean(dxhat) - xhat *
    mean(dxhat * xhat)) / sqrt(var + eps).

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
        """running <- (1 - factor) running + factor batch, with the unbiased variance
        var m/(m-1)."""
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
                    "x: batch statistics need more than 1 value per feature, got "
                    f"shape {x.shape}"
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
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class LayerNorm(Module):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, statistics per example.

    The mean and the biased variance (divide by the number of entries) are taken over
    the last ``len(normalized_shape)`` dimensions of each example. Unlike batch
    normalisation, the statistics belong to one example, not to the batch: the layer
    behaves the same in training and evaluation, keeps no running statistics and works
    for a batch of one.
    With xhat the standardised input, sigma = sqrt(var + eps) and means taken over the
    normalised dimensions, the backward pass is

        dxhat = grad_out * weight,
        dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sigma,
        dweight = sum of grad_out * xhat over the leading dimensions,
        dbias = sum of grad_out over the leading dimensions.

    ``weight`` starts at ones and ``bias`` at zeros, as in torch.

    Shape:
        - Input: ``(*, *normalized_shape)``
        - Output: same as the input
        - weight, bias: ``normalized_shape``

    Examples:
        >>> ln = LayerNorm(4)
        >>> y = ln(np.array([[1.0, 2.0, 3.0, 4.0]]))
        >>> float(abs(y.mean())) < 1e-12
        True
    """

    def __init__(
        self,
        normalized_shape,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape:
            raise ValueError(
                "normalized_shape must be a positive integer or a non-empty tuple of "
                f"them, got {normalized_shape!r}"
            )
        self.normalized_shape = tuple(
            integer(n, "normalized_shape") for n in normalized_shape
        )
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.weight = (
            Parameter(np.ones(self.normalized_shape)) if elementwise_affine else None
        )
        self.bias = (
            Parameter(np.zeros(self.normalized_shape))
            if elementwise_affine and bias
            else None
        )

    def forward(self, input):
        x = check_input(input, "input")
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k :] != self.normalized_shape or x.ndim < k:
            raise ValueError(
                f"input has shape {x.shape}; its last {k} dimension(s) must be "
                f"normalized_shape {self.normalized_shape}"
            )
        axes = tuple(range(x.ndim - k, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        sigma = np.sqrt(((x - mean) ** 2).mean(axis=axes, keepdims=True) + self.eps)
        xhat = (x - mean) / sigma
        self._cache = (xhat, sigma, axes)
        y = xhat * self.weight.data if self.weight is not None else xhat
        return y + self.bias.data if self.bias is not None else y

    def backward(self, grad_out):
        xhat, sigma, axes = self._saved()
        g = check_grad(grad_out, xhat.shape)
        leading = tuple(range(xhat.ndim - len(axes)))
        if self.weight is not None:
            self.weight.accumulate((g * xhat).sum(axis=leading))
            g_hat = g * self.weight.data  # dL/dxhat
        else:
            g_hat = g
        if self.bias is not None:
            self.bias.accumulate(g.sum(axis=leading))
        return (
            g_hat
            - g_hat.mean(axis=axes, keepdims=True)
            - xhat * (g_hat * xhat).mean(axis=axes, keepdims=True)
        ) / sigma

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}"
        )
