"""A Canvas gradebook to import: the roster exported from Canvas, with one
assignment's column filled from the grades.

Canvas exports its gradebook (Grades, Export) as a CSV whose first columns say who each
row is: ``Student`` (the sortable name, "Lovelace, Ada"), ``ID`` (the Canvas user id,
the number in a "Download Submissions" file name), ``SIS User ID``, ``SIS Login ID``
(some instances add ``Integration ID``), and ``Section``; then one column per
assignment, headed ``Name (assignment id)``, and read-only totals. The row under the
header whose ``Student`` cell reads ``Points Possible`` holds each assignment's points.

``canvas_csv`` writes those identity columns and the one assignment column, which is all
an import needs (Canvas leaves the columns a file leaves out unchanged): a learner's
cell gets the total points of their submission, matched on ``ID`` first, then ``SIS User
ID``, then ``SIS Login ID``. Rows with no grade (not handed in, or not readable) keep
what the roster had; rows without an ``ID`` (Points Possible, a posting policy) are
copied as they are.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .grader import Submission

__all__ = ["IDENTITY", "Roster", "canvas_csv", "read_roster"]

IDENTITY = (
    "Student",
    "ID",
    "SIS User ID",
    "SIS Login ID",
    "Integration ID",
    "Section",
)
_MATCH_ON = ("ID", "SIS User ID", "SIS Login ID")
_ASSIGNMENT = re.compile(r"^.+\(\d+\)$")
MAX_ROSTER_BYTES = 64 * 2**20


@dataclass
class Roster:
    """A Canvas gradebook export: the header, then every row in order (the Points
    Possible row, any other row without an ``ID``, and the learners' rows)."""

    header: list[str]
    points_possible: list[str] | None
    rows: list[list[str]]
    unmatched: list[Submission] = field(default_factory=list)

    @property
    def assignments(self) -> list[str]:
        """The assignment columns (``Name (id)``), in order."""
        return [h for h in self.header if h not in IDENTITY and _ASSIGNMENT.match(h)]

    def student(self, learner_id: str | None) -> str | None:
        """The ``Student`` name of the row a learner id matches (as ``canvas_csv``
        matches), or None."""
        at = {h: i for i, h in enumerate(self.header)}
        for name in _MATCH_ON:
            for row in self.rows:
                if name in at and learner_id and row[at[name]].strip() == learner_id:
                    return row[at["Student"]].strip() or None
        return None


def read_roster(path: str | os.PathLike) -> Roster:
    """Read a gradebook exported from Canvas; ValueError when it is not one."""
    size = os.path.getsize(path)
    if size > MAX_ROSTER_BYTES:
        raise ValueError(f"roster: {size} bytes is more than {MAX_ROSTER_BYTES}")
    with open(path, encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    if not table:
        raise ValueError(f"roster {os.fspath(path)!r} is empty")
    header = [h.strip() for h in table[0]]
    missing = [c for c in ("Student", "ID") if c not in header]
    if missing:
        raise ValueError(
            f"roster {os.fspath(path)!r} is not a Canvas gradebook export: no "
            f"{' or '.join(repr(m) for m in missing)} column (its columns: "
            f"{', '.join(header[:8])})"
        )
    student = header.index("Student")
    points, rows = None, []
    for row in table[1:]:
        row = row + [""] * (len(header) - len(row))
        if row[student].strip() == "Points Possible":
            points = row
        if any(cell.strip() for cell in row):
            rows.append(row)
    return Roster(header, points, rows)


def canvas_csv(
    roster: Roster, submissions: list[Submission], column: str | None = None
) -> str:
    """The roster's identity columns and ``column`` (the only assignment column when
    None), filled with the graded points. ``roster.unmatched`` is set to the graded
    submissions no row matched."""
    column = _column(roster, column)
    keep = [h for h in roster.header if h in IDENTITY]
    at = {h: i for i, h in enumerate(roster.header)}
    scores = {}
    for s in submissions:
        if s.error is None and s.learner_id is not None:
            scores.setdefault(s.learner_id, s)
    used: set[str] = set()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*keep, column])
    for row in roster.rows:
        cell = row[at[column]]
        learner = row is not roster.points_possible and row[at["ID"]].strip()
        for name in _MATCH_ON if learner else ():
            key = row[at[name]].strip() if name in at else ""
            if key and key in scores:
                cell = f"{scores[key].score:g}"
                used.add(key)
                break
        writer.writerow([row[at[h]] for h in keep] + [cell])
    roster.unmatched = [s for key, s in scores.items() if key not in used]
    return out.getvalue()


def _column(roster: Roster, column: str | None) -> str:
    choices = roster.assignments
    if column is None:
        if len(choices) != 1:
            listed = "; ".join(choices) or "none"
            raise ValueError(
                f"the roster has {len(choices)} assignment columns, so name the one to "
                f"fill with --canvas-column (columns: {listed})"
            )
        return choices[0]
    if column not in roster.header or column in IDENTITY:
        raise ValueError(
            f"--canvas-column {column!r} is not an assignment column of the roster "
            f"(columns: {'; '.join(choices) or 'none'})"
        )
    return column
