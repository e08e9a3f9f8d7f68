"""The exercise machinery: registration, comparison, scoring and the learner's check."""

import numpy as np
import pytest
import torch

import labkit.check
from labkit import exercises
from labkit.exercises import Case, Exercise
from labkit.exercises.scoring import (
    compare,
    evaluate,
    failure,
    run_case,
    summarise,
    to_data,
)


def _square(x):
    return x**2


def _square_cases():
    rng = np.random.default_rng(0)
    return [
        Case(
            f"x of shape {shape}", (rng.normal(size=shape),), rng.normal(size=shape) * 0
        )
        for shape in [(3,), (2, 4)]
    ]


def make_exercise(**kw):
    """An unregistered exercise (so the course registry stays clean): square an array."""

    def build():
        rng = np.random.default_rng(0)
        xs = [rng.normal(size=(3,)), rng.normal(size=(2, 4)), rng.normal(size=(5,))]
        return [Case(f"x of shape {x.shape}", (x,), x * x) for x in xs]

    options = dict(
        id="99.1",
        title="Square",
        points=3,
        function="square",
        build_cases=build,
        reference=_square,
        hint="Multiply x by itself.",
    )
    options.update(kw)
    return Exercise(**options)


def test_reference_passes_and_stub_is_not_attempted():
    ex = make_exercise()
    assert evaluate(ex, _square).score == 3
    assert evaluate(ex, _square).status == "passed"

    def stub(x):
        raise NotImplementedError

    result = evaluate(ex, stub)
    assert (result.score, result.status) == (0.0, "not_attempted")
    assert "NotImplementedError" in result.feedback


def test_partial_credit_per_case_and_feedback_names_the_input():
    ex = make_exercise()
    result = evaluate(ex, lambda x: x * x if x.ndim == 1 else x)
    assert result.status == "partial"
    assert result.score == 2.0
    assert (
        "x of shape (2, 4)" in result.feedback and "Hint: Multiply" in result.feedback
    )


def test_statuses_failed_and_error():
    ex = make_exercise()
    assert evaluate(ex, lambda x: x + 1).status == "failed"
    assert evaluate(ex, lambda x: 1 / 0).status == "error"
    assert evaluate(ex, "not callable").status == "error"


def test_broadcasting_cannot_pass():
    ex = make_exercise()
    result = evaluate(ex, lambda x: (x * x)[None])  # right values, extra axis
    assert result.score == 0 and "shape" in result.feedback


def test_arguments_are_private_copies():
    ex = make_exercise()

    def mutating(x):
        y = x * x
        x[...] = 0.0  # must not damage the next call's inputs
        return y

    assert evaluate(ex, mutating).score == 3
    assert evaluate(ex, _square).score == 3


@pytest.mark.parametrize(
    "expected,got,fragment",
    [
        (np.zeros(3), [0.0, 0.0, 0.0], "numpy array"),
        (np.zeros(3), np.zeros(4), "shape"),
        (np.zeros(3), np.zeros(3, dtype=np.int64), "dtype"),
        (np.zeros(3), np.array([0.0, 1e-3, 0.0]), "index (1,)"),
        (np.arange(3), np.array([0, 1, 3]), "differs"),
        (1.5, "1.5", "number"),
        (1.5, 1.6, "expected 1.5"),
        (2, 2.0, "integer"),
        (True, 1, "bool"),
        ((1.0, 2.0), (1.0,), "tuple of 2"),
        ((1.0, np.ones(2)), (1.0, np.zeros(2)), "output[1]"),
        ({"a": 1.0}, {"b": 1.0}, "keys"),
        ({"a": 1.0}, {"a": 2.0}, "output['a']"),
        ("x", "y", "expected 'x'"),
    ],
)
def test_compare_reports_what_differs(expected, got, fragment):
    message = compare(expected, got, rtol=1e-7, atol=1e-10)
    assert message is not None and fragment in message


@pytest.mark.parametrize(
    "expected,got",
    [
        (np.ones(3), np.ones(3) * (1 + 1e-9)),
        (np.array([np.nan, 1.0]), np.array([np.nan, 1.0])),
        (1.0, 1.0 + 1e-9),
        (1.0, np.array(1.0)),
        (3, 3),
        (False, False),
        (None, None),
        ((1, np.ones(2)), (1, np.ones(2))),
        ({"k": 2.0}, {"k": 2}),
    ],
)
def test_compare_accepts_equal_values(expected, got):
    assert compare(expected, got, rtol=1e-7, atol=1e-10) is None


def test_to_data_converts_to_plain_data():
    out = to_data(
        (
            np.float64(1.5),
            np.int64(2),
            np.bool_(True),
            [np.ones(2)],
            {"t": torch.ones(2)},
        )
    )
    assert out[0] == 1.5 and type(out[0]) is float
    assert out[1] == 2 and type(out[1]) is int
    assert out[2] is True
    assert isinstance(out[3], tuple) and isinstance(out[3][0], np.ndarray)
    np.testing.assert_array_equal(out[4]["t"], np.ones(2))


@pytest.mark.parametrize(
    "value,fragment",
    [
        (object(), "object"),
        (np.array(["a"]), "dtype"),
        (np.empty(2, dtype=object), "dtype"),
        ({1: 2.0}, "string keys"),
    ],
)
def test_to_data_refuses_other_objects(value, fragment):
    with pytest.raises(TypeError, match=fragment):
        to_data(value)


def test_an_object_that_lies_about_equality_does_not_pass():
    class Liar:
        shape = (3,)

        def __eq__(self, other):
            return True

        def __array__(self, dtype=None, copy=None):
            return np.zeros(3)

    ex = make_exercise()
    result = evaluate(ex, lambda x: Liar())
    assert result.score == 0 and "cannot be checked" in result.feedback


def test_custom_compare():
    ex = make_exercise(
        compare=lambda expected, got: (
            None if np.allclose(np.abs(got), expected) else "wrong"
        )
    )
    assert evaluate(ex, lambda x: -(x * x)).score == 3
    assert evaluate(ex, lambda x: x).status == "failed"
    broken = make_exercise(compare=lambda expected, got: got.nonexistent)
    assert "could not be compared" in evaluate(broken, _square).feedback


def test_summarise_needs_one_outcome_per_case():
    ex = make_exercise()
    with pytest.raises(ValueError, match="outcomes"):
        summarise(ex, [run_case(_square, ex.cases()[0])])


def test_failure_status_is_checked():
    ex = make_exercise()
    assert failure(ex, "timeout", "took too long").as_dict() == {
        "id": "99.1",
        "title": "Square",
        "score": 0.0,
        "max_score": 3,
        "status": "timeout",
        "feedback": "took too long",
    }
    with pytest.raises(ValueError, match="status"):
        failure(ex, "lost", "")


def test_empty_case_list_is_refused():
    with pytest.raises(ValueError, match="no test cases"):
        make_exercise(id="99.2", build_cases=lambda: []).cases()


def test_check_prints_feedback_and_never_raises_for_a_stub(monkeypatch, capsys):
    ex = make_exercise()
    monkeypatch.setattr(labkit.check, "get", lambda exercise_id: ex)

    def stub(x):
        raise NotImplementedError

    labkit.check.check("99.1", stub)
    out = capsys.readouterr().out
    assert "NOT ATTEMPTED" in out and "0/3 points" in out
    labkit.check.check("99.1", _square)
    out = capsys.readouterr().out
    assert "PASSED" in out and "3/3 points" in out and out.count("[ok]") == 3
    labkit.check.check("99.1", lambda x: x)
    assert "[fail] x of shape (3,)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "kw,fragment",
    [
        (dict(id="5"), "id"),
        (dict(id="0.1"), "id"),
        (dict(points=0), "points"),
        (dict(points=1.5), "points"),
        (dict(function="not a name"), "identifier"),
    ],
)
def test_decorator_rejects_bad_definitions(kw, fragment):
    options = dict(id="98.1", title="t", points=1, function="f", reference=_square)
    options.update(kw)
    with pytest.raises(ValueError, match=fragment):
        exercises.exercise(**options)(_square_cases)


def test_registry_lookup_and_duplicates(monkeypatch):
    monkeypatch.setattr(exercises, "_REGISTRY", {})
    monkeypatch.setattr(exercises, "_LOADED", True)
    exercises.exercise("97.2", title="b", points=1, function="f", reference=_square)(
        _square_cases
    )
    exercises.exercise("97.10", title="c", points=1, function="f", reference=_square)(
        _square_cases
    )
    exercises.exercise("97.1", title="a", points=1, function="f", reference=_square)(
        _square_cases
    )
    assert [e.id for e in exercises.all_exercises()] == ["97.1", "97.2", "97.10"]
    assert [e.id for e in exercises.chapter_exercises(97)] == ["97.1", "97.2", "97.10"]
    assert exercises.get("97.2").chapter == 97
    with pytest.raises(ValueError, match="registered twice"):
        exercises.exercise(
            "97.1", title="a", points=1, function="f", reference=_square
        )(_square_cases)
    with pytest.raises(ValueError, match="known ids: 97.1, 97.2, 97.10"):
        exercises.get("96.1")
