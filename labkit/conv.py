"""Convolution, cross-correlation and pooling: plain reference implementations (chapter
4).

These are the slow, readable paths: each function is the formula written as loops, so a
reader can put a finger on every multiply-add. The fast im2col layers live in
``labkit.nets`` (``Conv2d``, ``MaxPool2d``) and are tested against these.

The math, in the code's symbols
-------------------------------
1-D convolution of a signal ``x`` (length N) with a kernel ``w`` (length K), indices
from 0 and entries outside the arrays taken as zero::

    full:  y[n] = sum_m x[m] * w[n - m],            n = 0 .. N + K - 2
    valid: the N - K + 1 entries n = K-1 .. N-1 whose sum never touches a padded zero
    same:  the N entries starting at n = (K - 1) // 2 (centred on "full", as
           scipy.signal does)

1-D cross-correlation slides the kernel without flipping it::

    valid: y[n] = sum_m x[n + m] * w[m],            n = 0 .. N - K

with "full" and "same" defined on ``x`` zero-padded by K - 1 on each side, exactly as
for convolution; hence ``correlate1d(x, w) == convolve1d(x, w[::-1])`` in every mode.

Deep learning's "convolution" is cross-correlation. ``conv2d`` follows
``torch.nn.functional.conv2d``: input ``x`` is ``(N, C_in, H, W)``, ``weight`` is
``(C_out, C_in, kH, kW)``, ``bias`` is ``(C_out,)``, and with stride ``s`` and zero
padding ``p``::

    y[n, o, i, j] = bias[o]
                    + sum_{c, a, b} weight[o, c, a, b] * x_pad[n, c, i*s + a, j*s + b]

where ``x_pad`` is ``x`` with ``p`` zeros added on each side of H and W. Its spatial
output size is ``conv_output_size(H, kH, s, p) = floor((H + 2p - kH) / s) + 1``, and
likewise for W.

``max_pool2d`` follows ``torch.nn.functional.max_pool2d`` (padding with -inf, stride
defaults to the kernel size) and uses the same output-size formula.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import check_input, integer, pair

__all__ = ["conv_output_size", "convolve1d", "correlate1d", "conv2d", "max_pool2d"]

_MODES = ("full", "valid", "same")


# --- output size ----------------------------------------------------------------------


def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int = 0
) -> int:
    """Output length floor((size + 2*padding - kernel_size) / stride) + 1 of a conv or
    pool."""
    size = integer(size, "size")
    kernel_size = integer(kernel_size, "kernel_size")
    stride = integer(stride, "stride")
    padding = integer(padding, "padding", 0)
    if kernel_size > size + 2 * padding:
        raise ValueError(
            f"kernel_size {kernel_size} is larger than the padded input "
            f"size + 2*padding = {size + 2 * padding}"
        )
    return (size + 2 * padding - kernel_size) // stride + 1


# --- 1-D ------------------------------------------------------------------------------


def _check_1d(x, w, mode: str) -> tuple[np.ndarray, np.ndarray]:
    x, w = check_input(x, "x", ndim=1), check_input(w, "w", ndim=1)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if mode == "valid" and len(w) > len(x):
        raise ValueError(
            f"mode 'valid' needs len(w) <= len(x), got {len(w)} > {len(x)}"
        )
    return x, w


def _crop(full: np.ndarray, n_x: int, n_w: int, mode: str) -> np.ndarray:
    """The "full" result (length n_x + n_w - 1) cut down to ``mode``."""
    if mode == "full":
        return full
    if mode == "valid":
        return full[n_w - 1 : n_x]  # the n_x - n_w + 1 sums that use no padded zero
    start = (n_w - 1) // 2  # "same": n_x entries, centred
    return full[start : start + n_x]


def convolve1d(x, w, mode: str = "full") -> np.ndarray:
    """1-D convolution y[n] = sum_m x[m] w[n - m] (flip and slide), cut to ``mode``."""
    x, w = _check_1d(x, w, mode)
    N, K = len(x), len(w)
    full = np.zeros(N + K - 1)
    for n in range(N + K - 1):
        for m in range(N):
            if 0 <= n - m < K:  # w is zero outside 0 .. K-1
                full[n] += x[m] * w[n - m]
    return _crop(full, N, K, mode)


def correlate1d(x, w, mode: str = "valid") -> np.ndarray:
    """1-D cross-correlation y[n] = sum_m x_pad[n + m] w[m] (slide, no flip), cut to
    ``mode``."""
    x, w = _check_1d(x, w, mode)
    N, K = len(x), len(w)
    x_pad = np.concatenate([np.zeros(K - 1), x, np.zeros(K - 1)])  # (N + 2K - 2,)
    full = np.array([x_pad[n : n + K] @ w for n in range(N + K - 1)])
    return _crop(full, N, K, mode)


# --- 2-D, batched, multi-channel ------------------------------------------------------


def _pad_hw(x: np.ndarray, pad_h: int, pad_w: int, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of an (N, C, H, W) array with ``value``."""
    return np.pad(
        x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)), constant_values=value
    )


def conv2d(x, weight, bias=None, stride=1, padding=0) -> np.ndarray:
    """Cross-correlation y[n,o,i,j] = bias[o] + sum_{c,a,b} weight[o,c,a,b]
    x_pad[n,c,i*s+a,j*s+b].

    Same arguments and result as ``torch.nn.functional.conv2d`` (no flip); ``stride``
    and ``padding`` are an int or an ``(h, w)`` pair. Four nested loops: slow, and meant
    to be read.
    """
    x = check_input(x, "x", ndim=4)
    weight = check_input(weight, "weight", ndim=4)
    N, C_in, H, W = x.shape
    C_out, C_w, kH, kW = weight.shape
    if C_w != C_in:
        raise ValueError(
            f"weight has {C_w} input channels but x has {C_in}: weight must be "
            f"(C_out, C_in, kH, kW) = ({C_out}, {C_in}, kH, kW)"
        )
    if bias is None:
        bias = np.zeros(C_out)
    bias = check_input(bias, "bias", ndim=1)
    if bias.shape != (C_out,):
        raise ValueError(f"bias must have shape ({C_out},), got {bias.shape}")
    sH, sW = pair(stride, "stride", 1)
    pH, pW = pair(padding, "padding", 0)
    H_out = conv_output_size(H, kH, sH, pH)
    W_out = conv_output_size(W, kW, sW, pW)

    x_pad = _pad_hw(x, pH, pW)  # (N, C_in, H + 2pH, W + 2pW)
    y = np.empty((N, C_out, H_out, W_out))
    for n in range(N):
        for o in range(C_out):
            for i in range(H_out):
                for j in range(W_out):
                    patch = x_pad[
                        n, :, i * sH : i * sH + kH, j * sW : j * sW + kW
                    ]  # (C_in, kH, kW)
                    y[n, o, i, j] = bias[o] + np.sum(weight[o] * patch)
    return y


def max_pool2d(x, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Max pooling y[n,c,i,j] = max_{a,b} x_pad[n,c,i*s+a,j*s+b]; stride defaults to
    kernel_size.

    Same result as ``torch.nn.functional.max_pool2d`` (padding counts as -inf, so it
    never wins).
    """
    x = check_input(x, "x", ndim=4)
    kH, kW = pair(kernel_size, "kernel_size", 1)
    sH, sW = (kH, kW) if stride is None else pair(stride, "stride", 1)
    pH, pW = pair(padding, "padding", 0)
    if 2 * pH > kH or 2 * pW > kW:
        raise ValueError(
            f"padding must be at most half the kernel size, got padding "
            f"({pH}, {pW}) for kernel_size ({kH}, {kW})"
        )
    N, C, H, W = x.shape
    H_out = conv_output_size(H, kH, sH, pH)
    W_out = conv_output_size(W, kW, sW, pW)

    x_pad = _pad_hw(x, pH, pW, value=-math.inf)  # (N, C, H + 2pH, W + 2pW)
    y = np.empty((N, C, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            window = x_pad[
                :, :, i * sH : i * sH + kH, j * sW : j * sW + kW
            ]  # (N, C, kH, kW)
            y[:, :, i, j] = window.max(axis=(2, 3))
    return y
