"""Scoring: turn what a learner's function returned on each case into points and feedback.

The same three steps serve the in-notebook ``check`` and the grader's worker processes:

1. ``run_case(fn, case)`` calls the function on a copy of the case's arguments and records an
   ``Outcome``: a returned value (converted to plain data by ``to_data``), an exception, or
   ``NotImplementedError`` (the untouched stub).
2. ``compare(expected, got)`` checks type, then shape and dtype, then values, so a wrong shape
   can never pass by broadcasting.
3. ``summarise(exercise, outcomes)`` gives a ``Result``: points (partial credit per case), a
   status, and feedback that names the failing input and carries the hint.
"""

from __future__ import annotations

import copy
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from . import Case, Exercise

STATUSES = (
    "passed",
    "partial",
    "failed",
    "error",
    "timeout",
    "memory",
    "not_attempted",
)
_MAX_ITEMS = 10_000_000  # outputs larger than this many numbers are refused


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

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "score": self.score,
            "max_score": self.max_score,
            "status": self.status,
            "feedback": self.feedback,
        }


def to_data(obj: Any, _depth: int = 0) -> Any:
    """Plain-data copy of a returned value: arrays, Python numbers, str, bool, None, containers.

    Torch tensors become numpy arrays; numpy scalars become Python numbers; tuples and lists
    become tuples. Anything else raises TypeError naming its type.
    """
    if _depth > 20:
        raise TypeError("the returned value is nested more than 20 levels deep")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, numbers.Integral) and not isinstance(obj, np.ndarray):
        return int(obj)
    if isinstance(obj, numbers.Real) and not isinstance(obj, np.ndarray):
        return float(obj)
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise TypeError(
                f"arrays of dtype {obj.dtype} are not accepted; return numbers"
            )
        if obj.size > _MAX_ITEMS:
            raise TypeError(
                f"the returned array has {obj.size} items, more than {_MAX_ITEMS}"
            )
        return np.array(obj, copy=True)
    if isinstance(obj, (tuple, list)):
        return tuple(to_data(item, _depth + 1) for item in obj)
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("dictionaries must have string keys")
        return {k: to_data(v, _depth + 1) for k, v in obj.items()}
    raise TypeError(
        f"a {type(obj).__name__} cannot be checked; return numpy arrays or numbers"
    )


def _kind(dtype: np.dtype) -> str:
    return {"b": "bool", "i": "integer", "u": "integer", "f": "float"}[dtype.kind]


def compare(
    expected: Any, got: Any, rtol: float, atol: float, where: str = "output"
) -> str | None:
    """None when ``got`` matches ``expected``; otherwise a message naming what differs."""
    if isinstance(expected, np.ndarray):
        if not isinstance(got, np.ndarray):
            return f"{where} should be a numpy array of shape {expected.shape}, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"{where} has shape {got.shape}, expected {expected.shape}"
        if _kind(got.dtype) != _kind(expected.dtype):
            return f"{where} has dtype {got.dtype}, expected a {_kind(expected.dtype)} array"
        if expected.dtype.kind == "f":
            bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
        else:
            bad = got != expected
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            return (
                f"{where} differs at {int(bad.sum())} of {bad.size} entries; first at index "
                f"{idx}: got {got[idx].item()!r}, expected {expected[idx].item()!r}"
            )
        return None
    if isinstance(expected, bool):
        if not isinstance(got, bool):
            return f"{where} should be a bool, got {type(got).__name__}"
        return None if got == expected else f"{where} is {got}, expected {expected}"
    if isinstance(expected, int):
        if isinstance(got, bool) or not isinstance(got, int):
            return f"{where} should be an integer, got {type(got).__name__}"
        return None if got == expected else f"{where} is {got}, expected {expected}"
    if isinstance(expected, float):
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            if isinstance(got, np.ndarray) and got.shape == ():
                got = float(got)
            else:
                return f"{where} should be a number, got {type(got).__name__}"
        if math.isnan(expected) and math.isnan(got):
            return None
        if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol):
            return None
        return f"{where} is {got!r}, expected {expected!r}"
    if isinstance(expected, tuple):
        if not isinstance(got, tuple) or len(got) != len(expected):
            size = len(got) if isinstance(got, tuple) else "not a tuple"
            return f"{where} should be a tuple of {len(expected)} items, got {size}"
        for i, (e, g) in enumerate(zip(expected, got)):
            message = compare(e, g, rtol, atol, f"{where}[{i}]")
            if message:
                return message
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            keys = sorted(got) if isinstance(got, dict) else type(got).__name__
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
    """Call ``fn`` on a private copy of the case's arguments and record what happened."""
    args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
    try:
        value = fn(*args, **kwargs)
    except NotImplementedError:
        return Outcome("not_implemented")
    except Exception as exc:  # the learner's bug is feedback, not a crash
        return Outcome("raised", error=f"{type(exc).__name__}: {exc}")
    try:
        return Outcome("value", value=to_data(value))
    except TypeError as exc:
        return Outcome("raised", error=f"the return value: {exc}")


def judge(exercise: Exercise, case: Case, outcome: Outcome) -> str | None:
    """None when the outcome passes the case, else the reason it does not."""
    if outcome.kind == "not_implemented":
        return "raised NotImplementedError"
    if outcome.kind == "raised":
        return f"raised {outcome.error}"
    try:
        if exercise.compare is not None:
            return exercise.compare(case.expected, outcome.value)
        return compare(case.expected, outcome.value, exercise.rtol, exercise.atol)
    except (
        Exception
    ) as exc:  # a value of the right type may still upset a custom compare
        return f"could not be compared ({type(exc).__name__}: {exc})"


def summarise(
    exercise: Exercise, outcomes: list[Outcome], cases: list[Case] | None = None
) -> Result:
    """Points, status and feedback from one outcome per case (in case order).

    ``cases`` defaults to ``exercise.cases()``; the grader passes the same cases read back from
    its cache, so it need not rebuild them with their oracles in every process.
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
    if passed == len(cases):
        status, feedback = "passed", f"all {len(cases)} cases passed"
    else:
        all_raised = all(o.kind == "raised" for o in outcomes)
        status = "partial" if passed else ("error" if all_raised else "failed")
        label, reason = next((l, r) for l, r in verdicts if r is not None)
        feedback = f"{passed} of {len(cases)} cases passed; on {label}: {reason}"
        if exercise.hint:
            feedback += f". Hint: {exercise.hint}"
    return Result(
        exercise.id, exercise.title, score, exercise.points, status, feedback, verdicts
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
