"""Chapter 4 exercises: the cases catch the classic mistakes, and the references tie to labkit.conv."""

import numpy as np
import pytest

from labkit.conv import conv2d
from labkit.exercises import get
from labkit.exercises.scoring import evaluate


def score(exercise_id, fn):
    return evaluate(get(exercise_id), fn).status


def test_output_size_with_true_division_fails():
    def float_formula(H, k, s, p):
        return (H + 2 * p - k) / s + 1

    def round_instead_of_floor(H, k, s, p):
        return np.round((H + 2 * p - k) / s).astype(np.int64) + 1

    assert score("4.1", float_formula) != "passed"
    assert score("4.1", round_instead_of_floor) != "passed"


def test_flipping_the_kernel_fails_the_cross_correlation_exercises():
    ref2, ref3 = get("4.2").reference, get("4.3").reference
    assert score("4.2", lambda x, w: ref2(x, w[::-1])) != "passed"
    assert score("4.3", lambda x, w, s, p: ref3(x, w[::-1, ::-1], s, p)) != "passed"


def test_ignoring_stride_or_padding_fails():
    ref = get("4.3").reference
    assert score("4.3", lambda x, w, s, p: ref(x, w, 1, p)) != "passed"
    assert score("4.3", lambda x, w, s, p: ref(x, w, s, 0)) != "passed"


def test_mask_must_mark_only_the_maxima():
    ref = get("4.4").reference

    def mask_everything(x, k):
        out, mask = ref(x, k)
        return out, np.ones_like(mask)

    def float_mask(x, k):
        out, mask = ref(x, k)
        return out, mask.astype(np.float64)

    assert score("4.4", mask_everything) != "passed"
    assert score("4.4", float_mask) != "passed"


def test_im2col_times_flattened_weight_is_the_convolution():
    """The reference im2col, multiplied by the weight as a (C_out, C_in*k*k) matrix, is conv2d."""
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
