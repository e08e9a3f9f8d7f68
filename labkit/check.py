"""``check``: the learner's in-notebook verdict on one exercise.

The cell after each exercise calls ``check("2.3", softmax_grad)``. It runs the same
cases and the same scoring as the grader (``labkit.exercises.scoring``), prints what
passed, what failed and on which input, and never raises for an exercise that is not
attempted yet, so an untouched chapter still runs top to bottom. On a failure it names
the known mistake it recognises (with the section to reread) and gives the first hint,
the idea; ``check("2.3", softmax_grad, hint=2)`` adds the recipe.
"""

from __future__ import annotations

from typing import Callable

from .exercises import Exercise, get
from .exercises.scoring import Result, evaluate

_MARK = {
    "passed": "PASSED",
    "partial": "PARTIAL",
    "failed": "FAILED",
    "error": "ERROR",
    "not_attempted": "NOT ATTEMPTED",
    "timeout": "TIMEOUT",
    "memory": "MEMORY",
}


def format_result(result: Result, recipe: str = "") -> str:
    """A few readable lines: headline with points, one line per case, then the feedback
    (the failing input, the known mistake, the first hint), then ``recipe`` if any."""
    lines = [
        f"Exercise {result.id} - {result.title}: {_MARK[result.status]} "
        f"({result.score:g}/{result.max_score} points)"
    ]
    for label, reason in result.cases:
        lines.append(
            f"  [ok]   {label}" if reason is None else f"  [fail] {label}: {reason}"
        )
    if result.status != "passed":
        lines += [f"  {line}" for line in result.feedback.splitlines()]
    if recipe:
        lines.append(f"  Recipe: {recipe}")
    return "\n".join(lines)


def _recipe(exercise: Exercise, hint: int) -> str:
    if hint not in (1, 2):
        raise ValueError(
            "hint must be 1 (the idea, shown on a failure) or 2 (the recipe), "
            f"got {hint!r}"
        )
    if hint == 1:
        return ""
    return exercise.hints[1] if len(exercise.hints) > 1 else "(this exercise has none)"


def check(exercise_id: str, fn: Callable, hint: int = 1) -> None:
    """Check ``fn`` against the cases of exercise ``exercise_id`` and print the verdict.

    ``hint=2`` also prints the recipe, the second tier of hints.
    """
    exercise = get(exercise_id)
    recipe = _recipe(exercise, hint)
    print(format_result(evaluate(exercise, fn), recipe))
