"""The exercise registry: one definition serves the chapter, its solution, `check` and the grader.

An exercise has a stable id (``"5.2"``: chapter 5, exercise 2), a title, points, and the name of
the function the learner implements. Its test cases live here, in labkit, never in the learner's
notebook: ``cases()`` builds them on seeded random inputs and computes each expected value with an
independent oracle (torch, scipy, a closed form). ``reference`` is a model solution; the test suite
holds it to the cases, and holds a stub to zero.

Chapter modules (``labkit/exercises/ch01.py`` ...) define their exercises with the ``exercise``
decorator::

    @exercise("1.1", title="A step unit", points=2, function="step_unit",
              reference=_step_unit, hint="Compare w . x + b with zero.")
    def _cases():
        rng = np.random.default_rng(11)
        X = rng.normal(size=(8, 3))
        return [Case("8 random inputs", (X, w, b), expected=oracle(X, w, b))]

Arguments and expected values are plain data only (numpy arrays, numbers, strings, booleans,
None, and tuples, lists and dicts of these), so they can cross to a grading worker and back.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Case", "Exercise", "exercise", "get", "all_exercises", "chapter_exercises"]

_ID = re.compile(r"^[1-9][0-9]*\.[1-9][0-9]*$")


@dataclass(frozen=True)
class Case:
    """One test case: a label a learner can read, the arguments, and the expected output."""

    label: str
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Exercise:
    """An exercise: what the learner implements and how it is checked.

    ``compare(expected, got)`` may replace the default comparison (shape, dtype, then values within
    ``rtol``/``atol``) for exercises with many right answers; it returns ``None`` when ``got`` is
    acceptable, or a message saying what is wrong.
    """

    id: str
    title: str
    points: int
    function: str
    build_cases: Callable[[], list[Case]]
    reference: Callable
    hint: str = ""
    rtol: float = 1e-7
    atol: float = 1e-10
    compare: Callable[[Any, Any], str | None] | None = None
    modules: tuple[str, ...] = ("numpy",)

    @property
    def chapter(self) -> int:
        return int(self.id.split(".")[0])

    def cases(self) -> list[Case]:
        """The test cases, built once per process (they are seeded, so always the same)."""
        if self.id not in _CASES:
            built = list(self.build_cases())
            if not built:
                raise ValueError(f"exercise {self.id} has no test cases")
            _CASES[self.id] = built
        return _CASES[self.id]


_REGISTRY: dict[str, Exercise] = {}
_CASES: dict[str, list[Case]] = {}
_LOADED = False


def exercise(
    id: str,
    *,
    title: str,
    points: int,
    function: str,
    reference: Callable,
    hint: str = "",
    rtol: float = 1e-7,
    atol: float = 1e-10,
    compare: Callable[[Any, Any], str | None] | None = None,
    modules: tuple[str, ...] = ("numpy",),
):
    """Decorator registering the decorated case builder as exercise ``id``.

    ``modules`` names the top-level packages beyond Python's standard library that the
    learner's code may import (most exercises: numpy only); ``check`` and the grader enforce
    the same rule.
    """
    if not _ID.match(id):
        raise ValueError(f"exercise id must look like '5.2', got {id!r}")
    if not isinstance(points, int) or points <= 0:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    if not function.isidentifier():
        raise ValueError(f"function must be a Python identifier, got {function!r}")

    def register(build_cases: Callable[[], list[Case]]) -> Callable[[], list[Case]]:
        if id in _REGISTRY:
            raise ValueError(f"exercise id {id!r} is registered twice")
        _REGISTRY[id] = Exercise(
            id,
            title,
            points,
            function,
            build_cases,
            reference,
            hint,
            rtol,
            atol,
            compare,
            tuple(modules),
        )
        return build_cases

    return register


def _load_all() -> None:
    """Import every chapter module of this package once, which registers its exercises."""
    global _LOADED
    if _LOADED:
        return
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("ch"):
            importlib.import_module(f"{__name__}.{info.name}")
    _LOADED = True


def _sort_key(exercise_id: str) -> tuple[int, int]:
    chapter, number = exercise_id.split(".")
    return int(chapter), int(number)


def get(exercise_id: str) -> Exercise:
    """The exercise with this id; a ValueError listing the known ids if there is none."""
    _load_all()
    exercise_id = str(exercise_id)
    if exercise_id not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY, key=_sort_key)) or "none"
        raise ValueError(f"unknown exercise id {exercise_id!r}; known ids: {known}")
    return _REGISTRY[exercise_id]


def all_exercises() -> list[Exercise]:
    """Every registered exercise, in chapter and number order."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY, key=_sort_key)]


def chapter_exercises(chapter: int) -> list[Exercise]:
    """The exercises of one chapter, in order."""
    return [ex for ex in all_exercises() if ex.chapter == chapter]
