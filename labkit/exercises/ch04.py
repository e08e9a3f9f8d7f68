"""Chapter 4 exercises: convolutional networks.

Every expected value comes from torch (float64) on seeded random inputs: tensor shapes
for the output-size formula, ``F.conv1d`` / ``F.conv2d`` / ``F.max_pool2d`` /
``F.unfold`` for forwards, and autograd for the pooling mask and the kernel gradient.
The references below are model numpy solutions written the way a learner would; the test
suite holds them to these cases.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import Case, Mistake, exercise
from ._oracle import float64_tensor as _t


# Where to reread, as the chapter names its sections and boxes.
_CROSS = (
    'chapter 4, section "What deep learning calls convolution is cross-correlation"'
)
_SIGNAL = (
    'chapter 4, box "Common pitfall: reproducing a CNN layer with a signal-processing '
    'convolution"'
)
_PADDING = 'chapter 4, section "Padding, stride and the output size"'


# --- 4.1 a Conv1d layer's forward pass ------------------------------------------------

_CHANNELS = 'chapter 4, section "Channels"'
_FLOOR = 'chapter 4, box "Common pitfall: dropping the floor"'
_LAYOUTS = 'chapter 4, box "Common pitfall: weight layouts differ between libraries"'


def _conv1d(x, weight, bias, stride, padding):
    N, C_in, L = x.shape
    C_out, _, K = weight.shape
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding)))  # zeros on both ends
    L_out = (L + 2 * padding - K) // stride + 1
    y = np.empty((N, C_out, L_out))
    for i in range(L_out):
        window = x[:, :, i * stride : i * stride + K]  # (N, C_in, K)
        y[:, :, i] = np.einsum("nck,ock->no", window, weight) + bias
    return y


def _conv1d_flipped(x, weight, bias, stride, padding):
    return _conv1d(x, weight[:, :, ::-1], bias, stride, padding)


def _conv1d_padded_one_side(x, weight, bias, stride, padding):
    x = np.pad(x, ((0, 0), (0, 0), (0, 2 * padding)))
    return _conv1d(x, weight, bias, stride, 0)


def _torch_conv1d(x, weight, bias, stride, padding):
    return F.conv1d(_t(x), _t(weight), _t(bias), stride=stride, padding=padding).numpy()


@exercise(
    "4.1",
    title="A Conv1d layer's forward pass",
    points=3,
    function="conv1d",
    reference=_conv1d,
    hints=(
        "Each output channel has one unflipped kernel per input channel; their "
        "responses are summed and one bias per output channel is added. Reread "
        f"{_CROSS}, {_PADDING} and {_CHANNELS}.",
        "Pad x with `padding` zeros at both ends of the last axis; for i < floor((L + "
        "2p - K) / s) + 1, y[n, o, i] = b[o] + sum over c and m of W[o, c, m] * "
        "x_pad[n, c, i*s + m].",
    ),
    mistakes=(
        Mistake(
            "convolution-not-correlation",
            "The kernel was flipped (np.convolve computes a true convolution); a "
            "Conv1d layer computes cross-correlation.",
            _SIGNAL,
            _conv1d_flipped,
        ),
        Mistake(
            "padding-on-one-side",
            "All 2p zeros were put after the signal; padding adds p zeros at each end.",
            _PADDING,
            _conv1d_padded_one_side,
        ),
    ),
)
def _cases_4_1():
    """Asymmetric kernels of two or more taps, and padding, in all but one case each."""
    rng = np.random.default_rng(401)
    cases = []
    for N, C_in, C_out, L, K, s, p in [
        (2, 3, 4, 10, 3, 1, 1),
        (1, 1, 2, 12, 4, 2, 2),
        (3, 2, 3, 9, 2, 3, 1),  # a stride that does not divide: the floor
        (2, 4, 1, 7, 5, 1, 2),  # 'same' padding of an odd kernel
        (1, 2, 2, 5, 5, 1, 1),  # the kernel as long as the signal
        (2, 3, 2, 8, 3, 2, 0),  # no padding
        (1, 3, 5, 6, 1, 1, 1),  # a 1-tap kernel: only the channels mix
        (4, 1, 1, 4, 2, 5, 3),  # padding larger than the kernel, a large stride
    ]:
        x = rng.normal(size=(N, C_in, L))
        weight, bias = rng.normal(size=(C_out, C_in, K)), rng.normal(size=C_out)
        args = (x, weight, bias, s, p)
        label = (
            f"x ({N}, {C_in}, {L}), weight ({C_out}, {C_in}, {K}), stride {s}, "
            f"padding {p}"
        )
        cases.append(Case(label, args, _torch_conv1d(*args)))
    return cases


# --- 4.2 shapes and parameter counts of a small CNN -----------------------------------

_PARAMETERS = 'chapter 4, section "Why so few parameters"'
_HEAD = 'chapter 4, section "Flattening and the fully connected head"'


def _cnn_shapes(input_shape, layers, *, size=None, conv_bias="channel"):
    """Output shape and parameter count after each layer; ``size`` and ``conv_bias``
    select the variants the chapter warns about."""
    size = size or (lambda n, k, s, p: (n + 2 * p - k) // s + 1)
    shape, shapes, params = tuple(input_shape), [], []
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, c_out, k, s, p = layer
            c, h, w = shape
            shape = (c_out, size(h, k, s, p), size(w, k, s, p))
            bias = {"channel": c_out, "none": 0, "pixel": c_out * shape[1] * shape[2]}
            count = c_out * c * k * k + bias[conv_bias]
        elif kind == "pool":
            _, k = layer
            c, h, w = shape
            shape, count = (c, size(h, k, k, 0), size(w, k, k, 0)), 0
        elif kind == "flatten":
            shape, count = (int(np.prod(shape)),), 0
        else:  # ("linear", out)
            count = shape[0] * layer[1] + layer[1]
            shape = (layer[1],)
        shapes.append(shape)
        params.append(count)
    return shapes, params


def _reference_cnn_shapes(input_shape, layers):
    return _cnn_shapes(input_shape, layers)


def _shapes_true_division(input_shape, layers):
    return _cnn_shapes(
        input_shape, layers, size=lambda n, k, s, p: (n + 2 * p - k) / s + 1
    )


def _shapes_rounded(input_shape, layers):
    return _cnn_shapes(
        input_shape,
        layers,
        size=lambda n, k, s, p: math.floor((n + 2 * p - k) / s + 0.5) + 1,
    )


def _shapes_no_bias(input_shape, layers):
    return _cnn_shapes(input_shape, layers, conv_bias="none")


def _shapes_bias_per_pixel(input_shape, layers):
    return _cnn_shapes(input_shape, layers, conv_bias="pixel")


def _torch_cnn_shapes(input_shape, layers):
    """Shapes and parameter counts of the same layers built in torch on the meta
    device."""
    x = torch.empty((1, *input_shape), device="meta")
    shapes, params = [], []
    for layer in layers:
        if layer[0] == "conv":
            _, c_out, k, s, p = layer
            module = torch.nn.Conv2d(
                x.shape[1], c_out, k, stride=s, padding=p, device="meta"
            )
        elif layer[0] == "pool":
            module = torch.nn.MaxPool2d(layer[1])
        elif layer[0] == "flatten":
            module = torch.nn.Flatten()
        else:
            module = torch.nn.Linear(x.shape[1], layer[1], device="meta")
        x = module(x)
        shapes.append(tuple(int(n) for n in x.shape[1:]))
        params.append(int(sum(q.numel() for q in module.parameters())))
    return shapes, params


@exercise(
    "4.2",
    title="Shapes and parameter counts of a small CNN",
    points=2,
    function="cnn_shapes",
    reference=_reference_cnn_shapes,
    hints=(
        "Window positions are counted with a floor, a convolution has one kernel per "
        "(output, input) channel pair plus one bias per output channel, whatever the "
        f"image size. Reread {_PADDING}, {_PARAMETERS} and {_HEAD}.",
        "conv: (C_out, (H + 2p - k) // s + 1, same for W), C_out * (C_in * k * k + 1) "
        "parameters; pool k: (C, H // k, W // k), none; flatten: (C * H * W,), none; "
        "linear out: (out,), in * out + out.",
    ),
    mistakes=(
        Mistake(
            "no-floor",
            "The output size was computed with true division, (H + 2p - k) / s + 1, "
            "which is not a whole number when the stride does not divide; use //.",
            _FLOOR,
            _shapes_true_division,
        ),
        Mistake(
            "rounded-not-floored",
            "The output size was rounded instead of floored; windows that do not fit "
            "are not counted.",
            _FLOOR,
            _shapes_rounded,
        ),
        Mistake(
            "conv-without-bias",
            "The convolution's bias was left out of the count: one bias per output "
            "channel.",
            _PARAMETERS,
            _shapes_no_bias,
        ),
        Mistake(
            "bias-per-output-pixel",
            "One bias per output pixel was counted; a convolution has one per output "
            "channel, shared by every position.",
            _LAYOUTS,
            _shapes_bias_per_pixel,
        ),
    ),
)
def _cases_4_2():
    """Every network has a convolution whose stride leaves a remainder of at least half
    a stride, so that both output-size mistakes show."""
    networks = [
        (
            "the chapter's CNN on 12 x 12 images, with a strided first layer",
            (1, 12, 12),
            [
                ("conv", 8, 3, 2, 0),
                ("pool", 2),
                ("conv", 16, 3, 1, 1),
                ("pool", 2),
                ("flatten",),
                ("linear", 4),
            ],
        ),
        (
            "RGB 32 x 32, halving convolutions, two linear layers",
            (3, 32, 32),
            [
                ("conv", 16, 3, 2, 1),
                ("conv", 32, 4, 3, 0),
                ("pool", 2),
                ("flatten",),
                ("linear", 64),
                ("linear", 10),
            ],
        ),
        (
            "a rectangular image and leftover rows in the pooling",
            (2, 15, 20),
            [("conv", 4, 5, 2, 0), ("pool", 3), ("flatten",), ("linear", 3)],
        ),
        (
            "a 1 x 1 convolution and a pool of 1",
            (6, 9, 9),
            [
                ("conv", 3, 1, 1, 0),
                ("pool", 1),
                ("conv", 2, 2, 4, 0),
                ("flatten",),
                ("linear", 1),
            ],
        ),
        (
            "a convolution that leaves a single pixel",
            (1, 7, 7),
            [("conv", 5, 7, 2, 1), ("flatten",), ("linear", 2)],
        ),
    ]
    return [
        Case(label, (shape, layers), _torch_cnn_shapes(shape, layers))
        for label, shape, layers in networks
    ]


# --- 4.3 2-D single-channel cross-correlation with stride and padding -----------------


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


def _conv2d_flipped(x, w, stride, padding):
    return _conv2d_single(x, w[::-1, ::-1], stride, padding)


def _conv2d_reflect_padding(x, w, stride, padding):
    kH, kW = w.shape
    x = np.pad(x, padding, mode="symmetric")  # scipy.ndimage's "reflect" border
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
        "A CNN layer slides the kernel as it is, without flipping it, over the input "
        "padded with zeros, and moves it stride pixels at a time. Reread "
        f"{_CROSS} and {_PADDING}.",
        "Zero-pad x by `padding` on all four sides, then y[i, j] = sum(x_pad[i*s : "
        "i*s + kH, j*s : j*s + kW] * w) for i < floor((H + 2p - kH) / s) + 1 (same for "
        "j).",
    ),
    mistakes=(
        Mistake(
            "convolution-not-correlation",
            "The kernel was flipped (a true convolution, as scipy.signal.convolve2d "
            "computes); CNN layers compute cross-correlation.",
            _SIGNAL,
            _conv2d_flipped,
        ),
        Mistake(
            "reflect-padding",
            "The border was filled by reflecting the image (scipy.ndimage's default); "
            "padding means zeros.",
            _SIGNAL,
            _conv2d_reflect_padding,
        ),
    ),
)
def _cases_4_3():
    """Every kernel is asymmetric and all but one case pad, so that both mistakes
    show."""
    rng = np.random.default_rng(403)
    cases = []
    for H, W, kH, kW, s, p in [
        (5, 5, 3, 3, 1, 0),
        (6, 7, 2, 3, 1, 1),
        (9, 8, 3, 3, 2, 1),
        (10, 10, 4, 2, 3, 2),
        (4, 4, 4, 4, 1, 1),  # the kernel covers the whole image: a 3 x 3 output
        (7, 5, 1, 2, 2, 1),  # a 1-row kernel, a stride that skips pixels
        (3, 3, 2, 2, 5, 2),  # a stride larger than the padded image: 2 x 2 output
        (8, 6, 3, 2, 3, 3),  # padding larger than the kernel
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


# --- 4.4 max pooling with the argmax mask ---------------------------------------------

_POOLING = 'chapter 4, section "Pooling"'
_GLOBAL_MAX = 'chapter 4, box "Common pitfall: a global maximum is not a pooling layer"'


def _pool_windows(x, k):
    """The full k x k windows of x: (N, C, H_out, W_out, k * k), offsets in row-major
    order."""
    N, C, H, W = x.shape
    H_out, W_out = H // k, W // k
    windows = x[:, :, : H_out * k, : W_out * k].reshape(N, C, H_out, k, W_out, k)
    return windows.transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H_out, W_out, k * k)


def _mask_from_offsets(shape, offsets, k):
    """Bool mask of ``shape`` with True at the offset (row-major in its window) of each
    window."""
    N, C, H_out, W_out = offsets.shape
    n, c, i, j = np.indices(offsets.shape)
    mask = np.zeros(shape, dtype=bool)
    mask[n, c, i * k + offsets // k, j * k + offsets % k] = True
    return mask


def _max_pool2d_with_mask(x, kernel_size):
    k = kernel_size
    windows = _pool_windows(x, k)  # (N, C, H_out, W_out, k * k)
    out = windows.max(axis=-1)  # (N, C, H_out, W_out)
    first = windows.argmax(axis=-1)  # the first maximum in row-major window order
    return out, _mask_from_offsets(x.shape, first, k)


def _pool_every_tied_maximum(x, kernel_size):
    k = kernel_size
    N, C, H, W = x.shape
    H_out, W_out = H // k, W // k
    windows = x[:, :, : H_out * k, : W_out * k].reshape(N, C, H_out, k, W_out, k)
    out = windows.max(axis=(3, 5))
    mask = np.zeros(x.shape, dtype=bool)
    is_max = windows == out[:, :, :, None, :, None]
    mask[:, :, : H_out * k, : W_out * k] = is_max.reshape(N, C, H_out * k, W_out * k)
    return out, mask


def _pool_last_tied_maximum(x, kernel_size):
    k = kernel_size
    windows = _pool_windows(x, k)
    last = k * k - 1 - windows[..., ::-1].argmax(axis=-1)
    return windows.max(axis=-1), _mask_from_offsets(x.shape, last, k)


def _pool_global_max(x, kernel_size):
    top = x.max(axis=(2, 3), keepdims=True)  # (N, C, 1, 1)
    return top, x == top


def _torch_pool(x, k):
    xt = _t(x).requires_grad_(True)
    out = F.max_pool2d(xt, k)
    out.sum().backward()  # torch routes each window's gradient to one maximum
    return out.detach().numpy(), xt.grad.numpy() > 0


@exercise(
    "4.4",
    title="Max pooling and its argmax mask",
    points=2,
    function="max_pool2d_with_mask",
    reference=_max_pool2d_with_mask,
    hints=(
        "Each window sends its gradient to exactly one input, even when several "
        f"entries tie for the maximum. Reread {_POOLING}.",
        "Split each full window into its k * k entries in row-major order (a reshape "
        "and a transpose), take max and argmax over them (argmax returns the first "
        "maximum), and set mask[n, c, i*k + a, j*k + b] for the argmax (a, b).",
    ),
    mistakes=(
        Mistake(
            "every-tied-maximum",
            "Every entry equal to its window's maximum was marked; the gradient goes "
            "to one of them only, the first in row-major order (torch, labkit.nets).",
            _POOLING,
            _pool_every_tied_maximum,
        ),
        Mistake(
            "last-tied-maximum",
            "The last of several tied maxima was marked (a >= comparison in a loop); "
            "torch marks the first in row-major order.",
            _POOLING,
            _pool_last_tied_maximum,
        ),
        Mistake(
            "global-max",
            "The maximum of the whole map was taken: a global max pool, one value per "
            "channel, not a k x k pooling layer.",
            _GLOBAL_MAX,
            _pool_global_max,
        ),
    ),
)
def _cases_4_4():
    """Small integer values make ties common: most windows hold a tied maximum."""
    rng = np.random.default_rng(404)
    cases = []
    for label, shape, k, levels in [
        ("x (1, 1, 4, 4) of 0s and 1s, kernel_size 2", (1, 1, 4, 4), 2, 2),
        ("x (2, 3, 6, 8) with ties, kernel_size 2", (2, 3, 6, 8), 2, 3),
        (
            "leftover rows and columns, x (2, 2, 7, 9), kernel_size 3",
            (2, 2, 7, 9),
            3,
            3,
        ),
        ("a constant image (every entry ties), kernel_size 2", (1, 2, 4, 6), 2, 1),
        ("one window per channel, x (3, 1, 3, 3), kernel_size 3", (3, 1, 3, 3), 3, 2),
        (
            "negative values with ties, x (2, 1, 5, 5), kernel_size 2",
            (2, 1, 5, 5),
            2,
            3,
        ),
        ("kernel_size 1 (every entry is its own window)", (1, 2, 3, 4), 1, 3),
        ("distinct values, x (3, 1, 5, 5), kernel_size 2", (3, 1, 5, 5), 2, 0),
    ]:
        if levels:
            x = rng.integers(0, levels, size=shape).astype(np.float64)
            if "negative" in label:
                x = -x - 1.0
        else:
            x = rng.normal(size=shape)
        cases.append(Case(label, (x, k), _torch_pool(x, k)))
    return cases


# --- 4.5 im2col -----------------------------------------------------------------------


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


_IM2COL = 'chapter 4, section "A fast convolution: im2col"'


def _im2col_patches_as_rows(x, kernel_size, stride, padding):
    cols = _im2col(x, kernel_size, stride, padding)  # (N, C*k*k, L)
    return cols.transpose(0, 2, 1).reshape(-1, cols.shape[1])  # nets.im2col's layout


def _im2col_channels_last(x, kernel_size, stride, padding):
    N, C = x.shape[:2]
    k = kernel_size
    cols = _im2col(x, kernel_size, stride, padding).reshape(N, C, k, k, -1)
    return cols.transpose(0, 2, 3, 1, 4).reshape(N, C * k * k, -1)  # rows (a, b, c)


@exercise(
    "4.5",
    title="im2col (torch's unfold)",
    points=3,
    function="im2col",
    reference=_im2col,
    hints=(
        "F.unfold puts one receptive field in each COLUMN, one matrix per image, with "
        f"the rows ordered channel first. Reread {_IM2COL}.",
        "Row index is (c, a, b) flattened in that order; column index is the output "
        "position (i, j) flattened row by row; entry = x_pad[n, c, i*s + a, j*s + b].",
    ),
    mistakes=(
        Mistake(
            "patches-as-rows",
            "The patches were laid out as rows of one (N * L, C * k * k) matrix "
            "(labkit.nets.im2col's layout); F.unfold's is (N, C * k * k, L).",
            _IM2COL,
            _im2col_patches_as_rows,
        ),
        Mistake(
            "channels-last-rows",
            "The rows were ordered (a, b, c), channel last; F.unfold orders them "
            "(c, a, b), as the weight (C_out, C_in, k, k) flattens.",
            _IM2COL,
            _im2col_channels_last,
        ),
    ),
)
def _cases_4_5():
    """Every case has at least two channels and a kernel of two or more pixels."""
    rng = np.random.default_rng(405)
    cases = []
    for shape, k, s, p in [
        ((1, 2, 4, 4), 2, 1, 0),
        ((2, 3, 6, 5), 3, 1, 1),
        ((2, 2, 9, 8), 3, 2, 0),
        ((1, 4, 7, 7), 2, 2, 1),
        ((1, 3, 3, 3), 3, 1, 0),  # one window: L = 1
        ((2, 2, 5, 6), 2, 3, 2),  # padding as large as the kernel
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


# --- 4.6 gradient of a cross-correlation with respect to its kernel -------------------


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


_GRADIENTS = 'chapter 4, section "Gradients of a convolution"'


def _weight_grad_rotated(x, grad_out, kernel_size, stride, padding):
    return _conv2d_weight_grad(x, grad_out, kernel_size, stride, padding)[::-1, ::-1]


def _weight_grad_padded_one_side(x, grad_out, kernel_size, stride, padding):
    x = np.pad(x, ((0, 2 * padding), (0, 2 * padding)))  # all the zeros after the image
    return _conv2d_weight_grad(x, grad_out, kernel_size, stride, 0)


@exercise(
    "4.6",
    title="Backward of a 2-D cross-correlation with respect to the kernel",
    points=4,
    function="conv2d_weight_grad",
    reference=_conv2d_weight_grad,
    hints=(
        "Each weight w[a, b] meets one input in every output position; the chain rule "
        f"sums those inputs weighted by grad_out. Reread {_GRADIENTS}.",
        "dL/dw[a, b] = sum_ij grad_out[i, j] * x_pad[i*s + a, j*s + b], x_pad being x "
        "with `padding` zeros on every side: a strided slice of x_pad times grad_out.",
    ),
    mistakes=(
        Mistake(
            "rotated-kernel-gradient",
            "The kernel gradient came out rotated by 180 degrees (a convolution with "
            "the upstream gradient); it is the cross-correlation X * G, unflipped.",
            _GRADIENTS,
            _weight_grad_rotated,
        ),
        Mistake(
            "padding-on-one-side",
            "All 2p rows and columns of zeros were put after the image; padding adds p "
            "on every side, so the windows start p pixels before the image.",
            _PADDING,
            _weight_grad_padded_one_side,
        ),
    ),
)
def _cases_4_6():
    rng = np.random.default_rng(406)
    cases = []
    for H, W, k, s, p in [
        (6, 6, 3, 1, 1),
        (7, 6, 2, 1, 1),
        (9, 9, 3, 2, 1),
        (10, 8, 4, 3, 2),
        (3, 3, 3, 1, 1),  # the kernel as large as the image
        (5, 7, 1, 2, 1),  # a 1 x 1 kernel: its gradient sums grad_out * x
        (8, 8, 2, 3, 3),  # padding larger than the kernel
        (5, 5, 3, 1, 0),  # no padding
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
