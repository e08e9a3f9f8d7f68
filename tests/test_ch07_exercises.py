"""Chapter 7 exercises: every reference passes, every registered mistake is recognised
and earns at most a quarter of the points, and other plausible slips fail too."""

import numpy as np
import pytest

from labkit.exercises import chapter_exercises, get
from labkit.exercises.scoring import evaluate

MISTAKES = [
    pytest.param(e.id, m, id=f"{e.id}-{m.id}")
    for e in chapter_exercises(7)
    for m in e.mistakes
]


def test_chapter_7_has_six_exercises_and_every_reference_passes():
    exercises = chapter_exercises(7)
    assert [e.id for e in exercises] == ["7.1", "7.2", "7.3", "7.4", "7.5", "7.6"]
    for e in exercises:
        assert evaluate(e, e.reference).status == "passed", e.id
        assert e.modules == ("numpy",) and len(e.hints) == 2 and e.mistakes


@pytest.mark.parametrize("exercise_id, mistake", MISTAKES)
def test_each_registered_mistake_is_recognised_and_earns_a_quarter_at_most(
    exercise_id, mistake
):
    exercise = get(exercise_id)
    result = evaluate(exercise, mistake.function)
    assert result.status != "passed"
    assert result.score <= exercise.points / 4
    assert result.mistake == mistake.id
    assert mistake.description in result.feedback


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_attention_scaled_by_d_instead_of_its_root_fails():
    def scaled_by_d(q, k, v, mask):
        s = np.where(mask, q @ np.swapaxes(k, -1, -2) / q.shape[-1], -np.inf)
        m = s.max(axis=-1, keepdims=True)
        e = np.exp(s - np.where(np.isfinite(m), m, 0.0))
        total = e.sum(axis=-1, keepdims=True)
        w = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
        return w @ v, w

    assert evaluate(get("7.1"), scaled_by_d).score <= get("7.1").points / 4


def test_attention_returning_nan_for_an_empty_row_fails_that_case():
    def nan_rows(q, k, v, mask):
        s = np.where(mask, q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]), -np.inf)
        with np.errstate(invalid="ignore"):
            w = _softmax(s)
        return w @ v, w

    result = evaluate(get("7.1"), nan_rows)
    assert result.status == "partial"
    failed = [label for label, reason in result.cases if reason]
    assert failed == ["a query with every key masked (weights and output 0)"]


def test_positions_counted_from_one_fail():
    ref = get("7.5").reference
    assert evaluate(get("7.5"), lambda T, d: ref(T + 1, d)[1:]).status == "failed"


def test_layer_norm_without_eps_fails_on_the_constant_example():
    def no_eps(x, gamma, beta, eps):
        with np.errstate(invalid="ignore", divide="ignore"):
            return get("7.6").reference(x, gamma, beta, 0.0)

    assert evaluate(get("7.6"), no_eps).status != "passed"


def test_multihead_without_output_projection_fails():
    ref = get("7.4").reference

    def no_out_proj(x, w_in, b_in, w_out, b_out, h):
        return ref(x, w_in, b_in, np.eye(len(w_out)), np.zeros_like(b_out), h)

    assert evaluate(get("7.4"), no_out_proj).status == "failed"
