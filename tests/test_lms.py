"""Grading for real classes: LMS archives in; Canvas, Gradescope, HTML and Markdown out;
shards and their merge.

The archives are built here in each LMS's naming (Canvas's "Download Submissions" as
written by its ``ContentZipper``, Moodle's "Download all submissions" in its folder and
flat layouts); the outputs are held to the published formats (Gradescope's autograder
specification, the columns of a Canvas gradebook export). The exercises graded are the
chapter-99 fixtures of ``grading_fixtures``; the shard runs in separate processes grade
chapter 1's real notebooks with the scripts the Kubernetes Job runs (``deploy/``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import grading_fixtures as fx
from grading_fixtures import fixture_exercises, private_cache  # noqa: F401
from labkit.exercises import chapter_exercises
from labkit.grade.__main__ import main
from labkit.grade.batch import ClassBatch, Shard
from labkit.grade.inputs import Bounds, collect, shard_of

# The slow tier (`make test-slow`, run by CI): most tests grade whole batches.
pytestmark = pytest.mark.slow

CHAPTER_1_POINTS = sum(e.points for e in chapter_exercises(1))

ROOT = Path(__file__).resolve().parents[1]
PARTIAL = fx.SOLUTIONS["99.1"].replace("scale * X + b", "X + b")  # fails scale=2


def notebook_bytes(**sources: str) -> bytes:
    """A fixture notebook holding the given exercise cells (keys like ``e99_1``)."""
    cells = {k[1:].replace("_", "."): v for k, v in sources.items()}
    return json.dumps(fx.notebook(cells, scratch=False)).encode()


SOLVED = notebook_bytes(e99_1=fx.SOLUTIONS["99.1"], e99_2=fx.SOLUTIONS["99.2"],
                        e99_3=fx.SOLUTIONS["99.3"])  # fmt: skip
STUB = notebook_bytes(e99_1=fx.STUBS["99.1"], e99_2=fx.STUBS["99.2"],
                      e99_3=fx.STUBS["99.3"])  # fmt: skip


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def grade_cli(*args: str) -> int:
    return main([*map(str, args), "--no-cache", "--quiet", "--jobs", "1"])


def by_learner(gradebook: Path) -> dict:
    return {
        s.get("learner_id", s["submission"]): s
        for s in json.loads(gradebook.read_text())
    }


# ----------------------------------------------------------------------------- inputs


def test_a_canvas_download_maps_every_file_to_its_learner(tmp_path):
    """Canvas names files {sortable name}_{LATE_}{user id}_{file id}_{original name}."""
    archive = make_zip(
        tmp_path / "submissions.zip",
        {
            "lovelaceada_1234_900001_99_fixtures.ipynb": SOLVED,
            "hoppergrace_LATE_2345_900002_99_fixtures-1.ipynb": STUB,
            # one learner, two notebooks: graded as one submission
            "o_brienpat_3456_900003_part_a.ipynb": notebook_bytes(
                e99_1=fx.SOLUTIONS["99.1"]
            ),
            "o_brienpat_3456_900004_part_b.ipynb": notebook_bytes(
                e99_2=fx.SOLUTIONS["99.2"], e99_3=fx.SOLUTIONS["99.3"]
            ),
            "o_brienpat_3456_900005_report.pdf": b"%PDF-1.4",
            "knuthdon_4567_text.html": b"<p>my answer</p>",  # a text entry
            "anon_x7Yz2_900006_99_fixtures.ipynb": SOLVED,  # anonymous grading
        },
    )
    out = tmp_path / "grades.json"
    assert grade_cli(archive, "--json", out, "--csv", tmp_path / "g.csv") == 1
    grades = by_learner(out)
    assert set(grades) == {"1234", "2345", "3456", "4567", "anon_x7Yz2"}
    ada, grace, pat = grades["1234"], grades["2345"], grades["3456"]
    assert (ada["learner_name"], ada["score"], ada["max_score"]) == (
        "lovelaceada",
        6,
        6,
    )
    assert (grace["learner_name"], grace["score"]) == ("hoppergrace", 0)
    assert pat["score"] == 6 and len(pat["files"]) == 2
    assert any("report.pdf: not a notebook" in w for w in pat["warnings"])
    assert "no notebook was handed in" in grades["4567"]["error"]
    assert grades["anon_x7Yz2"]["learner_name"] is None
    rows = list(csv.DictReader((tmp_path / "g.csv").open()))
    assert {r["learner_id"]: r["total"] for r in rows}["3456"] == "6"


def test_a_moodle_download_maps_every_file_to_its_learner(tmp_path):
    """Moodle: {Full Name}_{participant id}_assignsubmission_file_ as a folder per
    learner (the default), or as the prefix of each file (the older flat layout)."""
    folders = make_zip(
        tmp_path / "moodle.zip",
        {
            "Ada Lovelace_501_assignsubmission_file_/99_fixtures.ipynb": SOLVED,
            "Ada Lovelace_501_assignsubmission_file_/notes.txt": b"scratch",
            "Grace Hopper_502_assignsubmission_onlinetext_/onlinetext.html": b"<p>",
            "Grace Hopper_502_assignsubmission_file_/sub/99_fixtures.ipynb": STUB,
            "Participant_503_assignsubmission_file_/99_fixtures.ipynb": SOLVED,
        },
    )
    flat = make_zip(  # the older flat layout, unpacked into a folder and zipped again
        tmp_path / "flat.zip",
        {
            "download/Alan Turing_601_assignsubmission_file_99_fixtures.ipynb": SOLVED,
            "download/Alan Turing_601_assignsubmission_file_notes.ipynb": STUB,
            "download/Kurt Goedel_602_assignsubmission_file_99_fixtures.ipynb": SOLVED,
        },
    )
    out = tmp_path / "grades.json"
    assert grade_cli(folders, flat, "--json", out) == 0
    grades = by_learner(out)
    assert {k: (v["learner_name"], v["score"]) for k, v in grades.items()} == {
        "501": ("Ada Lovelace", 6),
        "502": ("Grace Hopper", 0),
        "503": (None, 6),  # blind marking hides the name
        "601": ("Alan Turing", 6),
        "602": ("Kurt Goedel", 6),
    }
    assert any("notes.txt: not a notebook" in w for w in grades["501"]["warnings"])
    assert any("onlinetext.html" in w for w in grades["502"]["warnings"])


def test_a_folder_of_learner_folders_grades_one_submission_per_folder(tmp_path):
    """Say, the learners' repositories cloned side by side."""
    for learner, data in (("ada", SOLVED), ("grace", STUB)):
        repo = tmp_path / "class" / learner
        (repo / "chapters" / ".ipynb_checkpoints").mkdir(parents=True)
        (repo / ".git" / "objects").mkdir(parents=True)
        (repo / "chapters" / "99_fixtures.ipynb").write_bytes(data)
        checkpoint = repo / "chapters" / ".ipynb_checkpoints" / "99_fixtures-checkpoint"
        checkpoint.with_suffix(".ipynb").write_bytes(STUB if data is SOLVED else SOLVED)
        (repo / ".git" / "objects" / "ab12").write_bytes(b"\0")
        for name in ("README.md", "LICENSE", "setup.py", "a.py", "b.py", "c.py"):
            (repo / name).write_text("x")
    (tmp_path / "class" / "alone.ipynb").write_bytes(SOLVED)
    unpacked = tmp_path / "class" / "canvas-download"  # a download, unzipped here
    unpacked.mkdir()
    (unpacked / "lovelaceada_77_1_99_fixtures.ipynb").write_bytes(SOLVED)
    (unpacked / "turingalan_78_2_99_fixtures.ipynb").write_bytes(STUB)
    out = tmp_path / "grades.json"
    assert grade_cli(tmp_path / "class", "--json", out) == 0
    grades = by_learner(out)
    assert (grades["77"]["score"], grades["78"]["score"]) == (6, 0)
    assert grades["ada"]["score"] == 6 and grades["grace"]["score"] == 0
    assert grades[str(tmp_path / "class" / "alone.ipynb")]["score"] == 6
    [note] = grades["ada"]["warnings"]  # one note for the six other files
    assert note.startswith("6 files are not notebooks and were not graded: ")
    assert "1 more" in note and "checkpoint" not in note and ".git" not in note


def test_the_same_exercise_in_two_notebooks_counts_once_at_its_best(tmp_path):
    archive = make_zip(
        tmp_path / "s.zip",
        {
            "adaada_11_1_first.ipynb": notebook_bytes(e99_1=PARTIAL),
            "adaada_11_2_second.ipynb": notebook_bytes(e99_1=fx.SOLUTIONS["99.1"]),
        },
    )
    out = tmp_path / "grades.json"
    assert grade_cli(archive, "--json", out) == 0
    [ada] = json.loads(out.read_text())
    assert ada["score"] == 2 and ada["max_score"] == 6  # 99.2 and 99.3 not attempted
    assert any("exercise 99.1 is in" in w for w in ada["warnings"])


def test_archives_are_read_within_bounds_and_unsafe_members_refused(tmp_path):
    link = zipfile.ZipInfo("lovelaceada_1_2_link.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("../../escape_1_2_x.ipynb", SOLVED)
        archive.writestr("/etc/abs_1_2_x.ipynb", SOLVED)
        archive.writestr(link, "/etc/passwd")
        archive.writestr("bomb_3_4_big.ipynb", b"{" + b" " * 5_000_000 + b"}")
        archive.writestr("fine_5_6_99_fixtures.ipynb", SOLVED)
    with collect([path], Bounds(notebook=1_000_000)) as found:
        problems = {e.label.split(".zip/", 1)[1]: e.problem for s in found.learners
                    for e in s.files if e.problem}  # fmt: skip
        extracted = [e.path for s in found.learners for e in s.files if e.path]
        assert len(extracted) == 1 and Path(extracted[0]).name == "99_fixtures.ipynb"
        assert Path(extracted[0]).read_bytes() == SOLVED
    assert "unsafe path" in problems["../../escape_1_2_x.ipynb"]
    assert "unsafe path" in problems["/etc/abs_1_2_x.ipynb"]
    assert "symbolic link" in problems["lovelaceada_1_2_link.ipynb"]
    assert "more than the limit" in problems["bomb_3_4_big.ipynb"]
    assert not (tmp_path / "escape_1_2_x.ipynb").exists()
    with collect([path], Bounds(members=3)) as found:
        [only] = found.learners
        assert "5 members, more than the limit of 3" in only.files[0].problem
    with collect([path], Bounds(total=len(SOLVED) + 10)) as found:
        reasons = [e.problem or "" for s in found.learners for e in s.files]
        assert any("add up to more than" in r for r in reasons)


def test_a_broken_archive_or_a_non_notebook_is_reported_never_fatal(tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(b"PK\x03\x04 not really")
    good = make_zip(tmp_path / "good.zip", {"adaada_7_8_99_fixtures.ipynb": SOLVED})
    out = tmp_path / "grades.json"
    assert grade_cli(broken, good, "--json", out) == 1
    grades = by_learner(out)
    assert grades["7"]["score"] == 6
    assert "not a readable zip archive" in grades[str(broken)]["error"]


def test_a_learner_archive_inside_the_download_is_opened_once_more(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("work/99_fixtures.ipynb", SOLVED)
    outer = make_zip(tmp_path / "c.zip", {"adaada_9_10_work.zip": inner.getvalue()})
    out = tmp_path / "grades.json"
    assert grade_cli(outer, "--json", out) == 0
    assert by_learner(out)["9"]["score"] == 6


# ----------------------------------------------------------------------------- Canvas

CANVAS_HEADER = [
    "Student",
    "ID",
    "SIS User ID",
    "SIS Login ID",
    "Section",
    "Notebook 99 (555)",
    "Quiz 1 (556)",
    "Current Score",
]


def write_roster(path: Path) -> Path:
    rows = [
        CANVAS_HEADER,
        ["    Points Possible", "", "", "", "", "6", "10", "(read only)"],
        ["", "", "", "", "", "Manual Posting", "", ""],
        ["Lovelace, Ada", "1234", "s-1", "ada", "Sec A", "", "9", "90"],
        ["Hopper, Grace", "2345", "s-2", "grace", "Sec A", "", "8", "80"],
        ["Absent, Al", "9999", "s-9", "al", "Sec B", "3", "7", "70"],
    ]
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_the_canvas_gradebook_fills_the_roster_by_canvas_id(tmp_path, capsys):
    archive = make_zip(
        tmp_path / "submissions.zip",
        {
            "lovelaceada_1234_1_99_fixtures.ipynb": SOLVED,
            "hoppergrace_LATE_2345_2_99_fixtures.ipynb": notebook_bytes(
                e99_1=fx.SOLUTIONS["99.1"]
            ),
            "strangerjo_7777_3_99_fixtures.ipynb": SOLVED,
        },
    )
    roster, out = write_roster(tmp_path / "roster.csv"), tmp_path / "canvas.csv"
    options = ["--roster", roster, "--canvas", out]
    assert grade_cli(archive, *options, "--canvas-column", "Notebook 99 (555)") == 0
    rows = list(csv.reader(out.open()))
    # Canvas's own layout: identity columns, then the assignment column, then the
    # Points Possible row under the header.
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "Notebook 99 (555)"]  # fmt: skip
    assert rows[1][0].strip() == "Points Possible" and rows[1][-1] == "6"
    assert rows[2] == ["", "", "", "", "", "Manual Posting"]  # copied as it is
    assert {r[1]: r[-1] for r in rows[3:]} == {"1234": "6", "2345": "2", "9999": "3"}
    assert "not in the roster" in capsys.readouterr().err  # 7777 is reported
    grades = tmp_path / "grades.json"
    assert (
        grade_cli(
            archive, *options, "--canvas-column", "Quiz 1 (556)", "--json", grades
        )
        == 0
    )
    names = {s["learner_id"]: s["learner_name"] for s in json.loads(grades.read_text())}
    assert names == {
        "1234": "Lovelace, Ada",
        "2345": "Hopper, Grace",
        "7777": "strangerjo",
    }
    with pytest.raises(SystemExit):  # two assignment columns: which one?
        grade_cli(archive, *options)
    assert "--canvas-column" in capsys.readouterr().err


# ------------------------------------------------------------------------ Gradescope

GRADESCOPE_TOP = {
    "score", "execution_time", "output", "output_format", "test_output_format",
    "test_name_format", "visibility", "stdout_visibility", "extra_data", "tests",
    "leaderboard",
}  # fmt: skip
GRADESCOPE_TEST = {
    "score", "max_score", "status", "name", "name_format", "number", "output",
    "output_format", "tags", "visibility", "extra_data",
}  # fmt: skip
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}


def check_gradescope_results(data: dict) -> None:
    """The fields and types of Gradescope's autograder results specification."""
    assert set(data) <= GRADESCOPE_TOP
    assert isinstance(data["score"], float)
    assert isinstance(data.get("execution_time", 0), int)
    assert isinstance(data["output"], str) and data["output_format"] in FORMATS
    assert {data["visibility"], data["stdout_visibility"]} <= VISIBILITY
    for test in data["tests"]:
        assert set(test) <= GRADESCOPE_TEST
        assert isinstance(test["name"], str) and isinstance(test["number"], str)
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
        assert 0 <= test["score"] <= test["max_score"]
        assert test["status"] in ("passed", "failed")
        assert test["visibility"] in VISIBILITY and test["output_format"] in FORMATS
        assert isinstance(test["output"], str)
    if data["tests"]:
        assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))


def test_gradescope_results_follow_the_published_format(tmp_path):
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "99_part1.ipynb").write_bytes(notebook_bytes(e99_1=PARTIAL))
    (folder / "99_part2.ipynb").write_bytes(
        notebook_bytes(e99_2=fx.SOLUTIONS["99.2"], e99_3=fx.STUBS["99.3"])
    )
    (folder / "readme.md").write_text("hello")
    out = tmp_path / "results.json"
    assert grade_cli(folder, "--gradescope", out) == 0
    data = json.loads(out.read_text())
    check_gradescope_results(data)
    tests = {t["number"]: t for t in data["tests"]}
    assert set(tests) == {"99.1", "99.2", "99.3"}  # both notebooks, one submission
    assert tests["99.2"]["status"] == "passed" and tests["99.1"]["status"] == "failed"
    assert "scale=2" in tests["99.1"]["output"]
    assert data["score"] == 1.5 + 1 and "readme.md" in data["output"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert grade_cli(empty, "--gradescope", out) == 1
    data = json.loads(out.read_text())
    check_gradescope_results(data)
    assert data["score"] == 0.0 and "could not be graded" in data["output"]


def test_the_gradescope_bundle_grades_a_submission_as_gradescope_runs_it(tmp_path):
    """Unpack the bundle as Gradescope does (/autograder/source), stand in for what
    setup.sh installs, and run run_autograder on a real chapter notebook."""
    bundle = tmp_path / "autograder.zip"
    assert main(["gradescope-bundle", str(bundle)]) == 0
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        for script in ("setup.sh", "run_autograder"):
            assert archive.getinfo(script).external_attr >> 16 & 0o111
        archive.extractall(tmp_path / "autograder" / "source")
    assert {"setup.sh", "run_autograder", "labkit-src/pyproject.toml"} <= set(names)
    assert "labkit-src/labkit/grade/gradescope.py" in names
    assert not [n for n in names if "__pycache__" in n]
    home = tmp_path / "autograder"
    for script in ("setup.sh", "run_autograder"):
        text = (home / "source" / script).read_text()
        assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0
    (home / "venv").symlink_to(Path(sys.executable).parent.parent)  # setup.sh's venv
    (home / "submission").mkdir()
    shutil.copy(ROOT / "solutions" / "01_networks.ipynb", home / "submission")
    script = (home / "source" / "run_autograder").read_text()
    script = script.replace("/autograder", str(home))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(["bash", "-c", script], check=True, env=env, timeout=600)
    data = json.loads((home / "results" / "results.json").read_text())
    check_gradescope_results(data)
    assert data["score"] == CHAPTER_1_POINTS and len(data["tests"]) == 6
    assert data["output"].endswith("from the exercise cells of: 01_networks.ipynb")


# -------------------------------------------------------------------- HTML, Markdown


def parse_tags(text: str) -> list[tuple[str, list]]:
    """Every start tag of an HTML page and its attributes, as a browser's tokenizer sees
    them."""
    from html.parser import HTMLParser

    tags = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, attrs))

    Collect().feed(text)
    return tags


def test_feedback_pages_escape_everything_from_a_submission(tmp_path):
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    cell = fx.SOLUTIONS["99.1"].replace(
        "return scale * X + b", f"raise ValueError({hostile!r})"
    )
    archive = make_zip(
        tmp_path / "c.zip",
        {f"evil_1_2_99_{'x' * 3}.ipynb": notebook_bytes(e99_1=cell)},
    )
    folder = tmp_path / "feedback"
    folder.mkdir()
    summary = tmp_path / "summary.md"
    assert grade_cli(archive, "--feedback", folder, "--summary", summary) == 0
    [page] = folder.iterdir()
    text = page.read_text()
    tags = parse_tags(text)
    assert {"script", "img", "iframe", "object"}.isdisjoint(t for t, _ in tags)
    assert not [a for _, attrs in tags for a, _ in attrs if a.startswith("on")]
    assert "&lt;script&gt;" in text
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    markdown = summary.read_text()
    assert "<script" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;" in markdown


# ----------------------------------------------------------------------------- shards


def test_shards_are_stable_under_input_order_and_cover_the_class_once(tmp_path):
    names = {f"learner{k}_{100 + k}_{k}_99_fixtures.ipynb": SOLVED for k in range(12)}
    first = make_zip(tmp_path / "a.zip", dict(list(names.items())[:6]))
    second = make_zip(tmp_path / "b.zip", dict(list(names.items())[6:]))
    seen = []
    for k in (1, 2, 3):
        with ClassBatch([str(first), str(second)], Shard(k, 3)) as forward:
            with ClassBatch([str(second), str(first)], Shard(k, 3)) as backward:
                assert set(forward.info.keys) == set(backward.info.keys)
                assert forward.info.digest == backward.info.digest
                assert all(shard_of(key, 3) == k for key in forward.info.keys)
                seen += forward.info.keys
    assert sorted(seen) == sorted(f"canvas:{100 + k}" for k in range(12))
    for text in ("0/3", "4/3", "1-3", "x"):
        with pytest.raises(ValueError, match="shard"):
            Shard.parse(text)


def shard_env(tmp_path: Path, out: Path, **extra: str) -> dict:
    return dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        LABKIT_GRADE_CACHE=str(tmp_path / "cache"),
        OUT=str(out),
        **extra,
    )


def test_shards_graded_apart_merge_into_the_single_machine_gradebook(tmp_path, capsys):
    """The commands of the Kubernetes Job, run as local processes: three shard pods
    (deploy/grade-shard.sh with JOB_COMPLETION_INDEX 0..2), then the merge step
    (deploy/merge.sh); the merged gradebook equals one machine grading the class."""
    solved = (ROOT / "solutions" / "01_networks.ipynb").read_bytes()
    stub = (ROOT / "chapters" / "01_networks.ipynb").read_bytes()
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    make_zip(
        submissions / "canvas.zip",
        {f"learner{k}_{200 + k}_{k}_01_networks.ipynb": (solved, stub)[k % 2]
         for k in range(5)},
    )  # fmt: skip
    make_zip(
        submissions / "moodle.zip",
        {"Ada Lovelace_301_assignsubmission_file_/01_networks.ipynb": solved},
    )
    out, seed = tmp_path / "out", tmp_path / "seed"
    inputs = f"{submissions / 'canvas.zip'} {submissions / 'moodle.zip'}"
    # The image's build step, for chapter 1 only: its cases, built ahead of grading.
    prepare = [sys.executable, "-m", "labkit.grade", "prepare", "1"]
    subprocess.run([*prepare, "--cache-dir", str(seed)], check=True)
    assert len(list((seed / "cases").glob("1.*"))) == 6
    for index in range(3):
        env = shard_env(
            tmp_path, out, JOB_COMPLETION_INDEX=str(index), SHARDS="3", INPUTS=inputs
        )
        # each pod starts with an empty cache, seeded from the image's
        env.update(
            SEED_CACHE=str(seed), LABKIT_GRADE_CACHE=str(tmp_path / f"pod{index}")
        )
        subprocess.run(
            ["sh", str(ROOT / "deploy" / "grade-shard.sh")], check=True, env=env
        )
    shards = sorted(out.glob("shard-*-of-3.json"))
    assert len(shards) == 3
    roster = write_roster(tmp_path / "roster.csv")
    merge_env = shard_env(
        tmp_path, out, SHARDS="3", ROSTER=str(roster), CANVAS_COLUMN="Notebook 99 (555)"
    )
    subprocess.run(["sh", str(ROOT / "deploy" / "merge.sh")], check=True, env=merge_env)
    single = tmp_path / "single.json"
    subprocess.run(
        [sys.executable, "-m", "labkit.grade", *inputs.split(), "--quiet",
         "--json", str(single), "--csv", str(tmp_path / "single.csv")],
        check=True, env=shard_env(tmp_path, out),
    )  # fmt: skip
    merged = json.loads((out / "grades.json").read_text())
    assert merged == json.loads(single.read_text())
    assert (out / "grades.csv").read_text() == (tmp_path / "single.csv").read_text()
    assert len(merged) == 6 and sum(s["score"] == CHAPTER_1_POINTS for s in merged) == 4
    assert len(list((out / "feedback").glob("*.html"))) == 6
    assert (out / "canvas.csv").exists()
    # A missing shard, a shard given twice, an interrupted shard: refused, saying why.
    cases = {
        "missing": [shards[0], shards[1]],
        "given twice": [shards[0], shards[0], shards[1], shards[2]],
    }
    for reason, paths in cases.items():
        assert main(["merge", *map(str, paths)]) == 1
        assert reason in capsys.readouterr().err
    [cut] = [p for p in shards if json.loads(p.read_text())["submissions"]][:1]
    data = json.loads(cut.read_text())
    data["submissions"].pop()
    cut.write_text(json.dumps(data))
    assert main(["merge", *map(str, shards)]) == 1
    assert "was the run interrupted?" in capsys.readouterr().err


def test_merge_refuses_a_learner_in_the_wrong_shard(tmp_path, capsys):
    ids = {shard_of(f"canvas:{i}", 2): i for i in range(400, 420)}  # one per shard
    names = {f"learner_{i}_{i}_99_fixtures.ipynb": SOLVED for i in ids.values()}
    archive = make_zip(tmp_path / "a.zip", names)
    paths = []
    for k in (1, 2):
        paths.append(tmp_path / f"shard-{k}.json")
        assert grade_cli(archive, "--shard", f"{k}/2", "--json", paths[-1]) == 0
    assert main(["merge", *map(str, paths), "--json", str(tmp_path / "all.json")]) == 0
    assert len(json.loads((tmp_path / "all.json").read_text())) == 2
    one, two = (json.loads(p.read_text()) for p in paths)
    one["shard"]["keys"], two["shard"]["keys"] = (
        two["shard"]["keys"],
        one["shard"]["keys"],
    )
    paths[0].write_text(json.dumps(one))
    paths[1].write_text(json.dumps(two))
    assert main(["merge", *map(str, paths)]) == 1
    assert "belongs to shard" in capsys.readouterr().err


def test_the_job_summary_stays_under_githubs_limit():
    from labkit.exercises import get
    from labkit.exercises.scoring import failure
    from labkit.grade.grader import Submission
    from labkit.grade.job_summary import job_summary

    result = failure(get("99.1"), "error", "é" * 5000)  # two bytes a character
    many = [Submission(f"n{k}.ipynb", 0.0, 2, [result]) for k in range(2000)]
    text = job_summary(many, limit=100_000)
    assert len(text.encode()) <= 100_000 + 100
    assert text.endswith("more submissions: see the gradebook.\n")
    shown = text.count("### ")
    assert 0 < shown < 2000 and f"{2000 - shown} more submissions" in text


# ------------------------------------------------------------------------ the workflow


def test_the_grade_on_push_workflow_runs_without_classroom(tmp_path):
    """The grading step of .github/workflows/grade.yml, run here as Actions runs it: the
    job summary gets the self-check note, the points and the feedback; the gradebook and
    the feedback pages land where the artifact step collects them."""
    yaml = pytest.importorskip("yaml")
    workflows = ROOT / ".github" / "workflows"
    assert not (ROOT / ".github" / "classroom").exists()
    assert not (workflows / "classroom.yml").exists()
    workflow = yaml.safe_load((workflows / "grade.yml").read_text())
    steps = workflow["jobs"]["grade"]["steps"]
    assert not [s for s in steps if "classroom" in s.get("uses", "").lower()]
    assert "classroom" not in json.dumps(steps).lower()
    [grading] = [s for s in steps if "labkit-grade" in s.get("run", "")]
    [artifact] = [s for s in steps if "upload-artifact" in s.get("uses", "")]
    assert artifact["with"]["path"].strip() == "grades/"
    summary = tmp_path / "summary.md"
    notebooks = [ROOT / "solutions" / "01_networks.ipynb"]
    notebooks.append(ROOT / "chapters" / "01_networks.ipynb")
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        NOTEBOOKS=" ".join(map(str, notebooks)),
        GITHUB_STEP_SUMMARY=str(summary),
        LABKIT_GRADE_CACHE=str(tmp_path / "cache"),
    )
    done = subprocess.run(
        ["bash", "-e", "-c", grading["run"]], cwd=tmp_path, env=env, timeout=600
    )
    assert done.returncode == 0
    text = summary.read_text()
    assert text.startswith("> **A self-check, not a grade.**")
    full, zero = f"{CHAPTER_1_POINTS} / {CHAPTER_1_POINTS}", f"0 / {CHAPTER_1_POINTS}"
    assert f"{full} points" in text and f"{zero} points" in text
    assert "not attempted" in text
    grades = json.loads((tmp_path / "grades" / "grades.json").read_text())
    assert [g["score"] for g in grades] == [CHAPTER_1_POINTS, 0]
    assert len(list((tmp_path / "grades" / "feedback").glob("*.html"))) == 2


def test_the_kubernetes_manifests_and_the_image_agree():
    """What the cluster runs is what the tests above run: the pods of the Indexed Job
    run grade-shard.sh with SHARDS equal to the Job's completions, the merge Job runs
    merge.sh for the same count, both mount the claim volume.yaml creates, and the image
    holds both scripts, bubblewrap, and a pinned Python 3.11."""
    yaml = pytest.importorskip("yaml")
    folder = ROOT / "deploy" / "kubernetes"
    [claim] = yaml.safe_load_all((folder / "volume.yaml").read_text())
    documents = list(yaml.safe_load_all((folder / "job.yaml").read_text()))
    [policy] = [d for d in documents if d["kind"] == "NetworkPolicy"]
    [job] = [d for d in documents if d["kind"] == "Job"]
    merge = yaml.safe_load((folder / "merge-job.yaml").read_text())
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"]
    pods = [spec["template"]["spec"], merge["spec"]["template"]["spec"]]
    [grade], [final] = (p["containers"] for p in pods)
    env = {e["name"]: e["value"] for e in grade["env"]}
    assert grade["command"] == ["grade-shard.sh"] and final["command"] == ["merge.sh"]
    assert env["SHARDS"] == str(spec["completions"])
    assert {e["name"]: e["value"] for e in final["env"]}["SHARDS"] == env["SHARDS"]
    assert grade["image"] == final["image"]
    for pod in pods:
        [data] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert data["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert pod["restartPolicy"] == "Never"
    labels = spec["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-\w+$", dockerfile, re.M)
    assert "bubblewrap" in dockerfile and "labkit-grade prepare" in dockerfile
    assert "deploy/grade-shard.sh deploy/merge.sh /usr/local/bin/" in dockerfile
    for script in ("grade-shard.sh", "merge.sh"):
        path = ROOT / "deploy" / script
        assert os.access(path, os.X_OK)
        assert subprocess.run(["sh", "-n", str(path)]).returncode == 0
