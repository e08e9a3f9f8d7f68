"""Reading a submitted notebook: only its exercise cells, checked for what the grader needs.

An exercise cell is a code cell whose metadata carries the tag ``exercise`` and the exercise id
(``{"tags": ["exercise"], "exercise": "5.2"}``). Every other cell is ignored without being parsed
as code, so a learner's scratch work cannot affect grading. The notebook file is read as plain
JSON (nbformat 4); anything that is not one raises ``NotebookError`` with a reason a person can
act on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

__all__ = ["ExerciseCell", "NotebookError", "read_exercise_cells", "chapter_from_name"]

MAX_NOTEBOOK_BYTES = 256 * 2**20  # notebooks with outputs and images can be large
MAX_CELL_CHARS = 1_000_000
_CHAPTER = re.compile(r"^(\d{1,3})_")


class NotebookError(ValueError):
    """A file that cannot be graded as a notebook; the message says why."""


@dataclass(frozen=True)
class ExerciseCell:
    """The source of one exercise cell; ``number`` is its 1-based position in the notebook."""

    id: str
    source: str
    number: int


def read_exercise_cells(
    path: str | os.PathLike,
) -> tuple[list[ExerciseCell], list[str]]:
    """The exercise cells of the notebook at ``path``, and warnings about cells it skipped."""
    notebook = _load(path)
    cells, warnings = [], []
    for number, cell in enumerate(notebook["cells"], start=1):
        if not isinstance(cell, dict):
            continue
        metadata = cell.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        tags = metadata.get("tags")
        tagged = isinstance(tags, list) and "exercise" in tags
        exercise_id = metadata.get("exercise")
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
        cells.append(ExerciseCell(exercise_id, source, number))
    return cells, warnings


def chapter_from_name(path: str | os.PathLike) -> int | None:
    """The chapter number a file name starts with (``05_optimizers.ipynb`` -> 5), else None."""
    match = _CHAPTER.match(os.path.basename(os.fspath(path)))
    return int(match.group(1)) if match else None


def _load(path: str | os.PathLike) -> dict:
    try:
        size = os.stat(path).st_size
        if os.path.isdir(path):
            raise NotebookError("is a directory, not a notebook")
        if size == 0:
            raise NotebookError("empty file")
        if size > MAX_NOTEBOOK_BYTES:
            raise NotebookError(
                f"file of {size} bytes is larger than the limit of "
                f"{MAX_NOTEBOOK_BYTES} bytes"
            )
        with open(path, "rb") as f:
            data = f.read(MAX_NOTEBOOK_BYTES + 1)
    except FileNotFoundError:
        raise NotebookError("file not found") from None
    except PermissionError:
        raise NotebookError("permission denied") from None
    except IsADirectoryError:
        raise NotebookError("is a directory, not a notebook") from None
    except OSError as exc:
        raise NotebookError(f"could not be read ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise NotebookError("not UTF-8 text, so not a notebook") from None
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
            f"nbformat {version!r} is not supported; open and save the notebook "
            "with a current Jupyter to convert it to nbformat 4"
        )
    return notebook
