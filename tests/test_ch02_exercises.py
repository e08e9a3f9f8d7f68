"""Chapter 2 exercises: the model solutions pass, and the mistakes the chapter warns about fail.

Each wrong answer below is a slip learners make (and the chapter's pitfall boxes describe); the
cases must tell it apart from the right answer, or the exercise does not test what it claims.
"""

import math

import numpy as np
import pytest

from labkit.exercises import chapter_exercises, get
from labkit.exercises.scoring import compare, evaluate, to_data


def _status(exercise_id, fn):
    return evaluate(get(exercise_id), fn).status


def test_chapter_2_has_seven_exercises_and_every_reference_passes():
    exercises = chapter_exercises(2)
    assert [e.id for e in exercises] == [f"2.{k}" for k in range(1, 8)]
    assert all(1 <= e.points <= 4 for e in exercises)
    for e in exercises:
        assert evaluate(e, e.reference).status == "passed", e.id


def test_cases_are_seeded_so_rebuilding_gives_identical_inputs_and_expected_values():
    for e in chapter_exercises(2):
        for a, b in zip(e.cases(), e.build_cases()):
            assert a.label == b.label
            assert compare(to_data(a.args), to_data(b.args), 0.0, 0.0) is None, (
                e.id,
                a.label,
            )
            assert compare(a.expected, b.expected, 0.0, 0.0) is None, (e.id, a.label)


def test_2_1_derivative_of_the_output_instead_of_the_input_fails():
    assert _status("2.1", lambda g, y: g * (1 - np.tanh(y) ** 2)) == "failed"


def test_2_2_mean_instead_of_sum_and_transposed_weight_gradient_fail():
    def mean_bias(G, X, W):
        return G @ W, G.T @ X, G.mean(axis=0)

    def transposed(G, X, W):
        return G @ W, X.T @ G, G.sum(axis=0)

    assert _status("2.2", mean_bias) in ("failed", "partial")
    assert _status("2.2", transposed) in ("failed", "partial")


def _log_softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    return Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))


def test_2_3_diagonal_only_softmax_derivative_fails():
    def diagonal_only(Z, y):
        n = len(y)
        P = np.exp(_log_softmax(Z))
        dL_dP = np.zeros_like(P)
        dL_dP[np.arange(n), y] = -1 / P[np.arange(n), y] / n
        return float(-_log_softmax(Z)[np.arange(n), y].mean()), P * (1 - P) * dL_dP

    assert _status("2.3", diagonal_only) == "failed"


def test_2_3_unshifted_softmax_fails_on_large_logits_only():
    def naive(Z, y):
        n = len(y)
        with np.errstate(all="ignore"):
            P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
            loss = float(-np.log(P[np.arange(n), y]).mean())
        grad = P.copy()
        grad[np.arange(n), y] -= 1
        return loss, grad / n

    result = evaluate(get("2.3"), naive)
    assert result.status == "partial"
    assert [label for label, reason in result.cases if reason] == [
        "N=6, 4 classes, logits near 1000"
    ]


def test_2_4_dividing_by_the_batch_size_twice_fails():
    reference = get("2.4").reference

    def twice(X, y, W1, b1, W2, b2):
        out = reference(X, y, W1, b1, W2, b2)
        return {k: (v if k == "loss" else v / len(y)) for k, v in out.items()}

    # the N=1 case cannot tell; every other case must
    result = evaluate(get("2.4"), twice)
    assert (
        result.status in ("failed", "partial")
        and sum(r is None for _, r in result.cases) <= 1
    )


def test_2_5_one_sided_difference_fails():
    def one_sided(W, X, Y, eps):
        loss = lambda V: np.mean((np.tanh(X @ V.T) - Y) ** 2)
        grad = np.zeros_like(W)
        for i in np.ndindex(W.shape):
            V = W.copy()
            V[i] += eps
            grad[i] = (loss(V) - loss(W)) / eps
        return grad

    assert _status("2.5", one_sided) == "failed"


def test_2_5_the_reference_does_not_change_its_input():
    case = get("2.5").cases()[1]
    W = case.args[0].copy()
    get("2.5").reference(W, *case.args[1:])
    np.testing.assert_array_equal(W, case.args[0])


@pytest.mark.parametrize(
    "wrong", ["xavier_is_lecun", "torch_default_is_bound", "conv_ignores_kernel"]
)
def test_2_6_common_confusions_fail(wrong):
    reference = get("2.6").reference

    def confused(shape, scheme):
        if wrong == "xavier_is_lecun" and scheme == "xavier":
            return 1 / math.sqrt(shape[1])
        if wrong == "torch_default_is_bound" and scheme == "torch_default":
            return 1 / math.sqrt(shape[1])
        if wrong == "conv_ignores_kernel":
            return reference(shape[:2], scheme)
        return reference(shape, scheme)

    assert _status("2.6", confused) == "partial"


def test_2_7_leaving_out_the_epsilon_or_clipping_each_array_alone_fails():
    def no_epsilon(grads, max_norm):
        total = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
        return tuple(g * min(1.0, max_norm / total) for g in grads), total

    def per_array(grads, max_norm):
        total = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
        return tuple(
            g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads
        ), total

    assert _status("2.7", no_epsilon) == "partial"
    assert _status("2.7", per_array) in ("failed", "partial")
