"""Chapter 4 exercises: the references agree with labkit.conv and labkit.nets.

Each exercise's known mistakes are registered with it and held to the contract in
tests/test_exercise_mistakes.py; here the references are tied to labkit's own layers,
which are themselves tested against torch, and to finite differences.
"""

import numpy as np
import pytest

from labkit import nets
from labkit.conv import conv2d, correlate1d
from labkit.exercises import get


def test_conv1d_reference_with_one_channel_is_the_valid_cross_correlation():
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=11), rng.normal(size=4)
    y = get("4.1").reference(x[None, None], w[None, None], np.zeros(1), 1, 0)
    np.testing.assert_allclose(y[0, 0], correlate1d(x, w), rtol=1e-13)


def test_conv1d_reference_sums_strided_correlations_over_input_channels():
    rng = np.random.default_rng(2)
    x, w, b = rng.normal(size=(2, 3, 9)), rng.normal(size=(4, 3, 3)), rng.normal(size=4)
    y = get("4.1").reference(x, w, b, 2, 1)
    x_pad = np.pad(x, ((0, 0), (0, 0), (1, 1)))
    for n in range(2):
        for o in range(4):
            want = b[o] + sum(correlate1d(x_pad[n, c], w[o, c])[::2] for c in range(3))
            np.testing.assert_allclose(y[n, o], want, rtol=1e-12)


def test_cnn_shapes_reference_follows_the_chapters_labkit_network():
    layers = [
        ("conv", 8, 3, 1, 1),
        ("pool", 2),
        ("conv", 16, 3, 1, 1),
        ("pool", 2),
        ("flatten",),
        ("linear", 4),
    ]
    modules = [
        nets.Conv2d(1, 8, 3, padding=1),
        nets.MaxPool2d(2),
        nets.Conv2d(8, 16, 3, padding=1),
        nets.MaxPool2d(2),
        nets.Flatten(),
        nets.Linear(16 * 3 * 3, 4),
    ]
    shapes, params = get("4.2").reference((1, 12, 12), layers)
    x = np.zeros((1, 1, 12, 12))
    for module, shape, count in zip(modules, shapes, params):
        x = module(x)
        assert x.shape[1:] == shape
        assert sum(p.data.size for p in module.parameters()) == count


def test_max_pool_reference_mask_is_where_labkit_sends_the_gradient_on_ties():
    x = np.random.default_rng(3).integers(0, 2, size=(2, 3, 6, 7)).astype(float)
    layer = nets.MaxPool2d(2)
    out = layer(x)
    routed = layer.backward(np.ones_like(out)) > 0
    ref_out, mask = get("4.4").reference(x, 2)
    np.testing.assert_array_equal(ref_out, out)
    np.testing.assert_array_equal(mask, routed)
    assert mask.sum() == out.size  # one input per window, ties or not


def test_im2col_times_flattened_weight_is_the_convolution():
    """The reference im2col, multiplied by the weight as a (C_out, C_in*k*k) matrix, is
    conv2d."""
    rng = np.random.default_rng(0)
    x, weight = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 3))
    cols = get("4.5").reference(x, 3, 2, 1)  # (N, C_in*9, L)
    y = (weight.reshape(4, -1) @ cols).reshape(2, 4, 4, 3)  # (N, C_out, H_out, W_out)
    np.testing.assert_allclose(
        y, conv2d(x, weight, stride=2, padding=1), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("k, s, p", [(3, 1, 0), (2, 2, 1), (3, 2, 1)])
def test_weight_grad_reference_matches_finite_differences(k, s, p):
    rng = np.random.default_rng(k * 10 + s)
    x, w = rng.normal(size=(7, 7)), rng.normal(size=(k, k))
    g = rng.normal(
        size=conv2d(x[None, None], w[None, None], stride=s, padding=p)[0, 0].shape
    )

    def loss(w_):
        return np.sum(
            g * conv2d(x[None, None], w_[None, None], stride=s, padding=p)[0, 0]
        )

    eps = 1e-6
    numeric = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        step = np.zeros_like(w)
        step[idx] = eps
        numeric[idx] = (loss(w + step) - loss(w - step)) / (2 * eps)
    got = get("4.6").reference(x, g, k, s, p)
    np.testing.assert_allclose(got, numeric, rtol=1e-7, atol=1e-8)
