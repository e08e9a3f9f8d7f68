"""Chapter 1 exercises: the cases catch the mistakes they are built to catch.

The generic grader tests hold every reference to full marks and every stub to zero; here each
exercise's cases are shown to fail a plausible wrong answer (naive softmax, the column convention,
U(0) = 1, a parity network that is wrong on one input), and the parity compare to accept other
right answers.
"""

import numpy as np
import pytest

from labkit import units
from labkit.exercises import get
from labkit.exercises.scoring import evaluate


def _failed_labels(exercise_id, fn):
    result = evaluate(get(exercise_id), fn)
    return [label for label, reason in result.cases if reason is not None]


def test_references_pass_every_case():
    for k in range(1, 7):
        ex = get(f"1.{k}")
        assert evaluate(ex, ex.reference).status == "passed", ex.id


def test_step_layer_cases_hold_ties_at_zero_and_catch_u0_equal_1():
    ex = get("1.1")
    X, W, b = ex.cases()[1].args
    assert np.any(X @ W.T + b == 0)
    failed = _failed_labels("1.1", lambda X, W, b: (X @ W.T + b >= 0).astype(float))
    assert failed == ["12 integer inputs, 4 units, some z exactly 0"]


def test_step_layer_catches_the_column_convention():
    result = evaluate(
        get("1.1"), lambda X, W, b: (W @ X.T + b[:, None] > 0).astype(float)
    )
    assert result.status in ("failed", "error")


def test_mlp_forward_catches_a_missing_transpose_and_a_tanh_on_the_output():
    wrong_output = lambda X, W1, b1, W2, b2: (
        np.tanh(X @ W1.T + b1),
        np.tanh(np.tanh(X @ W1.T + b1) @ W2.T + b2),
    )
    assert evaluate(get("1.2"), wrong_output).score == 0
    no_transpose = lambda X, W1, b1, W2, b2: (
        np.tanh(X @ W1 + b1),
        np.tanh(X @ W1 + b1) @ W2 + b2,
    )
    assert evaluate(get("1.2"), no_transpose).score == 0


def _naive_log_softmax(Z):
    E = np.exp(Z)
    return np.log(E / E.sum(axis=1, keepdims=True))


def test_log_softmax_cases_catch_the_naive_formula():
    with np.errstate(all="ignore"):
        failed = _failed_labels("1.3", _naive_log_softmax)
    assert failed == [
        "logits near 1000 (a naive exp overflows)",
        "logits near -1000 (a naive exp underflows to 0)",
    ]


def test_log_softmax_equal_logits_give_minus_log_c():
    (Z,), expected = get("1.3").cases()[-1].args, get("1.3").cases()[-1].expected
    np.testing.assert_allclose(
        expected, np.full_like(Z, -np.log(Z.shape[1])), rtol=1e-15
    )


def test_cross_entropy_cases_catch_the_naive_formula_and_a_sum():
    def naive(logits, target):
        return float(-_naive_log_softmax(logits)[np.arange(len(target)), target].mean())

    with np.errstate(all="ignore"):
        failed = _failed_labels("1.4", naive)
    assert failed == ["confident logits of size 500 (a naive softmax gives nan or inf)"]

    ref = get("1.4").reference
    summed = lambda logits, target: ref(logits, target) * len(target)
    assert _failed_labels("1.4", summed) == [c.label for c in get("1.4").cases()[:-1]]


def test_logistic_step_cases_catch_a_naive_loss_and_a_missing_mean():
    ref = get("1.5").reference

    def naive_loss(X, y, w, b, lr):
        _, w_new, b_new = ref(X, y, w, b, lr)
        p = 1.0 / (1.0 + np.exp(-(X @ w + b)))
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))), w_new, b_new

    with np.errstate(all="ignore"):
        assert _failed_labels("1.5", naive_loss) == [
            "weights of size 300: |z| in the hundreds"
        ]

    def summed_gradient(X, y, w, b, lr):
        loss, w_new, b_new = ref(X, y, w, b, lr)
        return loss, w - len(y) * (w - w_new), b - len(y) * (b - b_new)

    assert _failed_labels("1.5", summed_gradient) == [
        c.label for c in get("1.5").cases()[:-1]
    ]


def test_logistic_step_reference_equals_labkit_units_bce():
    X, y, w, b, lr = get("1.5").cases()[2].args
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


@pytest.mark.parametrize("n", [1, 5, 8, 10])
def test_parity_reference_is_right_beyond_the_cases(n):
    X = units.truth_table(n)
    W1, b1, W2, b2 = get("1.6").reference(n)
    out = units.step_network(X, [(W1, b1), (W2, b2)])[:, 0]
    np.testing.assert_array_equal(out, X.sum(axis=1) % 2)


def test_parity_compare_names_the_wrong_input_and_bad_shapes():
    compare = get("1.6").compare
    case = get("1.6").cases()[1]  # n = 3
    W1, b1, W2, b2 = get("1.6").reference(3)
    b1_off = b1.copy()
    b1_off[2] = -3.5  # the "at least 3" unit never fires: 111 goes wrong
    message = compare(case.expected, (W1, b1_off, W2, b2))
    assert "first on 111" in message and "outputs 0" in message
    assert "W1 should have shape (hidden, 3)" in compare(
        case.expected, (W1[:, :2], b1, W2, b2)
    )
    assert "W2 should have shape (1, 3)" in compare(case.expected, (W1, b1, W2[0], b2))
    assert "tuple" in compare(case.expected, [W1, b1, W2, b2])
    assert "NaN" in compare(case.expected, (W1, b1 * np.nan, W2, b2))
    assert compare(case.expected, (W1, b1, W2, b2)) is None
