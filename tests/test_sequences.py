"""labkit.data sequence tasks: delayed recall and the adding problem (time-first (T, N,
F) inputs).

Each task is held to its definition, recomputed independently from the returned inputs.
"""

import numpy as np
import pytest

from labkit.data import adding_problem, delayed_recall


def test_delayed_recall_shapes_and_one_hot_inputs():
    x, y = delayed_recall(n=7, length=9, num_symbols=5, rng=0)
    assert x.shape == (9, 7, 5) and x.dtype == np.float64
    assert y.shape == (7,) and y.dtype == np.int64
    np.testing.assert_array_equal(x.sum(axis=-1), 1.0)
    assert set(np.unique(x)) == {0.0, 1.0}


@pytest.mark.parametrize("delay", [0, 1, 4, 8])
def test_delayed_recall_target_is_the_symbol_delay_steps_before_the_end(delay):
    x, y = delayed_recall(n=50, length=9, delay=delay, num_symbols=4, rng=1)
    np.testing.assert_array_equal(y, x[9 - 1 - delay].argmax(axis=-1))


def test_delayed_recall_defaults_to_the_first_symbol_and_is_seeded():
    x, y = delayed_recall(n=20, length=6, rng=3)
    np.testing.assert_array_equal(y, x[0].argmax(axis=-1))
    x2, y2 = delayed_recall(n=20, length=6, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)


def test_delayed_recall_symbols_are_roughly_uniform():
    x, _ = delayed_recall(n=2000, length=5, num_symbols=4, rng=4)
    freq = x.reshape(-1, 4).mean(axis=0)
    np.testing.assert_allclose(freq, 0.25, atol=0.02)


def test_adding_problem_target_is_the_sum_of_the_two_marked_values():
    x, y = adding_problem(n=40, length=12, rng=5)
    assert x.shape == (12, 40, 2) and y.shape == (40,) and y.dtype == np.float64
    values, markers = x[..., 0], x[..., 1]
    np.testing.assert_array_equal(markers.sum(axis=0), 2.0)
    np.testing.assert_allclose(y, (values * markers).sum(axis=0), rtol=1e-15)
    assert values.min() >= 0.0 and values.max() < 1.0


def test_adding_problem_puts_one_marker_in_each_half():
    x, _ = adding_problem(n=300, length=11, rng=6)
    markers = x[..., 1]
    np.testing.assert_array_equal(markers[:5].sum(axis=0), 1.0)
    np.testing.assert_array_equal(markers[5:].sum(axis=0), 1.0)
    assert (
        markers[0].any() and markers[4].any() and markers[5].any() and markers[10].any()
    )


def test_adding_problem_constant_baseline_is_one_sixth():
    _, y = adding_problem(n=40000, length=10, rng=7)
    assert np.mean((y - 1.0) ** 2) == pytest.approx(1 / 6, rel=0.03)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: delayed_recall(n=0), "n must be"),
        (lambda: delayed_recall(length=0), "length"),
        (lambda: delayed_recall(num_symbols=1), "num_symbols"),
        (lambda: delayed_recall(length=5, delay=5), "delay"),
        (lambda: delayed_recall(length=5, delay=-1), "delay"),
        (lambda: delayed_recall(length=5, delay=1.5), "delay"),
        (lambda: delayed_recall(rng=-1), "rng"),
        (lambda: adding_problem(n=0), "n must be"),
        (lambda: adding_problem(length=1), "length"),
        (lambda: adding_problem(rng="seed"), "rng"),
    ],
)
def test_sequence_tasks_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
