"""Scoring: turn what a learner's function returned on each case into points and
feedback.

The same three steps serve ``evaluate`` (in this process) and the grader (``check``
too):

1. ``run_case(fn, case)`` calls the function on read-only copies of the case's arguments
   and records an ``Outcome``: a returned value (converted to plain data by
   ``to_data``), an exception, or ``NotImplementedError`` (the untouched stub). Both
   come from ``labkit.grade.runner``, the code that runs inside the grader's sandbox.
2. ``compare(expected, got)`` checks type, then shape and dtype, then values, so a wrong
   shape can never pass by broadcasting.
3. ``summarise(exercise, outcomes)`` gives a ``Result``: points (partial credit per
   case), a status, and feedback that names the failing input, the known mistake
   recognised (see ``recognise``) and the first tier of hints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from labkit.grade.runner import call_case, to_data

from . import Case, Exercise, Mistake

__all__ = ["Outcome", "Result", "compare", "describe", "evaluate", "failure", "judge"]
__all__ += ["judge_value", "recognise", "run_case", "summarise", "to_data"]

STATUSES = (
    "passed",
    "partial",
    "failed",
    "error",
    "timeout",
    "memory",
    "not_attempted",
)


@dataclass(frozen=True)
class Outcome:
    """What one call did: ``kind`` is "value", "raised" or "not_implemented"."""

    kind: str
    value: Any = None
    error: str = ""


@dataclass
class Result:
    """The verdict on one exercise."""

    id: str
    title: str
    score: float
    max_score: int
    status: str
    feedback: str
    cases: list[tuple[str, str | None]] = field(
        default_factory=list
    )  # (label, failure or None)
    mistake: str | None = None  # the id of the known mistake recognised, if any

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "feedback": self.feedback,
            "mistake": self.mistake,
        }


_KIND = {"b": "bool", "i": "integer", "u": "integer", "f": "float"}


def _kind(dtype: np.dtype) -> str:
    return _KIND[dtype.kind]


def _a(word: str) -> str:
    """``word`` with its indefinite article: "an integer", "a float"."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def describe(value: Any) -> str:
    """What ``value`` is, for a message: "a list", "None", "a float64 array of shape
    (3,)"."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"{_a(str(value.dtype))} array of shape {value.shape}"
    name = {bool: "bool", int: "int", float: "float", str: "str"}.get(type(value))
    return _a(name or type(value).__name__)


def _as_array(got: Any) -> np.ndarray | None:
    """A list or tuple of numbers as an array (where an array is asked for), or None."""
    if not isinstance(got, (list, tuple)):
        return None
    try:
        array = np.asarray(got)
    except (ValueError, TypeError):
        return None
    return array if array.dtype.kind in "biuf" else None


def _lower_precision(expected: np.ndarray, got: np.ndarray) -> bool:
    return (
        expected.dtype.kind == "f"
        and got.dtype.kind == "f"
        and got.dtype.itemsize < expected.dtype.itemsize
    )


def compare(
    expected: Any, got: Any, rtol: float, atol: float, where: str = "output"
) -> str | None:
    """None when ``got`` matches ``expected``; otherwise a message naming what differs.

    The type comes first, then shape and dtype, then values, so a message is about one
    of them: a list of numbers where an array is expected is read as an array, a list
    where a tuple is expected as a tuple; a float32 array that agrees only to float32
    precision where float64 is expected is told so, rather than shown differing values.
    """
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            array = _as_array(got)
            if array is None:
                return (
                    f"{where} should be a numpy array of shape {expected.shape}, "
                    f"got {describe(got)}"
                )
            got = array
        if got.shape != expected.shape:
            return f"{where} has shape {got.shape}, expected {expected.shape}"
        if _kind(got.dtype) != _kind(expected.dtype):
            return (
                f"{where} has dtype {got.dtype}, expected "
                f"{_a(_kind(expected.dtype))} array ({expected.dtype})"
            )
        if expected.dtype.kind == "f":
            bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
        else:
            bad = got != expected
        if bad.any():
            if _lower_precision(expected, got) and np.allclose(
                got,
                expected,
                rtol=max(rtol, 1e-4),
                atol=max(atol, 1e-6),
                equal_nan=True,
            ):
                return (
                    f"{where} has dtype {got.dtype}, so its values agree only to "
                    f"{got.dtype} precision; compute in {expected.dtype}"
                )
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return (
                f"{where} differs at {int(bad.sum())} of {bad.size} entries; first at "
                "index "
                f"{idx}: got {got[idx].item()!r}, expected {expected[idx].item()!r}"
            )
        return None
    if isinstance(expected, bool):
        if not isinstance(got, bool):
            return f"{where} should be a bool, got {describe(got)}"
        return None if got == expected else f"{where} is {got}, expected {expected}"
    if isinstance(expected, int):
        if isinstance(got, bool) or not isinstance(got, int):
            return f"{where} should be an integer, got {describe(got)}"
        return None if got == expected else f"{where} is {got}, expected {expected}"
    if isinstance(expected, float):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            if (
                isinstance(got, np.ndarray)
                and got.shape == ()
                and got.dtype.kind in "iuf"
            ):
                got = float(got)
            else:
                return f"{where} should be a number, got {describe(got)}"
        if math.isnan(expected) and math.isnan(got):
            return None
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{where} is {got!r}, expected {expected!r}"
    if isinstance(expected, (tuple, list)):
        kind = type(expected).__name__
        if not isinstance(got, (tuple, list)):
            return (
                f"{where} should be a {kind} of {len(expected)} items, "
                f"got {describe(got)}"
            )
        if len(got) != len(expected):
            return (
                f"{where} should be a {kind} of {len(expected)} items, got "
                f"{describe(got)} of {len(got)} items"
            )
        for i, (e, g) in enumerate(zip(expected, got)):
            message = compare(e, g, rtol, atol, f"{where}[{i}]")
            if message:
                return message
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            keys = sorted(got) if isinstance(got, dict) else describe(got)
            return f"{where} should be a dict with keys {sorted(expected)}, got {keys}"
        for key in expected:
            message = compare(expected[key], got[key], rtol, atol, f"{where}[{key!r}]")
            if message:
                return message
        return None
    if got == expected and type(got) is type(expected):
        return None
    return f"{where} is {got!r}, expected {expected!r}"


def run_case(fn: Callable, case: Case) -> Outcome:
    """Call ``fn`` on read-only private copies of the case's arguments (``call_case``,
    the grader's own) and record what happened."""
    return Outcome(*call_case(fn, case.args, case.kwargs))


def judge(exercise: Exercise, case: Case, outcome: Outcome) -> str | None:
    """None when the outcome passes the case, else the reason it does not."""
    if outcome.kind == "not_implemented":
        return "raised NotImplementedError"
    if outcome.kind == "raised":
        return f"raised {outcome.error}"
    return judge_value(exercise, case, outcome.value)


def judge_value(exercise: Exercise, case: Case, value: Any) -> str | None:
    """None when a returned ``value`` (plain data) passes the case, else the reason."""
    try:
        if exercise.compare is not None:
            return exercise.compare(case.expected, value)
        return compare(case.expected, value, exercise.rtol, exercise.atol)
    except Exception as exc:  # a value of the right type may upset a custom compare
        return f"could not be compared ({type(exc).__name__}: {exc})"


def recognise(
    exercise: Exercise, cases: list[Case], outcomes: list[Outcome]
) -> Mistake | None:
    """The first registered mistake whose outputs the learner's match, or None.

    A mistake is recognised when, on every case where its output fails the reference
    (the cases carrying its output), the learner's output equals the mistake's.
    """
    for mistake in exercise.mistakes:
        told_apart = [
            (case.mistakes[mistake.id], outcome)
            for case, outcome in zip(cases, outcomes)
            if mistake.id in case.mistakes
        ]
        if told_apart and all(
            outcome.kind == "value"
            and compare(wrong, outcome.value, exercise.rtol, exercise.atol) is None
            for wrong, outcome in told_apart
        ):
            return mistake
    return None


def summarise(
    exercise: Exercise, outcomes: list[Outcome], cases: list[Case] | None = None
) -> Result:
    """Points, status and feedback from one outcome per case (in case order).

    ``cases`` defaults to ``exercise.cases()``; the grader passes the same cases read
    back from its cache, so it need not rebuild them with their oracles in every
    process.
    """
    cases = exercise.cases() if cases is None else cases
    if len(outcomes) != len(cases):
        raise ValueError(f"expected {len(cases)} outcomes, got {len(outcomes)}")
    if any(o.kind == "not_implemented" for o in outcomes):
        return failure(
            exercise,
            "not_attempted",
            f"not attempted: {exercise.function} still raises NotImplementedError",
        )
    verdicts = [
        (case.label, judge(exercise, case, o)) for case, o in zip(cases, outcomes)
    ]
    passed = sum(reason is None for _, reason in verdicts)
    score = round(exercise.points * passed / len(cases), 2)
    mistake = None
    if passed == len(cases):
        status, feedback = "passed", f"all {len(cases)} cases passed"
    else:
        all_raised = all(o.kind == "raised" for o in outcomes)
        status = "partial" if passed else ("error" if all_raised else "failed")
        label, reason = next((l, r) for l, r in verdicts if r is not None)
        lines = [f"{passed} of {len(cases)} cases passed; on {label}: {reason}"]
        mistake = recognise(exercise, cases, outcomes)
        if mistake is not None:
            lines.append(
                f"Known mistake ({mistake.id}): {mistake.description} "
                f"Reread {mistake.section}."
            )
        if exercise.hints:
            lines.append(f"Hint: {exercise.hints[0]}")
        feedback = "\n".join(lines)
    return Result(
        exercise.id,
        exercise.title,
        score,
        exercise.points,
        status,
        feedback,
        verdicts,
        None if mistake is None else mistake.id,
    )


def failure(exercise: Exercise, status: str, feedback: str) -> Result:
    """A zero-point result for an exercise that could not be run case by case."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    return Result(exercise.id, exercise.title, 0.0, exercise.points, status, feedback)


def evaluate(exercise: Exercise, fn: Callable) -> Result:
    """Run ``fn`` in this process on every case of ``exercise`` and score it."""
    if not callable(fn):
        return failure(exercise, "error", f"{exercise.function} is not a function")
    return summarise(exercise, [run_case(fn, case) for case in exercise.cases()])
