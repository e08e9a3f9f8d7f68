"""Reports of graded submissions: the terminal text and the JSON and CSV gradebooks
(the LMS formats have modules of their own: ``canvas``, ``gradescope``,
``feedback_html``). Every file is written atomically (a temporary file, then a rename),
so a reader never sees half a gradebook, whenever the grader stops.

Text that came from a submission reaches every output through ``printable``: its file
name here, the messages of its exceptions as the grader reads them. Control characters,
newlines included, are escaped, and the bytes of a file name that is not UTF-8 are shown
as ``\\xff``; so a submission can neither forge a report line or gradebook row nor stop
a writer. The grader's own feedback may span lines; each is printed indented.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

if TYPE_CHECKING:  # pragma: no cover
    from .grader import Submission

__all__ = [
    "atomic_write",
    "format_submission",
    "format_summary",
    "gradebook_json",
    "gradebook_csv",
]

_MARK = {
    "passed": "passed",
    "partial": "partial",
    "failed": "FAILED",
    "error": "ERROR",
    "timeout": "TIMEOUT",
    "memory": "MEMORY",
    "not_attempted": "not attempted",
}
_COLOR = {
    "passed": "32",
    "partial": "33",
    "failed": "31",
    "error": "31",
    "timeout": "31",
    "memory": "31",
    "not_attempted": "90",
}
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | os.PathLike, content: str | bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file and a rename: all or
    nothing."""
    path = Path(path)
    fd, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=".tmp",
        dir=path.parent if str(path.parent) else ".",
    )
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, str):
                content = content.encode("utf-8", "backslashreplace")
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def printable(text: str) -> str:
    """``text`` on one line of printable characters: control and format characters
    (newlines included) escaped as in Python strings, undecodable bytes (surrogate
    escapes) as ``\\xNN``.
    """
    if text.isprintable():
        return text
    out = []
    for c in text:
        if c.isprintable():
            out.append(c)
        elif "\udc80" <= c <= "\udcff":  # a byte of a file name that is not UTF-8
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        else:
            out.append(repr(c)[1:-1])
    return "".join(out)


def _points(value: float) -> str:
    return f"{value:g}"


def format_submission(submission: "Submission", color: bool = False) -> str:
    """The terminal report of one submission: a headline, then one line per exercise
    with its points, status and title, and the feedback under any exercise that did not
    pass."""
    name = printable(submission.path)
    if submission.error is not None:
        return f"{name}: could not be graded: {printable(submission.error)}"
    lines = [
        f"{name}: {_points(submission.score)}/{_points(submission.max_score)} points"
    ]
    id_width = max((len(r.id) for r in submission.exercises), default=3)
    points = [f"{_points(r.score)}/{r.max_score}" for r in submission.exercises]
    points_width = max(map(len, points), default=3)
    for result, scored in zip(submission.exercises, points):
        mark = f"{_MARK[result.status]:<13}"
        if color:
            mark = f"\033[{_COLOR[result.status]}m{mark}\033[0m"
        lines.append(
            f"  {result.id:<{id_width}}  {scored:>{points_width}}  {mark}  "
            f"{printable(result.title)}"
        )
        if result.status != "passed":
            lines += [
                f"  {'':<{id_width}}  {printable(line)}"
                for line in result.feedback.splitlines()
            ]
    lines += [f"  note: {printable(w)}" for w in submission.warnings]
    return "\n".join(lines)


def format_summary(submissions: list["Submission"], seconds: float) -> str:
    """A few lines for a batch: how many, how fast, the scores, and each exercise's pass
    rate."""
    graded = [s for s in submissions if s.error is None]
    rate = len(submissions) / seconds if seconds > 0 else float("inf")
    lines = [
        f"Graded {len(graded)} of {len(submissions)} submissions in {seconds:.1f} s "
        f"({rate:.1f} per second); {len(submissions) - len(graded)} could not be read."
    ]
    if graded:
        scores = [s.score for s in graded]
        low, high = min(s.max_score for s in graded), max(s.max_score for s in graded)
        out_of = _points(high) if low == high else f"{_points(low)} to {_points(high)}"
        lines.append(
            f"Scores out of {out_of}: mean {statistics.fmean(scores):.2f}, "
            f"median {_points(statistics.median(scores))}, min {_points(min(scores))}, "
            f"max {_points(max(scores))}."
        )
        rates = []
        for exercise_id in _exercise_ids(graded):
            results = [r for s in graded for r in s.exercises if r.id == exercise_id]
            passed = sum(r.status == "passed" for r in results)
            rates.append(f"{exercise_id} {passed}/{len(results)}")
        lines.append("Passed per exercise: " + ", ".join(rates) + ".")
    return "\n".join(lines)


def _exercise_ids(submissions: Iterable["Submission"]) -> list[str]:
    ids = {r.id for s in submissions for r in s.exercises}
    return sorted(ids, key=lambda i: tuple(int(p) for p in i.split(".")))


def gradebook_json(submissions: list["Submission"]) -> str:
    """One object per submission: submission, score, max_score, exercises, error,
    warnings."""
    data = []
    for s in submissions:
        entry = s.as_dict()
        entry["submission"] = printable(s.path)
        entry["error"] = None if s.error is None else printable(s.error)
        entry["warnings"] = [printable(w) for w in s.warnings]
        for key in ("learner_id", "learner_name"):
            if isinstance(entry.get(key), str):
                entry[key] = printable(entry[key])
        if "files" in entry:
            entry["files"] = [printable(f) for f in entry["files"]]
        data.append(entry)
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def gradebook_csv(submissions: list["Submission"]) -> str:
    """One row per submission, one column per exercise (its points), then error and
    total.

    When some submission's learner is known, ``learner_id`` and ``learner_name`` columns
    follow the submission's. The error column is empty for a graded submission and says
    why one could not be read; the total is the last column.
    """
    ids = _exercise_ids(submissions)
    learners = any(s.learner_id is not None for s in submissions)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    who = ["learner_id", "learner_name"] if learners else []
    writer.writerow(["submission", *who, *ids, "error", "total"])
    for s in submissions:
        points = {r.id: _points(r.score) for r in s.exercises}
        total = "" if s.error is not None else _points(s.score)
        names = [s.learner_id or "", s.learner_name or ""] if learners else []
        row = [s.path, *names, *(points.get(i, "") for i in ids), s.error or "", total]
        writer.writerow([printable(cell) for cell in row])
    return out.getvalue()
