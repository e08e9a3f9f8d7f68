"""``check``: the learner's in-notebook verdict on one exercise.

The cell after each exercise calls ``check("2.3", softmax_grad)``. It runs the same cases and the
same scoring as the grader (``labkit.exercises.scoring``), prints what passed, what failed and on
which input, with a hint, and never raises for an exercise that is not attempted yet, so an
untouched chapter still runs top to bottom.
"""

from __future__ import annotations

from typing import Callable

from .exercises import get
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


def format_result(result: Result) -> str:
    """A few readable lines: headline with points, one line per case, then the feedback."""
    lines = [
        f"Exercise {result.id} - {result.title}: {_MARK[result.status]} "
        f"({result.score:g}/{result.max_score} points)"
    ]
    for label, reason in result.cases:
        lines.append(
            f"  [ok]   {label}" if reason is None else f"  [fail] {label}: {reason}"
        )
    if result.status != "passed":
        lines.append(f"  {result.feedback}")
    return "\n".join(lines)


def check(exercise_id: str, fn: Callable) -> None:
    """Check ``fn`` against the cases of exercise ``exercise_id`` and print the verdict."""
    print(format_result(evaluate(get(exercise_id), fn)))
