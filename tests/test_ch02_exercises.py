"""Chapter 2 exercises: the cases hold what they are built for (the chapter's worked
example, zeros at the ReLU's kink, torch's own numbers), beyond the registered mistakes
of tests/test_exercise_mistakes.py.
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


def test_2_1_holds_the_chapters_worked_example():
    case = get("2.1").cases()[0]
    loss, grad = case.expected
    assert loss == pytest.approx(1.5846, abs=1e-4)
    np.testing.assert_allclose(grad, [0.6033, -0.5972, 0.7073], atol=1e-4)


def test_2_1_a_zero_weight_stops_the_gradient_below_it():
    case = next(c for c in get("2.1").cases() if "zero weight" in c.label)
    _, grad = case.expected
    # w_3 = 0: f_3 = 0, so w_4 gets no gradient, and nothing flows below layer 3
    assert list(grad == 0) == [True, True, False, True]


def test_2_2_every_case_hits_a_zero_pre_activation():
    for case in get("2.2").cases():
        _, X, W, b = case.args
        assert np.any(X @ W.T + b == 0), case.label


def test_2_5_the_reference_does_not_change_its_input():
    case = get("2.5").cases()[1]
    W = case.args[0].copy()
    get("2.5").reference(W, *case.args[1:])
    np.testing.assert_array_equal(W, case.args[0])


def test_2_6_matches_torch_init_draws():
    import torch

    torch.manual_seed(0)
    layer = torch.nn.Conv2d(16, 32, 5, dtype=torch.float64)
    scales = get("2.6").reference(tuple(layer.weight.shape))
    assert float(layer.weight.detach().std()) == pytest.approx(
        scales["torch_default"], rel=0.05
    )


def test_2_7_reference_leaves_its_inputs_alone_and_zero_steps_change_nothing():
    case = next(c for c in get("2.7").cases() if "zero steps" in c.label)
    w, b = case.args[2], case.args[3]
    before = w.copy()
    w_new, b_new, losses, norms = get("2.7").reference(*case.args)
    np.testing.assert_array_equal(w, before)
    np.testing.assert_array_equal(w_new, w)
    assert b_new == b and losses.shape == norms.shape == (0,)
