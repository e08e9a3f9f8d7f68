"""The exercise machinery: registration, comparison, scoring and the learner's check."""

import numpy as np
import pytest
import torch

import labkit.check
from labkit.grade.runner import call_case
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
    """An unregistered exercise (so the course registry stays clean): square an
    array."""

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
        hints=("Multiply x by itself.", "Return x * x."),
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


def test_arguments_are_read_only_private_copies():
    """Changing an input in place is refused by name; the cases stay intact."""
    ex = make_exercise()

    def mutating(x):
        y = x * x
        x[...] = 0.0
        return y

    def mutating_keyword(x, *, scale=np.ones(2)):
        scale *= 2
        return x * x

    result = evaluate(ex, mutating)
    assert result.score == 0 and result.status == "error"
    assert "your function modified its input `x`; return a new array" in result.feedback
    args = (np.arange(3.0),)
    kwargs = {"scale": np.arange(2.0)}
    kind, _, error = call_case(mutating_keyword, args, kwargs)
    assert kind == "raised" and "modified its input `scale`" in error
    assert np.array_equal(kwargs["scale"], [0.0, 1.0]) and args[0].flags.writeable
    assert evaluate(ex, _square).score == 3


@pytest.mark.parametrize(
    "expected,got,fragment",
    [
        (np.zeros(3), ["0", "1", "2"], "got a list"),
        (np.zeros(3), None, "got None"),
        (np.zeros(3), np.zeros(4), "shape"),
        (np.zeros(3), np.zeros(3, dtype=np.int64), "expected a float array (float64)"),
        (np.arange(3), np.zeros(3), "expected an integer array (int64)"),
        (np.zeros(3), np.full(3, 0.01, dtype=np.float32), "differs"),
        (np.zeros(3), np.array([0.0, 1e-3, 0.0]), "index (1,)"),
        (np.arange(3), np.array([0, 1, 3]), "differs"),
        (1.5, "1.5", "number, got a str"),
        (1.5, np.ones(1), "got a float64 array of shape (1,)"),
        ((1.0, 2.0), np.ones(2), "tuple of 2 items, got a float64 array"),
        (1.5, 1.6, "expected 1.5"),
        (2, 2.0, "integer"),
        (True, 1, "bool"),
        ((1.0, 2.0), (1.0,), "tuple of 2"),
        ((1.0, np.ones(2)), (1.0, np.zeros(2)), "output[1]"),
        ((1.0, 2.0), [1.0], "got a list of 1 items"),
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
        ((1, np.ones(2)), [1, np.ones(2)]),
        (np.array([1.0, 2.0]), [1.0, 2.0]),
        (np.array([[1, 2]]), ((1, 2),)),
        (np.array([0.5, 1.0]), np.array([0.5, 1.0], dtype=np.float32)),
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
    assert isinstance(out[3], list) and isinstance(out[3][0], np.ndarray)
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
        "mistake": None,
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
        (dict(hints="a single string"), "hints"),
        (dict(hints=("",)), "hints"),
        (dict(mistakes=("not a Mistake",)), "Mistake"),
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


def test_float32_that_agrees_only_to_float32_precision_is_told_about_its_dtype():
    expected = np.array([1 / 3, 2 / 3])
    message = compare(expected, expected.astype(np.float32), rtol=1e-9, atol=1e-12)
    assert "dtype float32" in message and "float64" in message
    assert "differs" not in message


# --- tiered hints and known mistakes -------------------------------------------


def _cube(x):
    return x**3


def _double(x):
    return 2 * x


def _mistaken(**kw):
    from labkit.exercises import Mistake

    options = dict(
        id="97.1",
        mistakes=(
            Mistake("cube", "x was cubed, not squared.", "9.1 Powers", _cube),
            Mistake("double", "x was doubled, not squared.", "9.2 Products", _double),
        ),
    )
    options.update(kw)
    exercises._CASES.pop(options["id"], None)
    return make_exercise(**options)


def test_cases_carry_the_output_of_each_mistake_where_it_fails():
    ex = _mistaken()
    for case in ex.cases():
        assert set(case.mistakes) == {"cube", "double"}
        np.testing.assert_array_equal(case.mistakes["cube"], case.args[0] ** 3)


def test_a_known_mistake_is_named_with_its_section_and_the_first_hint():
    ex = _mistaken()
    result = evaluate(ex, lambda x: x * x * x)
    assert result.mistake == "cube" and result.as_dict()["mistake"] == "cube"
    assert "Known mistake (cube): x was cubed, not squared. Reread 9.1 Powers." in (
        result.feedback
    )
    assert "Hint: Multiply x by itself." in result.feedback
    assert "Return x * x" not in result.feedback  # the recipe only on request
    assert evaluate(ex, _double).mistake == "double"


def test_an_unknown_wrong_answer_names_no_mistake():
    ex = _mistaken()
    assert evaluate(ex, lambda x: x + 1).mistake is None
    assert "Known mistake" not in evaluate(ex, lambda x: x + 1).feedback
    assert evaluate(ex, _square).mistake is None
    assert evaluate(ex, lambda x: 1 / 0).mistake is None


def test_a_mistake_must_match_on_every_case_it_is_told_apart_by():
    ex = _mistaken()
    first = ex.cases()[0].args[0]

    def cube_once(x):  # the cube on the first case only
        return x**3 if x.shape == first.shape and np.all(x == first) else x + 1

    assert evaluate(ex, cube_once).mistake is None


def test_a_mistake_no_case_tells_apart_is_refused():
    from labkit.exercises import Mistake

    ex = _mistaken(
        mistakes=(Mistake("same", "No mistake at all.", "9.1 Powers", _square),)
    )
    with pytest.raises(ValueError, match="no case tells mistake 'same'"):
        ex.cases()


@pytest.mark.parametrize(
    "kw,fragment",
    [
        (dict(id="Cube"), "slug"),
        (dict(description=""), "description"),
        (dict(section=""), "section"),
        (dict(function=None), "callable"),
    ],
)
def test_mistake_rejects_bad_definitions(kw, fragment):
    from labkit.exercises import Mistake

    options = dict(id="cube", description="d", section="9.1", function=_cube)
    options.update(kw)
    with pytest.raises(ValueError, match=fragment):
        Mistake(**options)


def test_check_gives_the_recipe_only_on_request(monkeypatch, capsys):
    ex = _mistaken()
    monkeypatch.setattr(labkit.check, "get", lambda exercise_id: ex)
    labkit.check.check("97.1", _cube)
    out = capsys.readouterr().out
    assert "Known mistake (cube)" in out and "Reread 9.1 Powers" in out
    assert "Hint: Multiply x by itself." in out and "Recipe" not in out
    labkit.check.check("97.1", _cube, hint=2)
    assert "Recipe: Return x * x." in capsys.readouterr().out
    with pytest.raises(ValueError, match="hint must be 1"):
        labkit.check.check("97.1", _cube, hint=3)
