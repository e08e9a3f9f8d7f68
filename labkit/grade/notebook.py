"""Reading a submitted notebook: only its exercise cells, checked for what the grader
needs.

An exercise cell is a code cell whose metadata carries the tag ``exercise`` and the
exercise id (``{"tags": ["exercise"], "exercise": "5.2"}``). Every other cell is ignored
without being parsed as code, so a learner's scratch work cannot affect grading. The
notebook file is read as plain JSON (nbformat 4); anything that is not one raises
``NotebookError`` with a reason a person can act on.

The file is a submission, so reading it is bounded before any of it is parsed: its size,
the number of JSON containers and values it can hold (parsed JSON takes up to some 25
times its text), the length of each exercise cell and of all of them together, the
number of notes. What is kept of a notebook (its exercise cells) is at most
``MAX_EXERCISE_CHARS`` characters.
"""

from __future__ import annotations

import json
import os
import re
import stat
from dataclasses import dataclass

__all__ = ["ExerciseCell", "NotebookError", "read_exercise_cells", "chapter_from_name"]

MAX_NOTEBOOK_BYTES = 32 * 2**20  # outputs and images included
MAX_CONTAINERS = 200_000  # JSON objects and arrays ("{" and "[", strings included)
MAX_VALUES = 1_000_000  # JSON values after the first ("," and ":", strings included)
MAX_CELL_CHARS = 100_000  # one exercise cell; solutions take a few thousand
MAX_EXERCISE_CHARS = 1_000_000  # every exercise cell of one notebook together
MAX_WARNINGS = 20
_ID = re.compile(r"^[0-9A-Za-z._-]{1,16}$")
_CHAPTER = re.compile(r"^(\d{1,3})_")


class NotebookError(ValueError):
    """A file that cannot be graded as a notebook; the message says why."""


@dataclass(frozen=True)
class ExerciseCell:
    """The source of one exercise cell; ``number`` is its 1-based position in the
    notebook."""

    id: str
    source: str
    number: int


def read_exercise_cells(
    path: str | os.PathLike,
) -> tuple[list[ExerciseCell], list[str]]:
    """The exercise cells of the notebook at ``path``, and warnings about cells it
    skipped."""
    notebook = _load(path)
    cells: list[ExerciseCell] = []
    warnings: list[str] = []
    kept = 0
    for number, cell in enumerate(notebook["cells"], start=1):
        if not isinstance(cell, dict):
            continue
        metadata = cell.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        tags = metadata.get("tags")
        tagged = isinstance(tags, list) and "exercise" in tags
        exercise_id = metadata.get("exercise")
        if isinstance(exercise_id, str) and not _ID.match(exercise_id):
            exercise_id = exercise_id[:20] + ("..." if len(exercise_id) > 20 else "")
            warnings.append(
                f"cell {number} has {exercise_id!r} as its exercise id, which is not "
                "one; ignored"
            )
            continue
        if not tagged:
            if exercise_id is not None:
                warnings.append(
                    f"cell {number} has exercise id {exercise_id!r} but not the "
                    "'exercise' tag; it was ignored"
                )
            continue
        if cell.get("cell_type") != "code":
            warnings.append(
                f"cell {number} is tagged 'exercise' but is not a code cell; ignored"
            )
            continue
        if not isinstance(exercise_id, str) or not exercise_id:
            warnings.append(
                f"cell {number} is tagged 'exercise' but has no exercise id in its "
                'metadata (e.g. "exercise": "1.2"); ignored'
            )
            continue
        source = cell.get("source", "")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if not isinstance(source, str):
            warnings.append(
                f"cell {number} (exercise {exercise_id}) has no readable source; "
                "ignored"
            )
            continue
        if len(source) > MAX_CELL_CHARS:
            warnings.append(
                f"cell {number} (exercise {exercise_id}) is longer than "
                f"{MAX_CELL_CHARS} characters; ignored"
            )
            continue
        if kept + len(source) > MAX_EXERCISE_CHARS:
            warnings.append(
                f"cell {number} (exercise {exercise_id}) and the exercise cells after "
                "it "
                f"exceed {MAX_EXERCISE_CHARS} characters in all; ignored"
            )
            break
        kept += len(source)
        cells.append(ExerciseCell(exercise_id, source, number))
    if len(warnings) > MAX_WARNINGS:
        more = len(warnings) - MAX_WARNINGS + 1
        warnings[MAX_WARNINGS - 1 :] = [f"and {more} more notes like these"]
    return cells, warnings


def chapter_from_name(path: str | os.PathLike) -> int | None:
    """The chapter number a file name starts with (``05_optimizers.ipynb`` -> 5), else
    None."""
    match = _CHAPTER.match(os.path.basename(os.fspath(path)))
    return int(match.group(1)) if match else None


def _load(path: str | os.PathLike) -> dict:
    data = _read_bounded(path)
    for limit, characters, what in (
        (MAX_CONTAINERS, b"[{", "objects and arrays"),
        (MAX_VALUES, b",:", "values"),
    ):
        if sum(data.count(c) for c in characters) > limit:
            raise NotebookError(
                f"holds more than {limit} JSON {what}; clear the outputs (Kernel, "
                "Restart & Clear Output), save and submit again"
            )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError("not UTF-8 text, so not a notebook") from None
    del data
    if not text.strip():
        raise NotebookError("empty file")
    try:
        notebook = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise NotebookError("not valid JSON (nested too deeply)") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise NotebookError("not a Jupyter notebook (no list of cells)")
    version = notebook.get("nbformat")
    if version != 4:
        raise NotebookError(
            f"nbformat {_short(version)} is not supported; open and save the notebook "
            "with a current Jupyter to convert it to nbformat 4"
        )
    return notebook


def _read_bounded(path: str | os.PathLike) -> bytes:
    """The file's bytes; refused by its size (of the open file) before any is read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise NotebookError("file not found") from None
    except PermissionError:
        raise NotebookError("permission denied") from None
    except IsADirectoryError:
        raise NotebookError("is a directory, not a notebook") from None
    except OSError as exc:
        raise NotebookError(f"could not be read ({exc.strerror or exc})") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise NotebookError("is a directory, not a notebook")
        if not stat.S_ISREG(info.st_mode):
            raise NotebookError("not a regular file")
        if info.st_size == 0:
            raise NotebookError("empty file")
        if info.st_size > MAX_NOTEBOOK_BYTES:
            raise NotebookError(
                f"file of {info.st_size} bytes is larger than the limit of "
                f"{MAX_NOTEBOOK_BYTES} bytes"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(info.st_size + 1)  # more would mean it grew
    except OSError as exc:
        raise NotebookError(f"could not be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(data) > info.st_size:
        raise NotebookError("the file grew while it was read; grade it again")
    return data


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
