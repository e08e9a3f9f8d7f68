"""The grader: reading notebooks, the data-only channel, verdicts that agree with
``check``, the reports and gradebooks, the command line, the cache and the in-notebook
``grade()``.

The exercises graded here are the chapter-99 fixtures of ``grading_fixtures``
(registered for this module only); the threats a submission can pose are in
``test_grade_threats.py`` and the guarantees about the real chapters in
``test_contract.py``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import grading_fixtures as fx
from grading_fixtures import fixture_exercises, private_cache, torch_allowed  # noqa: F401
from labkit.check import format_result
from labkit.exercises import Case, Exercise, all_exercises, get
from labkit.exercises.scoring import evaluate
from labkit.grade import Limits, Submission, channel, grade, grade_notebooks, parse_size
from labkit.grade import grader as grader_module
from labkit.grade import pool as pool_module
from labkit.grade import sandbox as sandbox_module
from labkit.grade.__main__ import main
from labkit.grade import cache as cache_module
from labkit.grade.cache import Cache
from labkit.grade.notebook import NotebookError, chapter_from_name, read_exercise_cells
from labkit.grade.report import format_submission, gradebook_csv


def solution(**overrides: str) -> dict[str, str]:
    """The fixture solutions, with some exercise cells replaced."""
    return {**fx.SOLUTIONS, **overrides}


def by_id(submission: Submission) -> dict:
    return {r.id: r for r in submission.exercises}


# -------------------------------------------------------------------------- the channel


def test_channel_round_trip_keeps_types_shapes_and_dtypes():
    value = {
        "arrays": (
            np.arange(6, dtype=np.int64).reshape(2, 3),
            np.array([True, False]),
            np.linspace(0, 1, 4, dtype=np.float32),
            np.zeros((0, 3)),
            np.array(2.5),
            np.array([1, 2], dtype=">i4"),
        ),
        "numbers": [1, -(2**62), 0.1, math.inf, -0.0, True, None, "é"],
        "scalars": (np.float64(1.5), np.int64(-3), np.bool_(True)),
        "empty": {},
    }
    back = channel.decode(channel.encode(value))
    assert back.keys() == value.keys()
    for got, want in zip(back["arrays"], value["arrays"]):
        assert type(got) is np.ndarray and got.shape == want.shape
        assert (
            got.dtype.kind == want.dtype.kind
            and got.dtype.itemsize == want.dtype.itemsize
        )
        np.testing.assert_array_equal(got, want)
        assert got.flags.owndata and got.flags.writeable
    assert back["numbers"] == value["numbers"] and type(back["numbers"]) is list
    assert math.copysign(1.0, back["numbers"][4]) == -1.0
    assert [type(x) for x in back["scalars"]] == [np.float64, np.int64, np.bool_]
    nan = channel.decode(channel.encode((math.nan,)))[0]
    assert math.isnan(nan)


def test_channel_encoding_launders_subclasses_to_their_stored_values():
    class LyingFloat(float):
        def __float__(self):
            return 1.0

        def __eq__(self, other):
            return True

    class LyingStr(str):
        def __str__(self):
            return "lie"

    class LyingInt(int):
        def __int__(self):
            return 7

    back = channel.decode(
        channel.encode((LyingFloat(0.25), LyingStr("truth"), LyingInt(3)))
    )
    assert back == (0.25, "truth", 3)
    assert [type(x) for x in back] == [float, str, int]


def test_channel_refuses_to_encode_anything_but_plain_data():
    for value in (
        object(),
        np.array([object()]),
        np.array(["a"]),
        {1: 2},
        b"raw",
        1j,
        np.zeros(2, dtype=np.complex128),
    ):
        with pytest.raises(TypeError):
            channel.encode(value)
    assert (
        channel.decode(channel.encode(b"raw", allow_bytes=True), allow_bytes=True)
        == b"raw"
    )


def _message(tree, area: bytes = b"") -> bytes:
    header = json.dumps(tree).encode()
    return channel.MAGIC + len(header).to_bytes(8, "big") + header + area


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "not a grading-channel message"),
        (b"PICKLE\x80\x04", "not a grading-channel message"),
        (channel.MAGIC + (10**6).to_bytes(8, "big") + b"{}", "truncated"),
        (channel.MAGIC + (3).to_bytes(8, "big") + b"{x}", "unreadable"),
        (_message({"X": 1}), "malformed"),
        (_message({"T": [], "L": []}), "malformed"),
        (_message({"A": ["|O8", [1], 0, 8]}, b"\0" * 8), "dtype"),
        (_message({"A": ["<f8", [2], 0, 8]}, b"\0" * 8), "size does not match"),
        (_message({"A": ["<f8", [1], 8, 8]}, b"\0" * 8), "outside"),
        (_message({"A": ["<f8", [-1], 0, 8]}, b"\0" * 8), "shape"),
        (_message({"D": [["a", 1], ["a", 2]]}), "duplicate"),
        (_message({"B": [0, 1]}, b"x"), "malformed"),
        (_message({"S": ["<f8", "1"]}), "scalar"),
        (_message(json.loads('{"T": [' * 70 + "]}" * 70)), "deep"),
    ],
)
def test_channel_rejects_malformed_messages(data, reason):
    with pytest.raises(channel.ChannelError, match=reason):
        channel.decode(data)


def test_channel_bool_arrays_come_back_clean():
    data = _message({"A": ["|b1", [3], 0, 3]}, b"\x00\x02\xff")
    back = channel.decode(data)
    assert back.dtype == np.bool_ and back.tolist() == [False, True, True]
    assert (back == np.array([False, True, True])).all()


def test_channel_size_limit_and_frames():
    message = channel.encode(np.zeros(100))
    with pytest.raises(channel.ChannelError, match="exceeds the limit"):
        channel.decode(message, max_bytes=100)
    stream = channel.frame(b"first", 1) + channel.frame(b"") + channel.frame(b"third")
    reader = channel.FrameReader(max_bytes=10)
    frames = [f for i in range(len(stream)) for f in reader.feed(stream[i : i + 1])]
    assert frames == [(1, b"first"), (0, b""), (0, b"third")] and reader.pending == 0
    with pytest.raises(channel.ChannelError, match="exceeds the limit"):
        channel.FrameReader(max_bytes=4).feed(channel.frame(b"too long"))


# -------------------------------------------------------------------- reading notebooks


def test_only_tagged_cells_with_ids_are_read(tmp_path):
    nb = fx.notebook({"99.1": fx.SOLUTIONS["99.1"]})
    nb["cells"] += [
        {"cell_type": "code", "metadata": {"exercise": "99.2"}, "source": "x"},
        {"cell_type": "code", "metadata": {"tags": ["exercise"]}, "source": "y"},
        {
            "cell_type": "markdown",
            "metadata": {"tags": ["exercise"], "exercise": "99.3"},
            "source": "z",
        },
        {
            "cell_type": "code",
            "metadata": {"tags": ["exercise"], "exercise": "99.2"},
            "source": ["def summary(x):\n", "    return 1\n"],
        },
        "not even a cell",
    ]
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    cells, warnings = read_exercise_cells(path)
    assert [(c.id, c.source) for c in cells] == [
        ("99.1", fx.SOLUTIONS["99.1"]),
        ("99.2", "def summary(x):\n    return 1\n"),
    ]
    assert len(warnings) == 3
    assert "not the 'exercise' tag" in warnings[0] and "no exercise id" in warnings[1]
    assert "not a code cell" in warnings[2]


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"   \n", "empty file"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00binary", "not UTF-8"),
        (b"[1, 2]", "not a Jupyter notebook"),
        (b'{"cells": "no"}', "not a Jupyter notebook"),
        (b'{"cells": [], "nbformat": 3}', "nbformat 3"),
    ],
)
def test_unreadable_files_say_why(tmp_path, content, reason):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError, match=reason):
        read_exercise_cells(path)


def test_missing_files_and_directories_are_unreadable(tmp_path):
    with pytest.raises(NotebookError, match="not found"):
        read_exercise_cells(tmp_path / "absent.ipynb")
    with pytest.raises(NotebookError, match="directory"):
        read_exercise_cells(tmp_path)


def test_chapter_from_file_name():
    assert chapter_from_name("chapters/05_optimizers.ipynb") == 5
    assert chapter_from_name("12_x.ipynb") == 12
    assert chapter_from_name("alice.ipynb") is None
    assert chapter_from_name("alice_05.ipynb") is None


# ----------------------------------------------------------------------------- limits


def test_parse_size():
    assert parse_size("2G") == 2 * 2**30 and parse_size("512M") == 512 * 2**20
    assert parse_size("1.5GiB") == int(1.5 * 2**30) and parse_size("64k") == 65536
    assert parse_size(1000) == 1000 and parse_size("1000") == 1000
    for bad in ("lots", "-1G", "0", 0, "2X"):
        with pytest.raises(ValueError, match="memory"):
            parse_size(bad)


@pytest.mark.parametrize(
    "field, value",
    [
        ("timeout", 0),
        ("timeout", -1.0),
        ("timeout", "10"),
        ("memory", 0),
        ("memory", 1.5),
        ("output", -1),
        ("reply", True),
    ],
)
def test_limits_reject_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        Limits(**{field: value})


def test_jobs_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="jobs"):
        grade_notebooks([], jobs=0)
    with pytest.raises(ValueError, match="size"):
        pool_module.WorkerPool(0)


# ----------------------------------------------------------------------------- grading

PARTIAL = '''def add_bias(X, b, *, scale=1.0):
    """Right without the scale keyword."""
    return X + b
'''
WRONG_SHAPE = "def add_bias(X, b, *, scale=1.0):\n    return (X + b).ravel()\n"
WRONG_DTYPE = "def add_bias(X, b, *, scale=1.0):\n    return (X + b).astype(int)\n"
RAISES = "def add_bias(X, b, *, scale=1.0):\n    return X @ b.reshape(1, -1)\n"
SYNTAX = "def add_bias(X, b, *, scale=1.0):\n    return X +\n"
NAME_ERROR = "import numpy as np\nnot_defined_anywhere\n"
RENAMED = "def add_bias_v2(X, b, *, scale=1.0):\n    return X + b\n"
NOT_CALLABLE = "add_bias = 3\n"
THREE_ITEMS = "def summary(x):\n    return float(sum(x)) / len(x), len(x), 0\n"
INT_FOR_FLOAT = "def summary(x):\n    return int(sum(x)) // len(x), len(x)\n"
CHATTY = '''import contextlib, os, sys

def add_bias(X, b, *, scale=1.0):
    """Prints a little, silences more into /dev/null, warns on stderr: all harmless."""
    print("debugging", X.shape)
    print("warning: none", file=sys.stderr)
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        print("x" * 10**7)
    return scale * X + b
'''
TORCH = '''import torch

def softmax_rows(Z):
    """Softmax of each row of Z, with torch."""
    Z = torch.as_tensor(Z)
    return {"probs": torch.softmax(Z, dim=1), "argmax": Z.argmax(dim=1)}
'''


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """One batch with a notebook per situation; graded once for the tests below."""
    folder = tmp_path_factory.mktemp("batch")
    notebooks = {
        "solution": solution(),
        "stubs": dict(fx.STUBS),
        "partial": solution(**{"99.1": PARTIAL}),
        "shape": solution(**{"99.1": WRONG_SHAPE}),
        "dtype": solution(**{"99.1": WRONG_DTYPE}),
        "raises": solution(**{"99.1": RAISES}),
        "syntax": solution(**{"99.1": SYNTAX}),
        "name_error": solution(**{"99.1": NAME_ERROR}),
        "renamed": solution(**{"99.1": RENAMED}),
        "not_callable": solution(**{"99.1": NOT_CALLABLE}),
        "tuple": solution(**{"99.2": THREE_ITEMS}),
        "int": solution(**{"99.2": INT_FOR_FLOAT}),
        "torch": solution(**{"99.3": TORCH}),
        "chatty": solution(**{"99.1": CHATTY}),
        "missing_cell": {"99.1": fx.SOLUTIONS["99.1"], "99.3": fx.SOLUTIONS["99.3"]},
    }
    paths = {
        name: str(fx.write_notebook(folder / f"{name}.ipynb", sources))
        for name, sources in notebooks.items()
    }
    with fx.allowing_torch():  # for the "torch" notebook
        graded = grade_notebooks(list(paths.values()), jobs=2, cache=False)
    return dict(zip(paths, graded))


def test_solution_notebook_gets_full_marks(batch):
    s = batch["solution"]
    assert s.error is None and s.score == s.max_score == 6
    assert [r.status for r in s.exercises] == ["passed"] * 3


def test_untouched_stubs_get_zero_as_not_attempted(batch):
    s = batch["stubs"]
    assert s.score == 0 and s.max_score == 6
    assert [r.status for r in s.exercises] == ["not_attempted"] * 3
    assert "NotImplementedError" in s.exercises[0].feedback


def test_partial_credit_per_case(batch):
    result = by_id(batch["partial"])["99.1"]
    assert result.status == "partial" and result.score == pytest.approx(2 * 3 / 4)
    assert "3 of 4 cases passed; on scale=2" in result.feedback
    assert "Hint: Broadcast b over the rows." in result.feedback
    assert batch["partial"].score == pytest.approx(1.5 + 1 + 3)


def test_shape_and_dtype_are_checked_before_values(batch):
    shape = by_id(batch["shape"])["99.1"]
    assert shape.status == "failed" and shape.score == 0
    assert "has shape (12,), expected (4, 3)" in shape.feedback
    dtype = by_id(batch["dtype"])["99.1"]
    assert dtype.status == "failed" and "expected a float array" in dtype.feedback


def test_errors_of_the_learner_are_feedback(batch):
    raises = by_id(batch["raises"])["99.1"]
    assert raises.status == "error" and "raised ValueError" in raises.feedback
    syntax = by_id(batch["syntax"])["99.1"]
    assert syntax.status == "error" and "SyntaxError" in syntax.feedback
    assert "(line 2)" in syntax.feedback
    name = by_id(batch["name_error"])["99.1"]
    assert (
        name.status == "error"
        and "NameError" in name.feedback
        and "(line 2)" in name.feedback
    )
    renamed = by_id(batch["renamed"])["99.1"]
    assert renamed.status == "error"
    assert "does not define a function named add_bias" in renamed.feedback
    assert by_id(batch["not_callable"])["99.1"].feedback == "add_bias is not a function"
    for name in ("raises", "syntax", "name_error", "renamed", "not_callable"):
        assert (
            by_id(batch[name])["99.2"].status == "passed"
        )  # the others are unaffected


def test_types_of_plain_values_are_checked(batch):
    three = by_id(batch["tuple"])["99.2"]
    assert (
        three.status == "failed"
        and "should be a tuple of 2 items, got a tuple of 3 items" in three.feedback
    )
    as_int = by_id(batch["int"])[
        "99.2"
    ]  # an int is a number: right on the one exact mean
    assert as_int.status == "partial" and as_int.score == 0.33


def test_modest_output_does_no_harm(batch):
    assert batch["chatty"].score == 6, by_id(batch["chatty"])["99.1"].feedback


def test_torch_cells_run_in_the_worker(batch):
    result = by_id(batch["torch"])["99.3"]
    assert result.status == "passed", result.feedback


def test_a_missing_exercise_cell_is_not_attempted(batch):
    s = batch["missing_cell"]
    result = by_id(s)["99.2"]
    assert (
        result.status == "not_attempted"
        and "no exercise cell for 99.2" in result.feedback
    )
    assert s.max_score == 6 and s.score == 5


IMPLEMENTATIONS = {
    "99.1": [
        fx.SOLUTIONS["99.1"],
        PARTIAL,
        WRONG_SHAPE,
        WRONG_DTYPE,
        RAISES,
        fx.STUBS["99.1"],
        "def add_bias(X, b, *, scale=1.0):\n    return X + b + 1e-9\n",
        "def add_bias(X, b, *, scale=1.0):\n    return 'a string'\n",
        "def add_bias(X, b, *, scale=1.0):\n    return None\n",
    ],
    "99.2": [
        fx.SOLUTIONS["99.2"],
        THREE_ITEMS,
        INT_FOR_FLOAT,
        fx.STUBS["99.2"],
        "def summary(x):\n    return float(len(x)), len(x)\n",
        "def summary(x):\n    return {'mean': 1.0}\n",
    ],
    "99.3": [
        fx.SOLUTIONS["99.3"],
        TORCH,
        fx.STUBS["99.3"],
        "import numpy as np\ndef softmax_rows(Z):\n    return {'probs': Z, 'argmax': "
        "Z}\n",
    ],
}


@pytest.mark.usefixtures("torch_allowed")  # one of the implementations uses torch
def test_the_grader_and_check_give_the_same_verdict(tmp_path):
    """The same scoring, once in this process (check) and once through a worker
    (grader)."""
    sources = [(i, src) for i, sources in IMPLEMENTATIONS.items() for src in sources]
    paths = [
        str(fx.write_notebook(tmp_path / f"v{n}.ipynb", {i: src}))
        for n, (i, src) in enumerate(sources)
    ]
    graded = grade_notebooks(paths, cache=False)
    for (exercise_id, source), submission in zip(sources, graded):
        namespace: dict = {}
        exec(source, namespace)
        exercise = get(exercise_id)
        in_process = evaluate(exercise, namespace[exercise.function])
        through_worker = by_id(submission)[exercise_id]
        assert through_worker.as_dict() == in_process.as_dict(), source
        assert through_worker.cases == in_process.cases
        assert format_result(through_worker) == format_result(in_process)


def test_only_the_notebooks_chapter_is_owed(tmp_path):
    nb = fx.write_notebook(
        tmp_path / "99_fixtures.ipynb",
        {
            "99.1": fx.SOLUTIONS["99.1"],
            "2.1": "def x():\n    pass\n",
            "9.9": "def y():\n    pass\n",
        },
    )
    [s] = grade_notebooks([str(nb)], cache=False)
    assert [r.id for r in s.exercises] == ["99.1", "99.2", "99.3"]
    assert any("belongs to chapter 2" in w for w in s.warnings)
    assert any("unknown exercise id '9.9'" in w for w in s.warnings)


def test_duplicate_exercise_cells_grade_the_later_one(tmp_path):
    nb = fx.notebook({"99.1": fx.STUBS["99.1"]})
    nb["cells"].append(
        {
            "cell_type": "code",
            "metadata": {"tags": ["exercise"], "exercise": "99.1"},
            "source": fx.SOLUTIONS["99.1"],
        }
    )
    path = tmp_path / "dup.ipynb"
    path.write_text(json.dumps(nb))
    [s] = grade_notebooks([str(path)], cache=False)
    assert by_id(s)["99.1"].status == "passed"
    assert any("the later one was graded" in w for w in s.warnings)


def test_unreadable_submissions_do_not_stop_the_others(tmp_path):
    good = fx.write_notebook(tmp_path / "good.ipynb", solution())
    (tmp_path / "empty.ipynb").write_bytes(b"")
    (tmp_path / "bad.ipynb").write_text("{")
    (tmp_path / "nothing.ipynb").write_text(json.dumps(fx.notebook({})))
    paths = [
        str(tmp_path / n)
        for n in ("empty.ipynb", "good.ipynb", "bad.ipynb", "nothing.ipynb")
    ]
    graded = grade_notebooks(paths, cache=False)
    assert [s.path for s in graded] == paths
    assert graded[0].error == "empty file" and "not valid JSON" in graded[2].error
    assert "no exercise cells found" in graded[3].error
    assert (
        graded[1].error is None and graded[1].score == 6 and str(good) == graded[1].path
    )


def test_results_do_not_depend_on_the_number_of_jobs(tmp_path):
    paths = [
        str(fx.write_notebook(tmp_path / f"n{k}.ipynb", sources))
        for k, sources in enumerate(
            [
                solution(),
                dict(fx.STUBS),
                solution(**{"99.1": PARTIAL}),
                solution(**{"99.2": THREE_ITEMS}),
            ]
        )
    ]
    one = grade_notebooks(paths, jobs=1, cache=False)
    two = grade_notebooks(paths, jobs=3, cache=False)
    assert [s.as_dict() for s in one] == [s.as_dict() for s in two]


@pytest.mark.usefixtures("torch_allowed")
def test_the_worker_never_receives_expected_values(tmp_path, monkeypatch):
    """What crosses to the worker: the cells and the case inputs, never an expected
    value."""
    sent = []
    original = pool_module.WorkerPool.run

    def spy(self, request, seconds):
        sent.append(request)
        return original(self, request, seconds)

    monkeypatch.setattr(pool_module.WorkerPool, "run", spy)
    grade_notebooks(
        [str(fx.write_notebook(tmp_path / "s.ipynb", solution()))], cache=False
    )
    # one job per set of allowed modules: 99.1 and 99.2 (numpy), 99.3 (numpy, torch)
    assert [[e["id"] for e in r["exercises"]] for r in sent] == [
        ["99.1", "99.2"],
        ["99.3"],
    ]
    for request in sent:
        assert set(request) == {"limits", "exercises"}
    wire = b"".join(channel.encode(r, allow_bytes=True) for r in sent)
    for item in [e for r in sent for e in r["exercises"]]:
        assert set(item) == {"id", "function", "source", "modules", "cases"}
        exercise = get(item["id"])
        assert tuple(item["modules"]) == exercise.modules
        cases = channel.decode(item["cases"])
        assert len(cases) == len(exercise.cases())
        for (args, kwargs), case in zip(cases, exercise.cases()):
            assert channel.encode(args) == channel.encode(case.args)
            assert kwargs == case.kwargs
            for expected in _arrays(case.expected):
                assert expected.tobytes() not in wire


def _arrays(value) -> list:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays(v)]
    return []


# ----------------------------------------------------------------------------- cache


def test_an_unchanged_notebook_is_regraded_without_loading_exercises(
    tmp_path, monkeypatch
):
    cache = tmp_path / "cache"
    paths = [
        str(fx.write_notebook(tmp_path / "a.ipynb", solution(**{"99.1": PARTIAL}))),
        str(fx.write_notebook(tmp_path / "b.ipynb", dict(fx.STUBS))),
    ]
    first = grade_notebooks(paths, cache=cache)

    def forbidden(*args, **kwargs):
        raise AssertionError("an unchanged notebook was graded again")

    monkeypatch.setattr(grader_module, "WorkerPool", forbidden)
    monkeypatch.setattr(grader_module, "_resolve", forbidden)
    again = grade_notebooks(paths, cache=cache)
    assert [s.as_dict() for s in again] == [s.as_dict() for s in first]
    assert [r.cases for r in again[0].exercises] == [
        r.cases for r in first[0].exercises
    ]
    moved = (
        tmp_path / "moved.ipynb"
    )  # the verdict belongs to the content, not the file name
    moved.write_bytes(Path(paths[0]).read_bytes())
    [same] = grade_notebooks([str(moved)], cache=cache)
    assert same.path == str(moved) and same.score == first[0].score


def test_a_changed_cell_is_the_only_one_graded_again(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path = fx.write_notebook(tmp_path / "a.ipynb", solution(**{"99.1": PARTIAL}))
    grade_notebooks([str(path)], cache=cache)
    fx.write_notebook(path, solution())
    sent = []
    original = pool_module.WorkerPool.run

    def spy(self, request, seconds):
        sent.append([item["id"] for item in request["exercises"]])
        return original(self, request, seconds)

    monkeypatch.setattr(pool_module.WorkerPool, "run", spy)
    [again] = grade_notebooks([str(path)], cache=cache)
    assert sent == [["99.1"]] and again.score == 6


def test_cached_cases_are_the_cases(tmp_path, monkeypatch):
    exercises = all_exercises()
    fresh = {
        e.id: channel.encode(
            [(c.label, c.args, c.kwargs, c.expected) for c in e.cases()]
        )
        for e in exercises
    }
    Cache(tmp_path).cases(exercises[0])  # fills the memo of this process ...
    for exercise in exercises:
        Cache(tmp_path)._store_cases(exercise, exercise.cases())
    monkeypatch.setattr(
        cache_module, "_MEMO", {}
    )  # ... then a new process: from disk only

    def no_oracle(self):
        raise AssertionError("the cases were rebuilt instead of read from the cache")

    monkeypatch.setattr(Exercise, "cases", no_oracle)
    for exercise in exercises:
        cases = Cache(tmp_path).cases(exercise)
        assert all(type(c) is Case and type(c.args) is tuple for c in cases)
        assert (
            channel.encode([(c.label, c.args, c.kwargs, c.expected) for c in cases])
            == fresh[exercise.id]
        )


def test_a_damaged_case_file_is_rebuilt(tmp_path, monkeypatch):
    exercise = get("99.1")
    store = Cache(tmp_path)
    store._store_cases(exercise, exercise.cases())
    store._case_file(exercise).write_bytes(b"garbage")
    monkeypatch.setattr(cache_module, "_MEMO", {})
    assert len(Cache(tmp_path).cases(exercise)) == len(exercise.cases())


def test_the_cache_key_follows_the_cell_the_cases_and_the_limits():
    store = Cache(None)
    exercise = get("99.1")
    key = store.key(exercise, "source", Limits())
    assert key == store.key(exercise, "source", Limits())
    assert key != store.key(exercise, "source ", Limits())
    assert key != store.key(exercise, "source", Limits(timeout=5))
    assert key != store.key(get("99.2"), "source", Limits())


def test_timeouts_and_crashes_are_not_cached(tmp_path):
    result, keep = grader_module.verdict(get("99.1"), {"state": "timeout"}, Limits())
    assert result.status == "timeout" and not keep
    result, keep = grader_module.verdict(
        get("99.1"), {"state": "died", "detail": "x"}, Limits()
    )
    assert result.status == "error" and not keep


def test_a_timed_out_notebook_is_graded_again(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path = str(
        fx.write_notebook(
            tmp_path / "slow.ipynb",
            solution(
                **{"99.2": ("import time\ndef summary(x):\n    time.sleep(60)\n")}
            ),
        )
    )
    [first] = grade_notebooks([path], cache=cache, limits=Limits(timeout=2))
    assert by_id(first)["99.2"].status == "timeout"
    sent = []
    original = pool_module.WorkerPool.run

    def spy(self, request, seconds):
        sent.append([item["id"] for item in request["exercises"]])
        return original(self, request, seconds)

    monkeypatch.setattr(pool_module.WorkerPool, "run", spy)
    grade_notebooks([path], cache=cache, limits=Limits(timeout=2))
    assert sent == [["99.2"]]


def test_a_corrupt_cache_entry_is_a_miss(tmp_path):
    store = Cache(tmp_path)
    result = grader_module.failure(get("99.1"), "error", "x")
    store.put("ab" * 32, result)
    assert store.get("ab" * 32).as_dict() == result.as_dict()
    assert store.get("cd" * 32) is None
    (tmp_path / "verdicts" / "ab" / f"{'ab' * 32}.json").write_text("{half")
    assert store.get("ab" * 32) is None
    assert Cache(tmp_path, verdicts=False).get("ab" * 32) is None


# ---------------------------------------------------------------------- reports and CLI


def test_command_line_writes_json_and_csv_gradebooks(tmp_path, capsys):
    paths = [
        str(fx.write_notebook(tmp_path / "alice.ipynb", solution(**{"99.1": PARTIAL}))),
        str(fx.write_notebook(tmp_path / "bob.ipynb", dict(fx.STUBS))),
    ]
    out_json, out_csv = tmp_path / "grades.json", tmp_path / "grades.csv"
    status = main(
        [
            *paths,
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
            "--no-cache",
            "--jobs",
            "2",
        ]
    )
    assert status == 0
    data = json.loads(out_json.read_text())
    assert [d["submission"] for d in data] == paths
    alice = data[0]
    assert alice["score"] == 5.5 and alice["max_score"] == 6 and alice["error"] is None
    assert [e["id"] for e in alice["exercises"]] == ["99.1", "99.2", "99.3"]
    assert set(alice["exercises"][0]) == {
        "id",
        "title",
        "score",
        "max_score",
        "status",
        "feedback",
        "mistake",
    }
    assert alice["exercises"][0]["mistake"] == "ignores-scale"
    assert [e["mistake"] for e in alice["exercises"][1:]] == [None, None]
    assert alice["exercises"][0]["status"] == "partial"
    assert {e["status"] for e in data[1]["exercises"]} == {"not_attempted"}
    rows = list(csv.reader(io.StringIO(out_csv.read_text())))
    assert rows[0] == ["submission", "99.1", "99.2", "99.3", "error", "total"]
    assert rows[1] == [paths[0], "1.5", "1", "3", "", "5.5"]
    assert rows[2] == [paths[1], "0", "0", "0", "", "0"]
    printed = capsys.readouterr().out
    assert (
        "alice.ipynb: 5.5/6 points" in printed
        and "Graded 2 of 2 submissions" in printed
    )
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_command_line_exit_status_and_unreadable_reasons(tmp_path, capsys):
    good = str(fx.write_notebook(tmp_path / "good.ipynb", solution()))
    bad = tmp_path / "bad.ipynb"
    bad.write_text("not json")
    out_json, out_csv = tmp_path / "g.json", tmp_path / "g.csv"
    assert main([good, "--no-cache"]) == 0
    assert (
        main(
            [
                good,
                str(bad),
                "--no-cache",
                "--json",
                str(out_json),
                "--csv",
                str(out_csv),
            ]
        )
        == 1
    )
    data = json.loads(out_json.read_text())
    assert data[1]["error"].startswith("not valid JSON") and data[1]["exercises"] == []
    assert data[0]["score"] == 6
    rows = list(csv.reader(io.StringIO(out_csv.read_text())))
    assert rows[2][0] == str(bad) and rows[2][-2].startswith("not valid JSON")
    assert rows[2][-1] == ""
    assert "could not be graded: not valid JSON" in capsys.readouterr().out


def test_command_line_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["x.ipynb", "--memory", "lots"])
    assert exit_info.value.code == 2 and "memory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["x.ipynb", "--jobs", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["x.ipynb", "--csv", "/no/such/folder/grades.csv"])
    assert exit_info.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_an_interrupted_batch_keeps_what_was_graded(tmp_path, monkeypatch, capsys):
    paths = [
        str(fx.write_notebook(tmp_path / f"s{k}.ipynb", solution())) for k in range(3)
    ]
    out_json = tmp_path / "g.json"
    original = grader_module.grade_notebooks

    def interrupted(paths, on_graded=None, **kwargs):
        def stop_after_first(index, submission):
            on_graded(index, submission)
            raise KeyboardInterrupt

        return original(paths, on_graded=stop_after_first, **kwargs)

    monkeypatch.setattr("labkit.grade.batch.grade_notebooks", interrupted)
    assert main([*paths, "--no-cache", "--json", str(out_json), "--jobs", "1"]) == 130
    data = json.loads(out_json.read_text())
    assert len(data) == 1 and data[0]["score"] == 6
    assert "1 of 3 submissions were graded" in capsys.readouterr().err
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_the_report_names_the_known_mistake_under_the_exercise(tmp_path):
    path = fx.write_notebook(
        tmp_path / "99_fixtures.ipynb", solution(**{"99.1": PARTIAL})
    )
    [submission] = grade_notebooks([str(path)], cache=False)
    assert by_id(submission)["99.1"].mistake == "ignores-scale"
    lines = format_submission(submission).splitlines()
    at = next(i for i, line in enumerate(lines) if "Add a bias" in line)
    assert lines[at + 2] == (
        "        Known mistake (ignores-scale): The scale keyword was ignored. "
        "Reread 99.1 Fixtures."
    )
    assert lines[at + 3] == "        Hint: Broadcast b over the rows."


AS_LIST = "def add_bias(X, b, *, scale=1.0):\n    return (scale * X + b).tolist()\n"
AS_FLOAT32 = fx.SOLUTIONS["99.3"].replace(
    '{"probs": P,', '{"probs": P.astype(np.float32),'
)


@pytest.mark.parametrize(
    "exercise_id, name, source, status, fragment",
    [
        ("99.1", "add_bias", AS_LIST, "passed", "all 4 cases passed"),
        ("99.3", "softmax_rows", AS_FLOAT32, "failed", "has dtype float32, so its"),
    ],
)
def test_check_and_the_grader_agree_on_what_a_type_is(
    tmp_path, exercise_id, name, source, status, fragment
):
    """A list where an array is asked for is read as one; float32 that agrees only to
    float32 precision is told about its dtype, not shown values."""
    path = fx.write_notebook(
        tmp_path / "99_fixtures.ipynb", solution(**{exercise_id: source})
    )
    [submission] = grade_notebooks([str(path)], cache=False)
    graded = by_id(submission)[exercise_id]
    namespace: dict = {}
    exec(source, namespace)
    checked = evaluate(get(exercise_id), namespace[name])
    assert graded.status == checked.status == status
    assert fragment in graded.feedback and graded.feedback == checked.feedback


def test_reports_escape_control_characters():
    result = grader_module.failure(
        get("99.1"), "error", "raised \x1b[2J\x1b]0;pwned\x07"
    )
    text = format_submission(Submission("a\x1b.ipynb", 0.0, 2, [result]))
    assert "\x1b" not in text and "\x07" not in text and "\\x1b[2J" in text


def test_gradebook_csv_quotes_awkward_names():
    s = Submission(
        'a, "b".ipynb', 1.0, 2, [grader_module.failure(get("99.1"), "error", "x")]
    )
    rows = list(csv.reader(io.StringIO(gradebook_csv([s]))))
    assert rows[1][0] == 'a, "b".ipynb'


# ------------------------------------------------------------------------ in a notebook


def test_grade_prints_the_same_report_as_the_command_line(tmp_path, capsys):
    path = fx.write_notebook(
        tmp_path / "99_fixtures.ipynb", solution(**{"99.1": PARTIAL})
    )
    submission = grade(path, cache=False)
    printed = capsys.readouterr().out
    assert main([str(path), "--no-cache", "--color", "never"]) == 0
    assert capsys.readouterr().out == printed
    assert printed.strip() == format_submission(submission)
    assert repr(submission) == f"Submission({str(path)!r}, score=5.5, max_score=6)"


def test_grade_finds_the_running_notebook(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "chapters"
    folder.mkdir()
    fx.write_notebook(folder / "99_fixtures.ipynb", solution())
    monkeypatch.chdir(folder)
    monkeypatch.setenv(
        "JPY_SESSION_NAME", "chapters/99_fixtures.ipynb"
    )  # relative to the server
    assert grade(cache=False).score == 6
    monkeypatch.setenv("JPY_SESSION_NAME", str(folder / "99_fixtures.ipynb"))
    assert grade(cache=False).score == 6
    monkeypatch.delenv("JPY_SESSION_NAME")
    with pytest.raises(ValueError, match="pass its file name"):
        grade(cache=False)


def _kernel_that_ran(monkeypatch, *sources: str) -> None:
    """Pretend this process is an IPython kernel that ran ``sources``."""
    import types

    import labkit.grade as api

    history = types.SimpleNamespace(input_hist_raw=["", *sources, "grade()"])
    monkeypatch.setattr(
        api, "_shell", lambda: types.SimpleNamespace(history_manager=history)
    )


def test_grade_asks_to_save_when_the_kernel_ran_other_exercise_cells(
    tmp_path, monkeypatch, capsys
):
    path = fx.write_notebook(tmp_path / "99_fixtures.ipynb", fx.STUBS)
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    _kernel_that_ran(monkeypatch, fx.STUBS["99.2"], *fx.SOLUTIONS.values())
    assert grade(cache=False) is None
    printed = capsys.readouterr().out
    assert "exercises 99.1, 99.2, 99.3" in printed and "Save the notebook" in printed
    assert "not attempted" not in printed
    # a named file that is the running notebook is checked the same way
    assert grade(path, cache=False) is None
    assert "Save the notebook" in capsys.readouterr().out


def test_grade_grades_a_saved_notebook_and_other_files(tmp_path, monkeypatch, capsys):
    path = fx.write_notebook(tmp_path / "99_fixtures.ipynb", solution())
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    _kernel_that_ran(monkeypatch, fx.STUBS["99.1"], *fx.SOLUTIONS.values())
    assert grade(cache=False).score == 6  # the last run of each cell was saved
    other = fx.write_notebook(tmp_path / "99_other.ipynb", fx.STUBS)
    assert grade(other, cache=False).score == 0  # not the running notebook
    assert "Save" not in capsys.readouterr().out


def test_the_progress_bar_shows_only_on_a_terminal_for_a_batch():
    from labkit.grade.__main__ import _Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    shown = Terminal()
    bar = _Progress(4, shown)
    bar.advance()
    bar.clear()
    assert "1/4" in shown.getvalue() and shown.getvalue().endswith("\r\033[K")
    for total, stream in ((1, Terminal()), (4, io.StringIO())):
        _Progress(total, stream).advance()
        assert stream.getvalue() == ""


def test_a_worker_that_cannot_start_stops_the_batch_with_its_reason(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(
        sandbox_module, "_BOOT", "import sys; sys.exit('numpy is broken here')"
    )
    path = str(fx.write_notebook(tmp_path / "a.ipynb", solution()))
    with pytest.raises(pool_module.WorkerStartError, match="numpy is broken here"):
        grade_notebooks([path], cache=False)
    out = tmp_path / "g.json"
    assert main([path, "--no-cache", "--json", str(out)]) == 3
    assert (
        "could not start" in capsys.readouterr().err
        and json.loads(out.read_text()) == []
    )


def test_workers_end_and_clean_up_when_the_grader_is_killed(tmp_path):
    """The grader dies mid-job (SIGKILL: no clean-up of its own): its workers notice,
    kill the running exercise, remove their directories and exit; nothing it started is
    left."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    slow = "import time\ndef add_bias(X, b, *, scale=1.0):\n    time.sleep(600)\n"
    path = fx.write_notebook(tmp_path / "99_slow.ipynb", solution(**{"99.1": slow}))
    program = (
        "import sys, grading_fixtures; grading_fixtures.register(); "
        "from labkit.grade.__main__ import main; main(sys.argv[1:])"
    )
    env = dict(os.environ, TMPDIR=str(scratch), PYTHONPATH=str(Path(__file__).parent))
    grader = subprocess.Popen(
        [sys.executable, "-c", program, str(path), "--no-cache", "--timeout", "300"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    started: set[tuple[int, bytes]] = set()

    def running() -> bool:  # down to the exercise: master, server, monitor, runner ...
        started.update(_descendants(grader.pid))
        return any(b"sleep" in _wchan(pid) for pid, _ in started) or len(started) >= 7

    try:
        assert _eventually(running, 120)  # the job runs
    finally:
        grader.kill()
        grader.wait()
    assert _eventually(
        lambda: not (started & set(_processes())) and not any(scratch.iterdir()), 60
    )


def _processes() -> dict[tuple[int, bytes], int]:
    """(pid, start time) -> parent pid, for every process this system shows."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found[(int(pid), fields[19])] = int(fields[1])
    return found


def _descendants(root: int) -> set[tuple[int, bytes]]:
    processes = _processes()
    below, frontier = set(), {root}
    while frontier:
        children = {key for key, parent in processes.items() if parent in frontier}
        children -= below
        below |= children
        frontier = {pid for pid, _ in children}
    return below


def _wchan(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/wchan").read_bytes()
    except OSError:
        return b""


def _eventually(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()
