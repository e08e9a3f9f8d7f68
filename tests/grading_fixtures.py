"""Exercises registered for the grader's tests only (chapter 99), and notebooks built
from them.

They exercise the contract the chapters use: array outputs with shapes and dtypes,
tuples of Python numbers, a dict output, keyword arguments, and an oracle independent of
the solution (scipy for the softmax, closed forms elsewhere). ``register()`` adds them
to the registry and ``unregister()`` removes them again, so the registry-wide contract
tests never see them.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax as scipy_softmax

from labkit import exercises
from labkit.exercises import Case, Mistake, exercise

CHAPTER = 99
IDS = ("99.1", "99.2", "99.3")
FUNCTIONS = {"99.1": "add_bias", "99.2": "summary", "99.3": "softmax_rows"}
POINTS = {"99.1": 2, "99.2": 1, "99.3": 3}

SOLUTIONS = {
    "99.1": '''import numpy as np

def add_bias(X, b, *, scale=1.0):
    """Return scale * X + b, with b (F,) broadcast over the rows of X (N, F)."""
    return scale * X + b
''',
    "99.2": '''import math

def summary(x):
    """Return (mean, count) of the numbers in the 1-D array x, as a float and an int."""
    return float(sum(x)) / len(x), len(x)
''',
    "99.3": '''import numpy as np

def softmax_rows(Z):
    """Softmax of each row of Z (N, K): a dict with the probabilities and the row
    argmax."""
    shifted = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return {"probs": P, "argmax": Z.argmax(axis=1)}
''',
}

STUBS = {
    "99.1": '''import numpy as np

def add_bias(X, b, *, scale=1.0):
    """Return scale * X + b, with b (F,) broadcast over the rows of X (N, F)."""
    raise NotImplementedError
''',
    "99.2": '''def summary(x):
    """Return (mean, count) of the numbers in the 1-D array x, as a float and an int."""
    raise NotImplementedError
''',
    "99.3": '''import numpy as np

def softmax_rows(Z):
    """Softmax of each row of Z (N, K): a dict with the probabilities and the row
    argmax."""
    raise NotImplementedError
''',
}


def _add_bias(X, b, *, scale=1.0):
    return scale * X + b


def _ignores_scale(X, b, *, scale=1.0):
    return X + b


def _summary(x):
    return float(np.mean(x)), int(len(x))


def _softmax_rows(Z):
    return {"probs": scipy_softmax(Z, axis=1), "argmax": np.argmax(Z, axis=1)}


def _cases_add_bias():
    rng = np.random.default_rng(99)
    out = []
    for n, f in ((4, 3), (1, 5), (6, 2)):
        X, b = rng.normal(size=(n, f)), rng.normal(size=f)
        out.append(Case(f"X of shape ({n}, {f})", (X, b), expected=X + b[None, :]))
    X, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    out.append(Case("scale=2", (X, b), expected=2.0 * X + b, kwargs={"scale": 2.0}))
    return out


def _cases_summary():
    values = [np.array([1.0, 2.0, 4.5]), np.arange(10.0), np.array([-3.0])]
    return [
        Case(f"{len(v)} values", (v,), expected=(sum(v.tolist()) / len(v), len(v)))
        for v in values
    ]


def _cases_softmax():
    rng = np.random.default_rng(7)
    out = []
    for n, k in ((5, 3), (2, 7)):
        Z = rng.normal(scale=3.0, size=(n, k))
        P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)  # closed form, no shift
        out.append(
            Case(
                f"Z of shape ({n}, {k})",
                (Z,),
                expected={"probs": P, "argmax": np.argmax(P, axis=1).astype(np.int64)},
            )
        )
    return out


def register(*, torch: bool = False) -> None:
    """Register the fixture exercises (again after ``unregister``). 99.3 allows numpy,
    and torch too with ``torch=True``: a worker that may import torch imports it as it
    starts (two seconds, ten times the rest of grading a fixture notebook), so only the
    tests about torch pay for it (`torch_allowed`)."""
    unregister()
    exercise(
        "99.1",
        title="Add a bias",
        points=2,
        function="add_bias",
        reference=_add_bias,
        hints=("Broadcast b over the rows.",),
        mistakes=(
            Mistake(
                "ignores-scale",
                "The scale keyword was ignored.",
                "99.1 Fixtures",
                _ignores_scale,
            ),
        ),
    )(_cases_add_bias)
    exercise(
        "99.2", title="Mean and count", points=1, function="summary", reference=_summary
    )(_cases_summary)
    exercise(
        "99.3",
        title="Softmax of rows",
        points=3,
        function="softmax_rows",
        reference=_softmax_rows,
        rtol=1e-9,
        modules=("numpy", "torch") if torch else ("numpy",),
    )(_cases_softmax)


def unregister() -> None:
    for exercise_id in IDS:
        exercises._REGISTRY.pop(exercise_id, None)
        exercises._CASES.pop(exercise_id, None)


def notebook(sources: dict[str, str], *, scratch: bool = True) -> dict:
    """An nbformat-4 notebook: per exercise a task, the exercise cell and its check
    cell."""
    cells = [_markdown("# 99. Fixtures"), _code("from labkit.check import check")]
    if scratch:  # cells the grader must never run
        cells.append(_code("import time\nwhile True:\n    time.sleep(1)"))
        cells.append(_code("raise RuntimeError('a broken scratch cell')"))
    for exercise_id, source in sources.items():
        cells.append(_markdown(f"Exercise {exercise_id}"))
        cells.append(_code(source, {"tags": ["exercise"], "exercise": exercise_id}))
        cells.append(
            _code(f'check("{exercise_id}", {FUNCTIONS.get(exercise_id, "f")})')
        )
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            },
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(path: Path, sources: dict[str, str], **kwargs) -> Path:
    Path(path).write_text(json.dumps(notebook(sources, **kwargs), indent=1))
    return Path(path)


def _markdown(text: str) -> dict:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(source: str, metadata: dict | None = None) -> dict:
    lines = source.splitlines(keepends=True)
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": metadata or {},
        "outputs": [],
        "source": lines,
    }


# The two fixtures every grading test module uses: `from grading_fixtures import
# fixture_exercises, private_cache` puts them into effect there.
@pytest.fixture(scope="module", autouse=True)
def fixture_exercises():
    """Chapter 99's exercises, registered for the module's tests only."""
    register()
    yield
    unregister()


@contextlib.contextmanager
def allowing_torch():
    """99.3 allows torch as well as numpy while the block runs."""
    register(torch=True)
    try:
        yield
    finally:
        register()


@pytest.fixture
def torch_allowed():
    """99.3 allows torch as well as numpy, for one test."""
    with allowing_torch():
        yield


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The command line caches cases by default: never in the home of whoever runs the
    tests."""
    monkeypatch.setenv("LABKIT_GRADE_CACHE", str(tmp_path / "default-cache"))
