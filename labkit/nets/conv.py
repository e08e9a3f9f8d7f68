"""``Conv2d`` and ``MaxPool2d``, computed through ``im2col`` (every patch unfolded into
a row, so that a convolution is one matrix product) and its adjoint ``col2im``."""

from __future__ import annotations

import math

import numpy as np

from .._checks import (
    check_grad,
    check_input,
    check_size,
    float_array,
    integer,
    pair,
)
from ..runtime import as_generator
from .module import Module, Parameter


def _output_hw(
    h: int, w: int, kernel_size, stride, padding, name: str = "x"
) -> tuple[int, int]:
    """Output height and width: floor((size + 2 padding - kernel) / stride) + 1, at
    least 1."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(
            f"{name}: padded input {h + 2 * ph}x{w + 2 * pw} is smaller than the "
            f"kernel {kh}x{kw}"
        )
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def im2col(x, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Unfold every kernel-sized patch of x (N, C, H, W) into one row: (N*H_out*W_out,
    C*kh*kw).

    Rows run over (n, i, j) with j fastest, the output position; columns over (c, u, v),
    the position inside the patch, in the order of ``weight.reshape(out_channels, -1)``.
    So a convolution is one matrix product,
    ``im2col(x) @ weight.reshape(out_channels, -1).T``. Zero padding is applied first.
    (torch's ``F.unfold`` holds the same numbers, laid out as (N, C*kh*kw,
    H_out*W_out).)
    """
    x = check_input(x, "x", ndim=4, layout="(N, C, H, W)")
    k, s, p = (
        pair(kernel_size, "kernel_size", 1),
        pair(stride, "stride", 1),
        pair(padding, "padding", 0),
    )
    _output_hw(*x.shape[2:], k, s, p)
    return _unfold(np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))), k, s)


def _unfold(
    xp: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    """``im2col`` of an already padded (N, C, Hp, Wp) array, without checks."""
    (kh, kw), (sh, sw) = kernel_size, stride
    n, c = xp.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(
        xp, (kh, kw), axis=(2, 3)
    )  # (N, C, Hp-kh+1, Wp-kw+1, kh, kw)
    windows = windows[:, :, ::sh, ::sw]  # (N, C, H_out, W_out, kh, kw), still a view
    h_out, w_out = windows.shape[2:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c * kh * kw)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0) -> np.ndarray:
    """The adjoint of ``im2col``: add each row of cols back onto the patch it came from.

    cols (N*H_out*W_out, C*kh*kw) -> (N, C, H, W); where patches overlap the values add
    up, so ``col2im(dcols)`` is the gradient wrt x of anything computed from
    ``im2col(x)``. The loop runs over the kh*kw kernel offsets, each adding a strided
    slice (no index collides within one).
    """
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {x_shape}")
    n, c, h, w = (int(v) for v in x_shape)
    k, s, p = (
        pair(kernel_size, "kernel_size", 1),
        pair(stride, "stride", 1),
        pair(padding, "padding", 0),
    )
    h_out, w_out = _output_hw(h, w, k, s, p, name="x_shape")
    cols = float_array(cols, "cols")
    expected = (n * h_out * w_out, c * k[0] * k[1])
    if cols.shape != expected:
        raise ValueError(
            f"cols has shape {cols.shape}, expected {expected} for x_shape "
            f"{tuple(x_shape)}"
        )
    patches = cols.reshape(n, h_out, w_out, c, k[0], k[1]).transpose(
        0, 3, 4, 5, 1, 2
    )  # (N, C, kh, kw, H_out, W_out)
    xp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]))
    for u in range(k[0]):
        for v in range(k[1]):
            xp[:, :, u : u + s[0] * h_out : s[0], v : v + s[1] * w_out : s[1]] += (
                patches[:, :, u, v]
            )
    return xp[:, :, p[0] : p[0] + h, p[1] : p[1] + w]


class Conv2d(Module):
    """Cross-correlation (no kernel flip, as torch): for x (N, C_in, H, W),

    y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * xpad[n, c, i*sh + u, j*sw + v],
    computed as ``im2col(x) @ W.reshape(C_out, -1).T``; backward uses ``col2im``. weight
    is (out_channels, in_channels, kh, kw); init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    fan_in = in_channels * kh * kw, as torch.

    Shape:
        - input ``(N, C_in, H, W)``
        - output ``(N, C_out, H_out, W_out)``, ``H_out = (H + 2 padding - kh) // stride
          + 1`` (``W_out`` alike)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        bias: bool = True,
        *,
        rng=None,
    ):
        super().__init__()
        self.in_channels = integer(in_channels, "in_channels")
        self.out_channels = integer(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        rng = as_generator(rng)
        bound = 1.0 / math.sqrt(
            self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        )
        self.weight = Parameter(
            rng.uniform(
                -bound, bound, (self.out_channels, self.in_channels) + self.kernel_size
            )
        )
        self.bias = (
            Parameter(rng.uniform(-bound, bound, self.out_channels)) if bias else None
        )

    def forward(self, x):
        x = check_input(x, "x", ndim=4, layout="(N, C, H, W)")
        check_size(x, 1, self.in_channels, "x", "channels (dimension 1)")
        n, _, h, w = x.shape
        h_out, w_out = _output_hw(h, w, self.kernel_size, self.stride, self.padding)
        cols = im2col(
            x, self.kernel_size, self.stride, self.padding
        )  # (N*H_out*W_out, C_in*kh*kw)
        y = (
            cols @ self.weight.data.reshape(self.out_channels, -1).T
        )  # (N*H_out*W_out, C_out)
        if self.bias is not None:
            y += self.bias.data
        self._cache = (cols, x.shape)
        return np.ascontiguousarray(
            y.reshape(n, h_out, w_out, self.out_channels).transpose(0, 3, 1, 2)
        )

    def backward(self, grad_out):
        cols, x_shape = self._saved()
        n, h_out, w_out = (
            x_shape[0],
            *_output_hw(*x_shape[2:], self.kernel_size, self.stride, self.padding),
        )
        g = check_grad(grad_out, (n, self.out_channels, h_out, w_out))
        g2 = g.transpose(0, 2, 3, 1).reshape(
            -1, self.out_channels
        )  # (N*H_out*W_out, C_out)
        self.weight.accumulate((g2.T @ cols).reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0))
        dcols = g2 @ self.weight.data.reshape(
            self.out_channels, -1
        )  # (N*H_out*W_out, C_in*kh*kw)
        return col2im(dcols, x_shape, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, "
            f"bias={self.bias is not None}"
        )


class MaxPool2d(Module):
    """y[n, c, i, j] = max of the (kh, kw) window at (i*sh, j*sw) of x padded with -inf.

    ``stride`` defaults to ``kernel_size``; padding is at most half the kernel (as
    torch). Backward sends each output's gradient to the position of its window's
    maximum, the first one in row-major order on ties (as torch), adding where windows
    overlap.

    Shape:
        - input ``(N, C, H, W)``
        - output ``(N, C, H_out, W_out)``, ``H_out = (H + 2 padding - kh) // stride +
          1`` (``W_out`` alike)
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"padding must be at most half of kernel_size {self.kernel_size}, got "
                f"{self.padding}"
            )

    def forward(self, x):
        x = check_input(x, "x", ndim=4, layout="(N, C, H, W)")
        n, c, h, w = x.shape
        ph, pw = self.padding
        h_out, w_out = _output_hw(h, w, self.kernel_size, self.stride, self.padding)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        # each channel is pooled on its own: unfold it as a single-channel image
        images = xp.reshape(n * c, 1, h + 2 * ph, w + 2 * pw)
        cols = _unfold(
            images, self.kernel_size, self.stride
        )  # (N*C*H_out*W_out, kh*kw)
        argmax = cols.argmax(axis=1)  # the first maximum on ties
        self._cache = (argmax, x.shape)
        return cols[np.arange(cols.shape[0]), argmax].reshape(n, c, h_out, w_out)

    def backward(self, grad_out):
        argmax, (n, c, h, w) = self._saved()
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        h_out, w_out = _output_hw(h, w, self.kernel_size, self.stride, self.padding)
        g = check_grad(grad_out, (n, c, h_out, w_out))
        dcols = np.zeros((argmax.size, kh * kw))
        dcols[np.arange(argmax.size), argmax] = g.ravel()
        dxp = col2im(
            dcols, (n * c, 1, h + 2 * ph, w + 2 * pw), self.kernel_size, self.stride
        )
        return dxp.reshape(n, c, h + 2 * ph, w + 2 * pw)[:, :, ph : ph + h, pw : pw + w]

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}"
        )
