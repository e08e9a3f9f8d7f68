"""Known mistakes, held for every exercise of the course.

- every registered mistake is recognised on its own cases, named in the feedback with
  its section, and earns at most a quarter of the points;
- every reference passes with no mistake named, and a stub is not attempted;
- every exercise gives its hints in two tiers, the idea, then the recipe, and registers
  at least one mistake.
"""

from __future__ import annotations

import numpy as np
import pytest

from labkit.exercises import all_exercises
from labkit.exercises.scoring import evaluate

EXERCISES = [
    e for e in all_exercises() if e.build_cases.__module__.startswith("labkit.")
]
MISTAKES = [
    pytest.param(e, m, id=f"{e.id}-{m.id}") for e in EXERCISES for m in e.mistakes
]


@pytest.mark.parametrize("exercise, mistake", MISTAKES)
def test_a_registered_mistake_is_named_and_earns_at_most_a_quarter(exercise, mistake):
    with np.errstate(all="ignore"):
        result = evaluate(exercise, mistake.function)
    assert result.mistake == mistake.id, result.feedback
    assert f"Known mistake ({mistake.id})" in result.feedback
    assert mistake.section in result.feedback
    assert result.score <= exercise.points / 4, result.cases


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_the_reference_passes_and_a_stub_is_not_attempted(exercise):
    result = evaluate(exercise, exercise.reference)
    assert (result.status, result.mistake) == ("passed", None), result.feedback

    def stub(*args, **kwargs):
        raise NotImplementedError

    assert evaluate(exercise, stub).status == "not_attempted"


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_hints_come_in_two_tiers(exercise):
    idea, recipe = exercise.hints
    assert idea != recipe
    assert exercise.mistakes, (
        "each exercise registers the mistakes its chapter warns of"
    )
