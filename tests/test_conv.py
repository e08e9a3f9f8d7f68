"""labkit.conv: the reference convolutions agree with numpy, scipy.signal and torch, in
float64."""

import itertools

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.conv import conv2d, conv_output_size, convolve1d, correlate1d, max_pool2d

RTOL, ATOL = 1e-12, 1e-12
MODES = ("full", "valid", "same")


def t(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


# --- output size ----------------------------------------------------------------------


def test_output_size_hand_cases():
    assert conv_output_size(5, 3) == 3  # (5 - 3)/1 + 1
    assert conv_output_size(5, 3, stride=2, padding=1) == 3  # (5 + 2 - 3)/2 + 1
    assert (
        conv_output_size(28, 5, stride=1, padding=2) == 28
    )  # "same" padding for odd k
    assert conv_output_size(6, 3, stride=2) == 2  # floor(3/2) + 1, last column unused
    assert conv_output_size(1, 1) == 1


def test_output_size_equals_torch_conv_shape():
    for H, k, s, p in itertools.product(
        range(1, 9), range(1, 6), range(1, 4), range(0, 3)
    ):
        if k > H + 2 * p:
            continue
        out = F.conv2d(
            torch.zeros(1, 1, H, H, dtype=torch.float64),
            torch.zeros(1, 1, k, k, dtype=torch.float64),
            stride=s,
            padding=p,
        )
        assert conv_output_size(H, k, s, p) == out.shape[-1], (H, k, s, p)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 64), st.integers(1, 9), st.integers(1, 5), st.integers(0, 4))
def test_output_size_counts_window_positions(H, k, s, p):
    """The formula counts the start positions 0, s, 2s, ... whose window fits the padded
    input."""
    if k > H + 2 * p:
        return
    starts = [i for i in range(0, H + 2 * p, s) if i + k <= H + 2 * p]
    assert conv_output_size(H, k, s, p) == len(starts)


@pytest.mark.parametrize(
    "args, name",
    [
        ((0, 3), "size"),
        ((5, 0), "kernel_size"),
        ((5, 3, 0), "stride"),
        ((5, 3, 1, -1), "padding"),
        ((5.0, 3), "size"),
        ((5, True), "kernel_size"),
        ((3, 5), "kernel_size"),
        ((3, 6, 1, 1), "kernel_size"),
    ],
)
def test_output_size_rejects_bad_arguments(args, name):
    with pytest.raises(ValueError, match=name):
        conv_output_size(*args)


# --- 1-D ------------------------------------------------------------------------------


def test_convolve1d_hand_example():
    # y[0] = 1*2, y[1] = 1*1 + 2*2, y[2] = 2*1 + 3*2, y[3] = 3*1
    np.testing.assert_array_equal(convolve1d([1, 2, 3], [2, 1]), [2, 5, 8, 3])
    np.testing.assert_array_equal(convolve1d([1, 2, 3], [2, 1], "valid"), [5, 8])
    np.testing.assert_array_equal(convolve1d([1, 2, 3], [2, 1], "same"), [2, 5, 8])


def test_correlate1d_hand_example_does_not_flip():
    # y[0] = 1*2 + 2*1, y[1] = 2*2 + 3*1
    np.testing.assert_array_equal(correlate1d([1, 2, 3], [2, 1]), [4, 7])
    np.testing.assert_array_equal(correlate1d([1, 2, 3], [2, 1], "full"), [1, 4, 7, 6])


# "valid" needs K <= N (numpy and scipy silently swap the arguments when K > N; we
# refuse)
@pytest.mark.parametrize(
    "N, K, mode",
    [
        (N, K, mode)
        for N, K in [(1, 1), (5, 1), (5, 2), (7, 3), (8, 4), (6, 6), (3, 5), (2, 7)]
        for mode in MODES
        if not (mode == "valid" and K > N)
    ],
)
def test_1d_equals_numpy_and_scipy(N, K, mode):
    rng = np.random.default_rng(100 * N + K)
    x, w = rng.normal(size=N), rng.normal(size=K)
    conv, corr = convolve1d(x, w, mode), correlate1d(x, w, mode)
    np.testing.assert_allclose(
        conv, scipy.signal.convolve(x, w, mode, method="direct"), RTOL, ATOL
    )
    np.testing.assert_allclose(
        corr, scipy.signal.correlate(x, w, mode, method="direct"), RTOL, ATOL
    )
    if N >= K:  # numpy's "same" has length max(N, K); scipy's and ours have length N
        np.testing.assert_allclose(conv, np.convolve(x, w, mode), RTOL, ATOL)
        np.testing.assert_allclose(corr, np.correlate(x, w, mode), RTOL, ATOL)


@pytest.mark.parametrize("mode", MODES)
def test_correlation_is_convolution_with_flipped_kernel(mode):
    rng = np.random.default_rng(7)
    x, w = rng.normal(size=11), rng.normal(size=4)
    np.testing.assert_allclose(
        correlate1d(x, w, mode), convolve1d(x, w[::-1], mode), RTOL, ATOL
    )
    assert not np.allclose(correlate1d(x, w, mode), convolve1d(x, w, mode))


def test_correlate1d_valid_equals_torch_conv1d():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=20), rng.normal(size=5)
    expected = F.conv1d(t(x)[None, None], t(w)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(correlate1d(x, w), expected, RTOL, ATOL)


def test_convolve1d_with_flip_equals_torch_conv1d_full_padding():
    rng = np.random.default_rng(4)
    x, w = rng.normal(size=9), rng.normal(size=4)
    expected = F.conv1d(t(x)[None, None], t(w[::-1].copy())[None, None], padding=3)[
        0, 0
    ].numpy()
    np.testing.assert_allclose(convolve1d(x, w), expected, RTOL, ATOL)


@pytest.mark.parametrize("fn", [convolve1d, correlate1d])
@pytest.mark.parametrize(
    "x, w, mode, name",
    [
        (np.ones((2, 3)), np.ones(2), "full", "x"),
        (np.ones(3), np.ones((1, 2)), "full", "w"),
        (np.ones(0), np.ones(2), "full", "x"),
        (np.ones(3), np.array([1.0, np.nan]), "full", "w"),
        (np.ones(3), np.ones(2), "circular", "mode"),
        (np.ones(2), np.ones(3), "valid", "len"),
    ],
)
def test_1d_rejects_bad_input(fn, x, w, mode, name):
    with pytest.raises(ValueError, match=name):
        fn(x, w, mode)


# --- 2-D ------------------------------------------------------------------------------


def test_conv2d_hand_example():
    x = np.array([[1, 0, 2], [3, 1, 0], [0, 0, 4]], dtype=float)[None, None]
    w = np.array([[1, 2], [0, -1]], dtype=float)[None, None]
    # top-left: 1*1 + 0*2 + 3*0 + 1*(-1) = 0;
    # top-right: 0*1 + 2*2 + 1*0 + 0*(-1) = 4; ...
    np.testing.assert_array_equal(conv2d(x, w)[0, 0], [[0, 4], [5, -3]])


@pytest.mark.parametrize(
    "N, C_in, C_out, H, W, k, stride, padding",
    [
        (1, 1, 1, 5, 5, (3, 3), 1, 0),
        (2, 3, 4, 7, 6, (3, 2), 1, 1),
        (3, 2, 5, 9, 8, (3, 3), 2, 1),
        (2, 1, 3, 8, 10, (2, 4), (2, 3), (1, 2)),
        (1, 4, 2, 6, 6, (5, 5), 3, 2),
        (2, 2, 2, 4, 4, (4, 4), 1, 0),
    ],
)
def test_conv2d_equals_torch(N, C_in, C_out, H, W, k, stride, padding):
    rng = np.random.default_rng(N * 1000 + C_in * 100 + H)
    x = rng.normal(size=(N, C_in, H, W))
    weight = rng.normal(size=(C_out, C_in, *k))
    bias = rng.normal(size=C_out)
    expected = F.conv2d(
        t(x), t(weight), t(bias), stride=stride, padding=padding
    ).numpy()
    got = conv2d(x, weight, bias, stride=stride, padding=padding)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, RTOL, ATOL)


@pytest.mark.parametrize("mode", MODES)
def test_conv2d_single_channel_equals_scipy_correlate2d(mode):
    rng = np.random.default_rng(21)
    x, w = rng.normal(size=(7, 6)), rng.normal(size=(3, 3))
    padding = {"valid": 0, "same": 1, "full": 2}[
        mode
    ]  # k - 1 on each side gives "full"
    got = conv2d(x[None, None], w[None, None], padding=padding)[0, 0]
    np.testing.assert_allclose(got, scipy.signal.correlate2d(x, w, mode), RTOL, ATOL)


def test_flipped_kernel_turns_conv2d_into_true_convolution():
    rng = np.random.default_rng(22)
    x, w = rng.normal(size=(6, 6)), rng.normal(size=(3, 2))
    flipped = w[::-1, ::-1].copy()  # rotate by 180 degrees
    got = conv2d(x[None, None], flipped[None, None])[0, 0]
    np.testing.assert_allclose(got, scipy.signal.convolve2d(x, w, "valid"), RTOL, ATOL)
    unflipped = conv2d(x[None, None], w[None, None])[0, 0]
    assert not np.allclose(unflipped, scipy.signal.convolve2d(x, w, "valid"))


def test_conv2d_is_linear_in_input_and_weight():
    rng = np.random.default_rng(23)
    x1, x2 = rng.normal(size=(2, 2, 2, 5, 5))
    w1, w2 = rng.normal(size=(2, 3, 2, 3, 3))
    np.testing.assert_allclose(
        conv2d(2 * x1 - x2, w1), 2 * conv2d(x1, w1) - conv2d(x2, w1), 1e-10, 1e-10
    )
    np.testing.assert_allclose(
        conv2d(x1, w1 + w2), conv2d(x1, w1) + conv2d(x1, w2), 1e-10, 1e-10
    )


@pytest.mark.parametrize(
    "x, weight, kwargs, name",
    [
        (np.ones((1, 5, 5)), np.ones((1, 1, 3, 3)), {}, "x"),
        (np.ones((1, 1, 5, 5)), np.ones((1, 3, 3)), {}, "weight"),
        (np.ones((1, 2, 5, 5)), np.ones((1, 3, 3, 3)), {}, "input channels"),
        (np.ones((1, 1, 5, 5)), np.ones((2, 1, 3, 3)), {"bias": np.ones(3)}, "bias"),
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), {"stride": 0}, "stride"),
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), {"stride": (1, 2, 3)}, "stride"),
        (np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), {"padding": -1}, "padding"),
        (np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), {}, "kernel_size"),
        (np.full((1, 1, 5, 5), np.nan), np.ones((1, 1, 3, 3)), {}, "x"),
        (np.ones((0, 1, 5, 5)), np.ones((1, 1, 3, 3)), {}, "x"),
    ],
)
def test_conv2d_rejects_bad_input(x, weight, kwargs, name):
    with pytest.raises(ValueError, match=name):
        conv2d(x, weight, **kwargs)


# --- pooling --------------------------------------------------------------------------


def test_max_pool2d_hand_example():
    x = np.array([[1, 5, 2, 0], [3, 4, 8, 1], [0, 2, 6, 7], [9, 1, 3, 3]], dtype=float)[
        None, None
    ]
    np.testing.assert_array_equal(max_pool2d(x, 2)[0, 0], [[5, 8], [9, 7]])
    np.testing.assert_array_equal(
        max_pool2d(x, 2, stride=1)[0, 0], [[5, 8, 8], [4, 8, 8], [9, 6, 7]]
    )


@pytest.mark.parametrize(
    "k, stride, padding, H, W",
    [
        (2, None, 0, 8, 8),
        (3, 2, 1, 9, 7),
        (2, 1, 0, 5, 6),
        ((2, 3), (1, 2), (1, 1), 7, 8),
        (3, None, 0, 10, 10),
    ],
)
def test_max_pool2d_equals_torch(k, stride, padding, H, W):
    rng = np.random.default_rng(H * W)
    x = rng.normal(size=(2, 3, H, W))
    expected = F.max_pool2d(t(x), k, stride=stride, padding=padding).numpy()
    np.testing.assert_array_equal(max_pool2d(x, k, stride, padding), expected)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": 2, "stride": 0}, "stride"),
        ({"kernel_size": 2, "padding": 2}, "padding"),
        ({"kernel_size": 9}, "kernel_size"),
    ],
)
def test_max_pool2d_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        max_pool2d(np.ones((1, 1, 4, 4)), **kwargs)
