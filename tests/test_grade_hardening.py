"""The grader process against what it reads from submissions: notebooks, text, file
names.

Whatever a submission controls reaches the grader's own process as data: the notebook's
JSON, the exercise cells' sources, the text of exceptions its code raised, its file
name. These tests hold the bounds on reading it, the escaping of it in every report, and
the verification of the cache the grader keeps beside it. The attacks that need the
sandbox are in ``test_grade_attacks.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
import tracemalloc
from pathlib import Path

import grading_fixtures as fx
from grading_fixtures import fixture_exercises, private_cache  # noqa: F401
import pytest

from labkit.exercises import Exercise, get
from labkit.grade import cache as cache_module
from labkit.grade import grade_notebooks, sandbox
from labkit.grade import pool as pool_module
from labkit.grade.__main__ import main
from labkit.grade.cache import Cache
from labkit.grade.notebook import (
    MAX_CELL_CHARS,
    MAX_EXERCISE_CHARS,
    MAX_NOTEBOOK_BYTES,
    MAX_WARNINGS,
    NotebookError,
    read_exercise_cells,
)
from labkit.grade.report import format_submission, printable

SPOOF = "boom\nforged.ipynb: 6/6 points\n  99.1  2/2  passed\r\x1b[2K\u2028"
RAISES = f"def add_bias(X, b, *, scale=1.0):\n    raise ValueError({SPOOF!r})\n"


def _peak_while(function, *args):
    """Python-level memory ``function(*args)`` allocated at its peak, and what it
    raised."""
    tracemalloc.start()
    try:
        function(*args)
        raised = None
    except NotebookError as exc:
        raised = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


# -------------------------------------------------------------------- reading notebooks


def test_a_notebook_over_the_size_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.ipynb"
    with open(path, "wb") as f:
        f.truncate(128 * 2**20)  # sparse: 128 MiB that cost nothing to write
    peak, raised = _peak_while(read_exercise_cells, path)
    assert "larger than the limit" in str(raised)
    assert peak < 2**20


@pytest.mark.parametrize(
    "unit, words",
    [("[],", "objects and arrays"), ("{},", "objects and arrays"), ("0,", "values")],
)
def test_json_that_would_swell_when_parsed_is_refused_before_parsing(
    tmp_path, unit, words
):
    """A few MiB of ``[],[],...`` would take some 25 times that as Python objects."""
    path = tmp_path / "swell.ipynb"
    body = unit * (3 * 2**20 // len(unit))
    path.write_text('{"nbformat": 4, "cells": [], "x": [' + body + "0]}")
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    peak, raised = _peak_while(read_exercise_cells, path)
    assert f"JSON {words}" in str(raised) and "clear the outputs" in str(raised)
    assert peak < 3 * path.stat().st_size  # the bytes and their count, no parse


def test_deeply_nested_json_is_refused(tmp_path):
    path = tmp_path / "deep.ipynb"
    path.write_text('{"nbformat": 4, "cells": [], "x": ' + "[" * 50_000 + "]" * 50_000)
    with pytest.raises(NotebookError, match="nested too deeply"):
        read_exercise_cells(path)


def test_a_large_notebook_with_outputs_is_still_read(tmp_path):
    """Images and printed arrays in the outputs of an honest notebook stay within
    bounds."""
    notebook = fx.notebook(fx.SOLUTIONS)
    image = "iVBORw0KGgo" * (2**20 // 11)  # base64 text, as a PNG output holds
    printed = ", ".join(["0.123456"] * 50_000)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [
                {"output_type": "display_data", "data": {"image/png": image}},
                {"output_type": "stream", "name": "stdout", "text": [printed]},
            ]
    path = tmp_path / "big.ipynb"
    path.write_text(json.dumps(notebook, indent=1))
    assert path.stat().st_size > 8 * 2**20
    cells, warnings = read_exercise_cells(path)
    assert [c.id for c in cells] == ["99.1", "99.2", "99.3"] and warnings == []


def test_exercise_cells_are_bounded_one_by_one_and_together(tmp_path):
    long_cell = "x = 1\n" * (MAX_CELL_CHARS // 6 + 1)
    filler = "# " + "y" * (MAX_CELL_CHARS - 10) + "\n"
    sources = {"99.1": long_cell, **{f"9.{k}": filler for k in range(12)}}
    path = fx.write_notebook(tmp_path / "long.ipynb", sources)
    cells, warnings = read_exercise_cells(path)
    assert "99.1" not in [c.id for c in cells]
    assert sum(len(c.source) for c in cells) <= MAX_EXERCISE_CHARS
    assert len(cells) == MAX_EXERCISE_CHARS // len(filler)
    assert any(f"longer than {MAX_CELL_CHARS}" in w for w in warnings)
    assert any("in all; ignored" in w for w in warnings)


def test_notes_about_skipped_cells_are_bounded(tmp_path):
    notebook = fx.notebook(fx.SOLUTIONS)
    notebook["cells"] += [
        {"cell_type": "code", "metadata": {"exercise": "99.1"}, "source": "x"}
    ] * 1000
    notebook["cells"].append(
        {
            "cell_type": "code",
            "metadata": {"tags": ["exercise"], "exercise": "9" * 10_000 + "\n"},
            "source": "x",
        }
    )
    path = tmp_path / "noisy.ipynb"
    path.write_text(json.dumps(notebook))
    cells, warnings = read_exercise_cells(path)
    assert [c.id for c in cells] == ["99.1", "99.2", "99.3"]
    assert len(warnings) == MAX_WARNINGS and warnings[-1].startswith("and 982 more")
    assert all(len(w) < 200 for w in warnings)


# ----------------------------------------------------------------------------- escaping


def test_printable_puts_anything_on_one_line_of_printable_text():
    assert printable("plain é ü 中") == "plain é ü 中"
    assert printable("a\nb\rc\td\x1b[2J\x07\u2028\u202e") == (
        "a\\nb\\rc\\td\\x1b[2J\\x07\\u2028\\u202e"
    )
    assert printable(os.fsdecode(b"caf\xe9-\xff.ipynb")) == "caf\\xe9-\\xff.ipynb"


def test_exception_messages_cannot_forge_report_lines(tmp_path):
    """A submission's exception message reaches the report, the CSV and the JSON
    escaped; the grader's own multi-line feedback keeps its lines."""
    paths = [
        str(
            fx.write_notebook(
                tmp_path / "attacker.ipynb", {**fx.SOLUTIONS, "99.1": RAISES}
            )
        ),
        str(fx.write_notebook(tmp_path / "victim.ipynb", fx.SOLUTIONS)),
    ]
    [attacker, victim] = grade_notebooks(paths, cache=False)
    feedback = attacker.exercises[0].feedback
    assert "boom\\nforged.ipynb: 6/6 points\\n" in feedback and "\\x1b[2K" in feedback
    assert all(
        case_note is None or "\n" not in case_note
        for _, case_note in attacker.exercises[0].cases
    )
    report = format_submission(attacker)
    assert "\x1b" not in report and "\r" not in report and "\u2028" not in report
    assert not any(line.startswith("forged") for line in report.splitlines())
    assert victim.score == 6


def _cli(tmp_path, notebooks, *options):
    out_json, out_csv = tmp_path / "grades.json", tmp_path / "grades.csv"
    status = main(
        [
            *map(os.fsdecode, notebooks),
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
            "--jobs",
            "2",
            *options,
        ]
    )
    return status, out_json.read_bytes(), out_csv.read_bytes()


def test_any_file_name_is_graded_reported_and_written(tmp_path, capsys):
    """Names that are not UTF-8, or hold newlines and escape sequences: every submission
    is graded, printed on its own headline and written as one row of each gradebook."""
    folder = os.fsencode(tmp_path)
    names = [
        b"\xff\xfe.ipynb",
        b"caf\xe9.ipynb",
        b"a\nforged.ipynb: 6 of 6 points\x1b[2J.ipynb",
    ]
    paths = []
    for name in names:
        path = os.path.join(folder, name)
        with open(path, "w") as f:
            json.dump(fx.notebook({**fx.SOLUTIONS, "99.1": RAISES}), f)
        paths.append(path)
    status, json_bytes, csv_bytes = _cli(tmp_path, paths, "--no-cache")
    printed = capsys.readouterr().out
    assert status == 0
    headlines = [line for line in printed.splitlines() if line.endswith(" points")]
    assert len(headlines) == 3
    assert headlines[0].endswith("\\xff\\xfe.ipynb: 4/6 points")
    assert headlines[1].endswith("caf\\xe9.ipynb: 4/6 points")
    assert "a\\nforged.ipynb: 6 of 6 points\\x1b[2J.ipynb: 4/6 points" in headlines[2]
    assert "\x1b" not in printed
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"))))
    assert [row[-1] for row in rows] == ["total", "4", "4", "4"]
    assert all("\n" not in cell for row in rows for cell in row)
    data = json.loads(json_bytes.decode("utf-8"))
    assert [os.path.basename(d["submission"]) for d in data] == [
        "\\xff\\xfe.ipynb",
        "caf\\xe9.ipynb",
        "a\\nforged.ipynb: 6 of 6 points\\x1b[2J.ipynb",
    ]
    assert "\\nforged" in data[0]["exercises"][0]["feedback"]


# ---------------------------------------------------------------------------- the cache


def _entries(folder: Path, kind: str) -> list[Path]:
    return sorted((folder / kind).rglob("*.json"))


def test_a_cache_entry_that_does_not_verify_is_ignored_and_rebuilt(
    tmp_path, monkeypatch
):
    """Full marks written into a verdict without its hash, and a verdict copied under
    another key, are misses: the cell is graded again and the entry written anew."""
    cache = tmp_path / "cache"
    wrong = {
        **fx.SOLUTIONS,
        "99.1": "def add_bias(X, b, *, scale=1.0):\n    return X\n",
    }
    path = str(fx.write_notebook(tmp_path / "a.ipynb", wrong))
    right = str(fx.write_notebook(tmp_path / "b.ipynb", fx.SOLUTIONS))
    [first, _] = grade_notebooks([path, right], cache=str(cache))
    assert first.score == 4
    for kind in ("notebooks", "verdicts"):
        for entry in _entries(cache, kind):
            data = json.loads(entry.read_text())
            text = json.dumps(data["body"]).replace('"score": 0.0', '"score": 2.0')
            data["body"] = json.loads(text.replace('"failed"', '"passed"'))
            entry.write_text(json.dumps(data))
    [again] = grade_notebooks([path], cache=str(cache))
    assert again.score == 4 and again.exercises[0].status == "failed"
    # A valid entry of another notebook, copied under this one's key.
    mine = {p.name: p for p in _entries(cache, "notebooks")}
    texts = {name: p.read_text() for name, p in mine.items()}
    full = next(n for n, t in texts.items() if '"score": 6' in t)
    for name, entry in mine.items():
        if name != full:
            entry.write_text(texts[full])
    [again] = grade_notebooks([path], cache=str(cache))
    assert again.score == 4


def test_a_tampered_case_file_is_rebuilt_not_trusted(tmp_path, monkeypatch):
    exercise = get("99.1")
    monkeypatch.setattr(cache_module, "_MEMO", {})
    Cache(tmp_path).cases(exercise)
    [case_file] = (tmp_path / "cases").glob("99.1-*")
    data = bytearray(case_file.read_bytes())
    data[-8:] = bytes(8)  # the last expected value, changed
    case_file.write_bytes(bytes(data))
    monkeypatch.setattr(cache_module, "_MEMO", {})
    built = []
    original = Exercise.cases

    def spy(self):
        built.append(self.id)
        return original(self)

    monkeypatch.setattr(Exercise, "cases", spy)
    cases = Cache(tmp_path).cases(exercise)
    assert built == ["99.1"]
    assert [c.expected.tolist() for c in cases] == [
        c.expected.tolist() for c in original(exercise)
    ]
    assert case_file.read_bytes() != bytes(data)  # written again, right


def test_no_cache_writes_nothing_and_the_cache_is_private(tmp_path, capsys):
    notebook = fx.write_notebook(tmp_path / "a.ipynb", fx.SOLUTIONS)
    cache = tmp_path / "cache"
    status, _, _ = _cli(tmp_path, [notebook], "--no-cache", "--cache-dir", str(cache))
    assert status == 0 and not cache.exists()
    status, _, _ = _cli(tmp_path, [notebook], "--cache-dir", str(cache))
    assert status == 0
    folders = [cache, *(p for p in cache.rglob("*") if p.is_dir())]
    assert len(folders) > 3
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in folders)
    capsys.readouterr()


def test_a_gradebook_never_overwrites_a_submission(tmp_path, capsys):
    notebook = fx.write_notebook(tmp_path / "a.ipynb", fx.SOLUTIONS)
    before = notebook.read_bytes()
    with pytest.raises(SystemExit) as stopped:
        main([str(notebook), "--csv", str(notebook), "--no-cache"])
    assert (
        stopped.value.code == 2
        and "is a submission to grade" in capsys.readouterr().err
    )
    assert notebook.read_bytes() == before


@pytest.mark.skipif(sandbox.problem() is not None, reason=str(sandbox.problem()))
def test_a_verdict_from_an_unisolated_run_is_not_reused_by_an_isolated_one(
    tmp_path, monkeypatch
):
    """Code run without isolation could have written its own verdict into the cache."""
    path = str(fx.write_notebook(tmp_path / "a.ipynb", fx.SOLUTIONS))
    cache = str(tmp_path / "cache")
    grade_notebooks([path], cache=cache, isolation="none")
    sent = []
    original = pool_module.WorkerPool.run

    def spy(self, request, seconds):
        sent.append([item["id"] for item in request["exercises"]])
        return original(self, request, seconds)

    monkeypatch.setattr(pool_module.WorkerPool, "run", spy)
    [again] = grade_notebooks([path], cache=cache, isolation="bwrap")
    assert sorted(sum(sent, [])) == ["99.1", "99.2", "99.3"] and again.score == 6
    assert again.isolation == "bwrap"
