"""Chapter 1 exercises: what the registered mistakes (tests/test_exercise_mistakes.py)
do not show: the oracles agree with labkit, the cases hold the edge they are built for,
and the parity compare accepts other right answers.
"""

import numpy as np
import pytest

from labkit import units
from labkit.exercises import get
from labkit.exercises.scoring import evaluate


def test_references_pass_every_case():
    for k in range(1, 7):
        ex = get(f"1.{k}")
        assert evaluate(ex, ex.reference).status == "passed", ex.id


def test_perceptron_oracle_is_labkit_units_perceptron():
    for case in get("1.1").cases()[:-1]:  # labkit.units needs at least one epoch
        X, y, epochs, lr = case.args
        run = units.perceptron(X, y, epochs=epochs, lr=lr)
        w, b, mistakes = case.expected
        np.testing.assert_allclose(run.weight, w, rtol=1e-12, atol=1e-12)
        assert run.bias == pytest.approx(b, abs=1e-12)
        np.testing.assert_array_equal(run.mistakes, mistakes)


def test_perceptron_xor_case_never_settles():
    case = next(c for c in get("1.1").cases() if "XOR" in c.label)
    assert np.all(case.expected[2][2:] == 4)


def test_dense_layer_relu_cases_hit_z_equal_zero():
    for case in get("1.2").cases():
        X, W, b, activation = case.args
        if "relu" in activation:
            assert np.any(X @ W.T + b == 0), case.label


def test_dense_layer_accepts_a_sigmoid_written_as_in_the_chapter():
    def textbook(X, W, b, activation):
        if activation != "sigmoid":
            return get("1.2").reference(X, W, b, activation)
        with np.errstate(over="ignore"):
            A = 1.0 / (1.0 + np.exp(-(X @ W.T + b)))
        return A, A * (1 - A)

    assert evaluate(get("1.2"), textbook).status == "passed"


def test_log_softmax_equal_logits_give_minus_log_c():
    case = next(c for c in get("1.3").cases() if "tie" in c.label)
    (Z,) = case.args
    np.testing.assert_allclose(
        case.expected, np.full_like(Z, -np.log(Z.shape[1])), rtol=1e-15
    )


def test_cross_entropy_cases_put_labels_far_below_the_maximum():
    for case in get("1.4").cases()[1:-1]:
        logits, target = case.args
        gap = logits.max(axis=1) - logits[np.arange(len(target)), target]
        assert np.all(gap >= 800), case.label


def test_logistic_step_reference_equals_labkit_units_bce():
    X, y, w, b, lr = get("1.5").cases()[1].args
    loss, _, _ = get("1.5").reference(X, y, w, b, lr)
    assert loss == pytest.approx(
        units.binary_cross_entropy_with_logits(X @ w + b, y), rel=1e-14
    )


def test_parity_compare_accepts_other_right_answers():
    xor_layers = units.XOR_STEP_LAYERS
    (W1, b1), (W2, b2) = xor_layers
    result = evaluate(
        get("1.6"), lambda n: (W1, b1, W2, b2) if n == 2 else get("1.6").reference(n)
    )
    assert result.status == "passed"
    scaled = lambda n: tuple(7.5 * p for p in get("1.6").reference(n))
    assert evaluate(get("1.6"), scaled).status == "passed"


@pytest.mark.parametrize("n", [5, 8, 10])
def test_parity_reference_is_right_beyond_the_cases(n):
    X = units.truth_table(n)
    W1, b1, W2, b2 = get("1.6").reference(n)
    out = units.step_network(X, [(W1, b1), (W2, b2)])[:, 0]
    np.testing.assert_array_equal(out, X.sum(axis=1) % 2)


def test_parity_compare_names_the_wrong_input_and_bad_shapes():
    compare = get("1.6").compare
    case = get("1.6").cases()[2]  # n = 3
    W1, b1, W2, b2 = get("1.6").reference(3)
    b1_off = b1.copy()
    b1_off[2] = -3.5  # the "at least 3" unit never fires: 111 goes wrong
    message = compare(case.expected, (W1, b1_off, W2, b2))
    assert "first on 111" in message and "outputs 0" in message
    assert "W1 should have shape (hidden, 3)" in compare(
        case.expected, (W1[:, :2], b1, W2, b2)
    )
    assert "W2 should have shape (1, 3)" in compare(case.expected, (W1, b1, W2[0], b2))
    assert "tuple" in compare(case.expected, (W1, b1, W2))
    assert compare(case.expected, [W1, b1, W2, b2]) is None  # a list is a sequence too
    assert "NaN" in compare(case.expected, (W1, b1 * np.nan, W2, b2))
    assert compare(case.expected, (W1, b1, W2, b2)) is None
