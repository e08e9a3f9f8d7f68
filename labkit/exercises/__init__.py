"""The exercise registry: one definition serves the chapter, its solution, `check` and
the grader.

An exercise has a stable id (``"5.2"``: chapter 5, exercise 2), a title, points, and the
name of the function the learner implements. Its test cases live here, in labkit, never
in the learner's notebook: ``cases()`` builds them on seeded random inputs and computes
each expected value with an independent oracle (torch, scipy, a closed form).
``reference`` is a model solution; the test suite holds it to the cases, and holds a
stub to zero.

Chapter modules (``labkit/exercises/ch01.py`` ...) define their exercises with the
``exercise`` decorator::

    @exercise("1.1", title="A step unit", points=2, function="step_unit",
              reference=_step_unit,
              hints=("A unit fires when its weighted sum is positive (1.2 Step units).",
                     "Return (x @ w + b > 0) as float64."),
              mistakes=(Mistake("fires-at-zero", "U(0) was taken as 1; the step is 0 "
                                "at z = 0.", "1.2 Step units", _fires_at_zero),))
    def _cases():
        rng = np.random.default_rng(11)
        X = rng.normal(size=(8, 3))
        return [Case("8 random inputs", (X, w, b), expected=oracle(X, w, b))]

Hints come in tiers: the first points at the idea and the section to reread and is shown
on any failure; the second is the recipe, shown only when the learner asks for it
(``check("1.1", fn, hint=2)``).

A ``Mistake`` is a wrong answer the chapter warns about, registered as a wrong reference
function. ``cases()`` runs every mistake on every case (here, in trusted code) and keeps
its output on the cases where it fails the expected value; a learner's function whose
outputs match a mistake's on all of those cases is told the mistake's name and the
section to reread. The cases are built so that no registered mistake earns more than a
quarter of the points.

Arguments and expected values are plain data only (numpy arrays, numbers, strings,
booleans, None, and tuples, lists and dicts of these), so they can cross to a grading
worker and back.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = [
    "Case",
    "Exercise",
    "Mistake",
    "exercise",
    "get",
    "all_exercises",
    "chapter_exercises",
]

_ID = re.compile(r"^[1-9][0-9]*\.[1-9][0-9]*$")
_SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Case:
    """One test case: a label a learner can read, the arguments, the expected output.

    ``mistakes`` maps the id of each registered mistake that fails this case to that
    mistake's output on it; ``Exercise.cases()`` fills it in.
    """

    label: str
    args: tuple
    expected: Any
    kwargs: dict = field(default_factory=dict)
    mistakes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Mistake:
    """A wrong answer a chapter warns about, as a wrong reference function.

    ``id`` is a short slug unique within the exercise (``"softmax-then-log"``);
    ``description`` one sentence saying what the learner did and why it is wrong;
    ``section`` where to reread, as the chapter names it (``"2.3 Numerical
    stability"``); ``function`` has the same signature as the exercise's function.
    """

    id: str
    description: str
    section: str
    function: Callable

    def __post_init__(self):
        if not isinstance(self.id, str) or not _SLUG.match(self.id):
            raise ValueError(
                f"a mistake id must be a lower-case slug like 'softmax-then-log', "
                f"got {self.id!r}"
            )
        for name in ("description", "section"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"mistake {self.id!r} needs a non-empty {name}")
        if not callable(self.function):
            raise ValueError(f"mistake {self.id!r}: function must be callable")


@dataclass(frozen=True, eq=False)
class Exercise:
    """An exercise: what the learner implements and how it is checked.

    ``compare(expected, got)`` may replace the default comparison (shape, dtype, then
    values within ``rtol``/``atol``) for exercises with many right answers; it returns
    ``None`` when ``got`` is acceptable, or a message saying what is wrong. ``hints``
    holds the tiers (idea first, recipe second); ``mistakes`` the known wrong answers.
    """

    id: str
    title: str
    points: int
    function: str
    build_cases: Callable[[], list[Case]]
    reference: Callable
    hints: tuple[str, ...] = ()
    rtol: float = 1e-7
    atol: float = 1e-10
    compare: Callable[[Any, Any], str | None] | None = None
    modules: tuple[str, ...] = ("numpy",)
    mistakes: tuple[Mistake, ...] = ()

    @property
    def chapter(self) -> int:
        return int(self.id.split(".")[0])

    def cases(self) -> list[Case]:
        """The test cases, built once per process (they are seeded, so always the same),
        each carrying the outputs of the registered mistakes that fail it."""
        if self.id not in _CASES:
            built = list(self.build_cases())
            if not built:
                raise ValueError(f"exercise {self.id} has no test cases")
            _CASES[self.id] = [self._with_mistakes(case) for case in built]
            for mistake in self.mistakes:
                if not any(mistake.id in case.mistakes for case in _CASES[self.id]):
                    raise ValueError(
                        f"exercise {self.id}: no case tells mistake {mistake.id!r} "
                        "apart from the reference"
                    )
        return _CASES[self.id]

    def _with_mistakes(self, case: Case) -> Case:
        """``case`` with the output of every registered mistake that fails it."""
        from .scoring import judge_value, to_data  # scoring imports this module

        outputs = {}
        for mistake in self.mistakes:
            args, kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
            try:
                output = to_data(mistake.function(*args, **kwargs))
            except Exception:  # a mistake that raises on a case is told apart by others
                continue
            if judge_value(self, case, output) is not None:
                outputs[mistake.id] = output
        return dataclasses.replace(case, mistakes=outputs)


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
    hints: tuple[str, ...] = (),
    mistakes: tuple[Mistake, ...] = (),
    rtol: float = 1e-7,
    atol: float = 1e-10,
    compare: Callable[[Any, Any], str | None] | None = None,
    modules: tuple[str, ...] = ("numpy",),
):
    """Decorator registering the decorated case builder as exercise ``id``.

    ``hints`` are the tiers of help: the first (the idea and the section to reread,
    never the recipe) is shown on a failure, the second (the recipe) on request.
    ``mistakes`` are the wrong answers the chapter warns about. ``modules`` names the
    top-level packages beyond Python's standard library that the learner's code may
    import (most exercises: numpy only); ``check`` and the grader enforce the same rule.
    """
    if not _ID.match(id):
        raise ValueError(f"exercise id must look like '5.2', got {id!r}")
    if not isinstance(points, int) or points <= 0:
        raise ValueError(f"points must be a positive integer, got {points!r}")
    if not function.isidentifier():
        raise ValueError(f"function must be a Python identifier, got {function!r}")
    if isinstance(hints, str) or not all(isinstance(h, str) and h for h in hints):
        raise ValueError(
            f"hints must be a tuple of non-empty strings (idea, then recipe), "
            f"got {hints!r}"
        )
    if not all(isinstance(m, Mistake) for m in mistakes):
        raise ValueError("mistakes must be a tuple of Mistake")
    ids = [m.id for m in mistakes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"exercise {id}: mistake ids must be unique, got {ids}")

    def register(build_cases: Callable[[], list[Case]]) -> Callable[[], list[Case]]:
        if id in _REGISTRY:
            raise ValueError(f"exercise id {id!r} is registered twice")
        _REGISTRY[id] = Exercise(
            id=id,
            title=title,
            points=points,
            function=function,
            build_cases=build_cases,
            reference=reference,
            hints=tuple(hints),
            rtol=rtol,
            atol=atol,
            compare=compare,
            modules=tuple(modules),
            mistakes=tuple(mistakes),
        )
        return build_cases

    return register


def _load_all() -> None:
    """Import every chapter module of this package once, which registers its
    exercises."""
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
    """The exercise with this id; a ValueError listing the known ids if there is
    none."""
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
