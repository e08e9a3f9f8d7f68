"""The exercise contract, held across the real chapters, solutions and registry.

- every solution notebook grades full marks, through the grader;
- every untouched chapter grades zero, every exercise ``not_attempted``;
- every exercise id is registered, unique, appears in exactly one chapter and in that
  chapter's solution, under the chapter number of the file name; every registered
  exercise appears in a chapter;
- every registered exercise's reference passes its own cases, and a stub scores zero;
- each exercise cell is self-contained (numpy, math, torch only; never labkit), a
  chapter's stub has a docstring and raises NotImplementedError, and the next cell
  checks it with ``check("<id>", ...)``.

Notebooks are found by globbing ``chapters/`` and ``solutions/``; while there are none
the tests that need them are skipped, saying so, rather than passing on an empty list.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from labkit.exercises import all_exercises, get
from labkit.exercises.scoring import evaluate
from labkit.grade import grade_notebooks
from labkit.grade.notebook import chapter_from_name, read_exercise_cells

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
ALLOWED_IMPORTS = {"numpy", "math", "torch"}


def _course_exercises() -> list:
    """Registered exercises of the course (not those a test module registers for
    itself)."""
    return [
        e for e in all_exercises() if e.build_cases.__module__.startswith("labkit.")
    ]


def _each(paths: list[Path], what: str) -> list:
    """Parameters for one test per notebook, or one skipped test saying there are none
    yet."""
    if not paths:
        return [
            pytest.param(
                None, marks=pytest.mark.skip(reason=f"no {what} notebooks yet")
            )
        ]
    return [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in paths]


def _need(paths: list[Path], what: str) -> None:
    if not paths:
        pytest.skip(f"no {what} notebooks yet")


EXERCISES = _course_exercises()
EACH_EXERCISE = [pytest.param(e, id=e.id) for e in EXERCISES] or [
    pytest.param(None, marks=pytest.mark.skip(reason="no exercises registered yet"))
]


@pytest.fixture(scope="module")
def graded() -> dict[Path, object]:
    """Every chapter and solution notebook, graded in one batch (no cache: a real
    run)."""
    paths = CHAPTERS + SOLUTIONS
    _need(paths, "chapter or solution")
    return dict(zip(paths, grade_notebooks([str(p) for p in paths], cache=False)))


@pytest.mark.parametrize("path", _each(SOLUTIONS, "solution"))
def test_every_solution_notebook_grades_full_marks(graded, path):
    submission = graded[path]
    assert submission.error is None, submission.error
    failures = [
        f"{r.id} {r.status}: {r.feedback}"
        for r in submission.exercises
        if r.status != "passed"
    ]
    assert failures == [] and submission.score == submission.max_score > 0
    assert submission.warnings == []


@pytest.mark.parametrize("path", _each(CHAPTERS, "chapter"))
def test_every_untouched_chapter_grades_zero(graded, path):
    submission = graded[path]
    assert submission.error is None, submission.error
    assert submission.score == 0 and submission.max_score > 0
    assert {r.status for r in submission.exercises} == {"not_attempted"}
    assert all("NotImplementedError" in r.feedback for r in submission.exercises)
    assert submission.warnings == []


def _ids(path: Path) -> list[str]:
    cells, warnings = read_exercise_cells(path)
    assert warnings == [], warnings
    return [c.id for c in cells]


@pytest.mark.parametrize("path", _each(CHAPTERS + SOLUTIONS, "chapter or solution"))
def test_exercise_ids_are_registered_unique_and_of_the_files_chapter(path):
    ids = _ids(path)
    assert ids, f"{path.name} has no exercise cells"
    assert len(ids) == len(set(ids)), f"duplicate exercise ids in {path.name}: {ids}"
    chapter = chapter_from_name(path)
    assert chapter is not None, (
        f"{path.name} does not start with its chapter number (NN_)"
    )
    for exercise_id in ids:
        assert get(exercise_id).chapter == chapter, (
            f"{exercise_id} is not of chapter {chapter}"
        )


def test_every_exercise_is_in_exactly_one_chapter_and_in_its_solution():
    _need(CHAPTERS, "chapter")
    where: dict[str, list[str]] = {}
    for path in CHAPTERS:
        for exercise_id in _ids(path):
            where.setdefault(exercise_id, []).append(path.name)
    assert {i: names for i, names in where.items() if len(names) > 1} == {}
    registered = {e.id for e in EXERCISES}
    assert sorted(registered - set(where)) == [], (
        "registered exercises that no chapter has"
    )
    for path in CHAPTERS:
        solution = ROOT / "solutions" / path.name
        assert solution.is_file(), f"chapters/{path.name} has no solutions/{path.name}"
        assert _ids(solution) == _ids(path), (
            f"solutions/{path.name} has other exercises"
        )
    chapters = {p.name for p in CHAPTERS}
    assert [p.name for p in SOLUTIONS if p.name not in chapters] == []


@pytest.mark.parametrize("exercise", EACH_EXERCISE)
def test_every_reference_passes_its_own_cases(exercise):
    result = evaluate(exercise, exercise.reference)
    assert (result.status, result.score) == ("passed", exercise.points), result.feedback


@pytest.mark.parametrize("exercise", EACH_EXERCISE)
def test_a_stub_scores_zero_as_not_attempted(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError

    result = evaluate(exercise, stub)
    assert (result.status, result.score) == ("not_attempted", 0)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text("utf-8"))["cells"]


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _exercise_cells(path: Path):
    cells = _cells(path)
    for position, cell in enumerate(cells):
        metadata = cell.get("metadata", {})
        if "exercise" in metadata.get("tags", []):
            following = cells[position + 1] if position + 1 < len(cells) else None
            yield metadata["exercise"], _source(cell), following


@pytest.mark.parametrize("path", _each(CHAPTERS + SOLUTIONS, "chapter or solution"))
def test_each_exercise_cell_is_followed_by_its_check(path):
    for exercise_id, _, following in _exercise_cells(path):
        assert following is not None and following.get("cell_type") == "code", (
            exercise_id
        )
        call = rf"\bcheck\(\s*[\"']{re.escape(exercise_id)}[\"']\s*,"
        assert re.search(call, _source(following)), (
            f"the cell after exercise {exercise_id} should call check({exercise_id!r}, "
            "...)"
        )


@pytest.mark.parametrize("path", _each(CHAPTERS + SOLUTIONS, "chapter or solution"))
def test_exercise_cells_are_self_contained(path):
    for exercise_id, source, _ in _exercise_cells(path):
        tree = ast.parse(source)
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert imported <= ALLOWED_IMPORTS, f"exercise {exercise_id} imports {imported}"
        function = get(exercise_id).function
        defined = [
            n
            for n in tree.body
            if isinstance(n, ast.FunctionDef) and n.name == function
        ]
        assert defined, f"exercise {exercise_id} does not define {function}"


@pytest.mark.parametrize("path", _each(CHAPTERS, "chapter"))
def test_chapter_stubs_state_the_task_and_raise_not_implemented(path):
    for exercise_id, source, _ in _exercise_cells(path):
        function = get(exercise_id).function
        [stub] = [
            n
            for n in ast.parse(source).body
            if isinstance(n, ast.FunctionDef) and n.name == function
        ]
        assert ast.get_docstring(stub), f"the stub of {exercise_id} has no docstring"
        body = stub.body[1:]  # after the docstring
        assert len(body) == 1 and isinstance(body[0], ast.Raise), (
            f"the stub of {exercise_id} should only raise NotImplementedError"
        )
        raised = body[0].exc
        name = raised.func if isinstance(raised, ast.Call) else raised
        assert isinstance(name, ast.Name) and name.id == "NotImplementedError", (
            exercise_id
        )
