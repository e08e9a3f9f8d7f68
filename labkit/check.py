"""``check``: the learner's in-notebook verdict on one exercise.

The cell after each exercise calls ``check("2.3", softmax_grad)``. It gives the grader's
verdict: it sends the exercise cell that defined the function (its whole source, from
IPython's cache; elsewhere the function's own source) through the grader's own sandbox,
limits and allowed modules (``labkit.grade.grader.grade_source``), so an infinite loop
ends as TIMEOUT and an import the exercise does not allow is named. Before that it warns
about names the cell uses but takes from another cell, which the grader will not have.
Where bubblewrap cannot run, the cell runs in a plain process, and check says once that
the grader's isolation differs. It prints what passed, what failed and on which input,
and never raises for an exercise that is not attempted yet, so an untouched chapter
still runs top to bottom. On a failure it names
the known mistake it recognises (with the section to reread) and gives the first hint,
the idea; ``check("2.3", softmax_grad, hint=2)`` adds the recipe.
"""

from __future__ import annotations

from typing import Callable

from .exercises import Exercise, get
from .exercises.scoring import Result, evaluate, failure
from .grade.cells import outside_names, source_of

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
    print(format_result(_verdict(exercise, fn), recipe))


def _verdict(exercise: Exercise, fn: Callable) -> Result:
    """The grader's verdict on the cell that defined ``fn``; see the module
    docstring."""
    from .grade.grader import grade_source
    from .grade.sandbox import fallback_isolation

    if not callable(fn):
        return failure(exercise, "error", f"{exercise.function} is not a function")
    name = getattr(fn, "__name__", "")
    try:
        source = source_of(fn)
    except OSError:
        source = None
    if source is None or name == "<lambda>":
        print(
            f"note: check could not find the source of {name or 'this function'}; it "
            "ran it in this process, without the grader's sandbox"
        )
        return evaluate(exercise, fn)
    if not _is_cell(fn) and name != exercise.function and name.isidentifier():
        source += f"\n{exercise.function} = {name}\n"
    elsewhere = outside_names(source)
    if elsewhere:
        names = ", ".join(f"`{n}`" for n in elsewhere)
        print(
            f"note: this cell uses {names} without defining or importing {names}; the "
            "grader runs each exercise cell on its own, where they do not exist. "
            "Define "
            "or import them in the exercise cell."
        )
    return grade_source(exercise, source, isolation=fallback_isolation())


def _is_cell(fn: Callable) -> bool:
    """Whether ``fn`` was defined in an IPython cell (its source is the cell's)."""
    import linecache

    code = getattr(fn, "__code__", None)
    entry = linecache.cache.get(code.co_filename) if code is not None else None
    return entry is not None and len(entry) == 4 and entry[1] is None
