"""Chapter 3 exercises: the cases hold the edges they are built for, beyond the
registered mistakes of tests/test_exercise_mistakes.py.
"""

import numpy as np

from labkit.exercises import chapter_exercises, get
from labkit.exercises.scoring import evaluate


def test_chapter_3_has_six_exercises_and_every_reference_passes():
    exercises = chapter_exercises(3)
    assert [e.id for e in exercises] == ["3.1", "3.2", "3.3", "3.4", "3.5", "3.6"]
    for e in exercises:
        assert 1 <= e.points <= 4
        assert evaluate(e, e.reference).status == "passed", e.id


def test_bigram_rows_sum_to_one_and_a_single_id_gives_the_uniform_table():
    for case in get("3.1").cases():
        np.testing.assert_allclose(case.expected.sum(axis=1), 1.0, rtol=1e-14)
    single = next(c for c in get("3.1").cases() if "single id" in c.label)
    np.testing.assert_array_equal(single.expected, np.full((3, 3), 1 / 3))


def test_log_prob_with_k_zero_and_an_unseen_bigram_is_minus_infinity():
    case = next(c for c in get("3.2").cases() if "k=0:" in c.label)
    assert case.expected == -np.inf


def test_sampling_cases_put_u_exactly_on_a_boundary_of_the_cdf():
    for case in get("3.3").cases():
        logits, temperature, u = case.args
        V = logits.shape[1]
        assert np.all(logits[0] == logits[0, 0]) and u[0] == 0.5
        assert case.expected[0] == V // 2  # the first index whose cdf EXCEEDS 1/2
        assert case.expected[1] == 0  # u = 0: the first index of positive probability


def test_lstm_with_zero_weights_halves_the_memory():
    case = next(c for c in get("3.6").cases() if "zero" in c.label)
    _, _, c, *_ = case.args
    h_new, c_new = case.expected
    np.testing.assert_allclose(c_new, 0.5 * c, rtol=1e-15)
    np.testing.assert_allclose(h_new, 0.5 * np.tanh(0.5 * c), rtol=1e-15)
