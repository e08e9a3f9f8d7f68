"""Chapter 4 exercises: convolutional networks.

Every expected value comes from torch (float64) on seeded random inputs: tensor shapes for the
output-size formula, ``F.conv1d`` / ``F.conv2d`` / ``F.max_pool2d`` / ``F.unfold`` for forwards,
and autograd for the pooling mask and the kernel gradient. The references below are model numpy
solutions written the way a learner would; the test suite holds them to these cases.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import Case, exercise
from ._oracle import float64_tensor as _t


# --- 4.1 output size --------------------------------------------------------------------------


def _conv_output_size(H, k, s, p):
    H, k, s, p = (np.asarray(v, dtype=np.int64) for v in (H, k, s, p))
    return (H + 2 * p - k) // s + 1


def _torch_output_size(H: int, k: int, s: int, p: int) -> int:
    out = F.conv1d(
        torch.zeros(1, 1, H, dtype=torch.float64),
        torch.zeros(1, 1, k, dtype=torch.float64),
        stride=s,
        padding=p,
    )
    return out.shape[-1]


@exercise(
    "4.1",
    title="Output size of a convolution",
    points=1,
    function="conv_output_size",
    reference=_conv_output_size,
    hints=(
        "Count window positions: floor((H + 2p - k) / s) + 1, with integer (floor) "
        "division.",
    ),
)
def _cases_4_1():
    rng = np.random.default_rng(401)
    cases = []
    for label, n, max_stride in [
        ("stride 1, 12 layers", 12, 1),
        ("strides 1-4, 30 layers", 30, 4),
    ]:
        H = rng.integers(1, 65, size=n)
        k = rng.integers(1, 8, size=n)
        p = rng.integers(0, 4, size=n)
        k = np.minimum(k, H + 2 * p)  # a kernel must fit in the padded input
        s = rng.integers(1, max_stride + 1, size=n)
        expected = np.array(
            [_torch_output_size(*map(int, c)) for c in zip(H, k, s, p)], dtype=np.int64
        )
        cases.append(Case(label, (H, k, s, p), expected))
    edge = [
        np.array(v, dtype=np.int64)
        for v in ([6, 7, 1, 28, 5], [3, 3, 1, 5, 5], [2, 2, 1, 1, 3], [0, 0, 0, 2, 1])
    ]
    expected = np.array(
        [_torch_output_size(*map(int, c)) for c in zip(*edge)], dtype=np.int64
    )
    cases.append(
        Case(
            "edge cases (stride that does not divide, 1x1 input, 'same' padding)",
            tuple(edge),
            expected,
        )
    )
    return cases


# --- 4.2 1-D valid cross-correlation ----------------------------------------------------------


def _correlate1d_valid(x, w):
    K = len(w)
    return np.array([x[n : n + K] @ w for n in range(len(x) - K + 1)])


@exercise(
    "4.2",
    title="1-D cross-correlation, 'valid' mode",
    points=1,
    function="correlate1d_valid",
    reference=_correlate1d_valid,
    hints=(
        "y[n] = sum_m x[n + m] * w[m] for n = 0 .. N - K; the kernel is not flipped.",
    ),
)
def _cases_4_2():
    rng = np.random.default_rng(402)
    cases = []
    for N, K in [(10, 3), (16, 4), (7, 7), (9, 1)]:
        x, w = rng.normal(size=N), rng.normal(size=K)
        expected = F.conv1d(_t(x)[None, None], _t(w)[None, None])[0, 0].numpy()
        cases.append(Case(f"N={N}, K={K}", (x, w), expected))
    return cases


# --- 4.3 2-D single-channel cross-correlation with stride and padding -------------------------


def _conv2d_single(x, w, stride, padding):
    x = np.pad(x, padding)
    kH, kW = w.shape
    H_out = (x.shape[0] - kH) // stride + 1
    W_out = (x.shape[1] - kW) // stride + 1
    y = np.zeros((H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            y[i, j] = np.sum(
                x[i * stride : i * stride + kH, j * stride : j * stride + kW] * w
            )
    return y


@exercise(
    "4.3",
    title="2-D cross-correlation with stride and padding",
    points=2,
    function="conv2d_single",
    reference=_conv2d_single,
    hints=(
        "Zero-pad x by `padding` on all four sides, then slide the (unflipped) kernel "
        "in "
        "steps of `stride`; the output is floor((H + 2p - kH) / s) + 1 high.",
    ),
)
def _cases_4_3():
    rng = np.random.default_rng(403)
    cases = []
    for H, W, kH, kW, s, p in [
        (5, 5, 3, 3, 1, 0),
        (6, 7, 2, 3, 1, 1),
        (9, 8, 3, 3, 2, 1),
        (10, 10, 4, 2, 3, 2),
    ]:
        x, w = rng.normal(size=(H, W)), rng.normal(size=(kH, kW))
        expected = F.conv2d(_t(x)[None, None], _t(w)[None, None], stride=s, padding=p)[
            0, 0
        ].numpy()
        cases.append(
            Case(
                f"{H}x{W} image, {kH}x{kW} kernel, stride {s}, padding {p}",
                (x, w, s, p),
                expected,
            )
        )
    return cases


# --- 4.4 max pooling with the argmax mask -----------------------------------------------------


def _max_pool2d_with_mask(x, kernel_size):
    N, C, H, W = x.shape
    k = kernel_size
    H_out, W_out = H // k, W // k
    windows = x[:, :, : H_out * k, : W_out * k].reshape(N, C, H_out, k, W_out, k)
    out = windows.max(axis=(3, 5))  # (N, C, H_out, W_out)
    mask = np.zeros(x.shape, dtype=bool)
    is_max = windows == out[:, :, :, None, :, None]  # (N, C, H_out, k, W_out, k)
    mask[:, :, : H_out * k, : W_out * k] = is_max.reshape(N, C, H_out * k, W_out * k)
    return out, mask


@exercise(
    "4.4",
    title="Max pooling and its argmax mask",
    points=2,
    function="max_pool2d_with_mask",
    reference=_max_pool2d_with_mask,
    hints=(
        "Windows do not overlap (stride = kernel_size) and leftover rows/columns are "
        "dropped; the mask is True exactly where a window's maximum sits, False "
        "elsewhere.",
    ),
)
def _cases_4_4():
    rng = np.random.default_rng(404)
    cases = []
    for shape, k in [
        ((1, 1, 4, 4), 2),
        ((2, 3, 6, 8), 2),
        ((2, 2, 7, 9), 3),
        ((3, 1, 5, 5), 2),
    ]:
        x = rng.normal(size=shape)
        xt = _t(x).requires_grad_(True)
        out = F.max_pool2d(xt, k)
        out.sum().backward()
        # each input that is some window's max gets gradient 1 (windows do not overlap)
        cases.append(
            Case(
                f"x of shape {shape}, kernel_size {k}",
                (x, k),
                (out.detach().numpy(), xt.grad.numpy() > 0),
            )
        )
    return cases


# --- 4.5 im2col -------------------------------------------------------------------------------


def _im2col(x, kernel_size, stride, padding):
    N, C, H, W = x.shape
    k, s = kernel_size, stride
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    H_out = (H + 2 * padding - k) // s + 1
    W_out = (W + 2 * padding - k) // s + 1
    cols = np.empty((N, C, k, k, H_out, W_out))
    for a in range(k):
        for b in range(k):
            cols[:, :, a, b] = x[
                :, :, a : a + s * H_out : s, b : b + s * W_out : s
            ]  # (N, C, H_out, W_out)
    return cols.reshape(N, C * k * k, H_out * W_out)


@exercise(
    "4.5",
    title="im2col (torch's unfold)",
    points=3,
    function="im2col",
    reference=_im2col,
    hints=(
        "Row index is (c, a, b) flattened in that order; column index is the output "
        "position (i, j) flattened row by row; entry = x_pad[n, c, i*s + a, j*s + b].",
    ),
)
def _cases_4_5():
    rng = np.random.default_rng(405)
    cases = []
    for shape, k, s, p in [
        ((1, 1, 4, 4), 2, 1, 0),
        ((2, 3, 6, 5), 3, 1, 1),
        ((2, 2, 9, 8), 3, 2, 0),
        ((1, 4, 7, 7), 2, 2, 1),
    ]:
        x = rng.normal(size=shape)
        expected = F.unfold(_t(x), k, stride=s, padding=p).numpy()
        cases.append(
            Case(
                f"x {shape}, kernel {k}, stride {s}, padding {p}",
                (x, k, s, p),
                expected,
            )
        )
    return cases


# --- 4.6 gradient of a cross-correlation with respect to its kernel ---------------------------


def _conv2d_weight_grad(x, grad_out, kernel_size, stride, padding):
    k, s = kernel_size, stride
    x = np.pad(x, padding)
    H_out, W_out = grad_out.shape
    grad_w = np.zeros((k, k))
    for a in range(k):
        for b in range(k):
            patch = x[
                a : a + s * H_out : s, b : b + s * W_out : s
            ]  # every input w[a, b] touched
            grad_w[a, b] = np.sum(grad_out * patch)
    return grad_w


@exercise(
    "4.6",
    title="Backward of a 2-D cross-correlation with respect to the kernel",
    points=4,
    function="conv2d_weight_grad",
    reference=_conv2d_weight_grad,
    hints=(
        "w[a, b] multiplies x_pad[i*s + a, j*s + b] in output (i, j), so "
        "dL/dw[a, b] = sum_ij grad_out[i, j] * x_pad[i*s + a, j*s + b].",
    ),
)
def _cases_4_6():
    rng = np.random.default_rng(406)
    cases = []
    for H, W, k, s, p in [
        (5, 5, 3, 1, 0),
        (7, 6, 2, 1, 1),
        (9, 9, 3, 2, 1),
        (10, 8, 4, 3, 2),
    ]:
        x = rng.normal(size=(H, W))
        w = _t(rng.normal(size=(k, k))).requires_grad_(True)
        out = F.conv2d(_t(x)[None, None], w[None, None], stride=s, padding=p)[0, 0]
        grad_out = rng.normal(size=tuple(out.shape))
        (out * _t(grad_out)).sum().backward()
        cases.append(
            Case(
                f"{H}x{W} image, {k}x{k} kernel, stride {s}, padding {p}",
                (x, grad_out, k, s, p),
                w.grad.numpy().copy(),
            )
        )
    return cases
