"""Every known mistake an exercise registers is recognised and earns at most a quarter.

A mistake is a wrong answer the chapter warns about, registered as a wrong reference
function. Run through the scorer like a learner's function, it must be named (its id in
``Result.mistake``, with the section to reread in the feedback) and score at most 25% of
the points: the cases are built so that the very mistake an exercise targets cannot
collect partial credit.
"""

from __future__ import annotations

import pytest

from labkit.exercises import all_exercises
from labkit.exercises.scoring import evaluate

MISTAKES = [
    pytest.param(exercise, mistake, id=f"{exercise.id}-{mistake.id}")
    for exercise in all_exercises()
    if exercise.build_cases.__module__.startswith("labkit.")
    for mistake in exercise.mistakes
]


@pytest.mark.parametrize("exercise, mistake", MISTAKES)
def test_a_registered_mistake_is_named_and_earns_at_most_a_quarter(exercise, mistake):
    result = evaluate(exercise, mistake.function)
    assert result.mistake == mistake.id, result.feedback
    assert result.score <= exercise.points / 4, result.feedback
    assert mistake.section in result.feedback
