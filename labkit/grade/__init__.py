"""The grader: grade one notebook or a whole class, fast, without trusting the submitted
code.

From a terminal (or as the console script ``labkit-grade``)::

    python -m labkit.grade chapters/05_optimizers.ipynb
    python -m labkit.grade submissions/*.ipynb --json grades.json --csv grades.csv

From a notebook cell, after saving the notebook (the grader reads the file on disk)::

    from labkit.grade import grade
    grade()  # the running notebook, when Jupyter says which one it is
    grade("05_optimizers.ipynb")  # or name it

In a notebook, ``grade()`` first compares the exercise cells of the saved file with what
the kernel last ran (IPython's input history): when they differ, the edits are not saved
yet, and it says to save rather than grade the old file.

Both print the same report and go through the same machinery: only the cells tagged
``exercise`` are read; each notebook runs in a sandbox of its own (bubblewrap and kernel
namespaces: ``sandbox``, ``worker``, ``confine``) that receives the inputs of the test
cases and returns the outputs as plain data (``runner``, ``channel``); this process
judges the outputs with ``labkit.exercises.scoring``. The learner's ``check`` sends the
exercise cell through the same sandbox (``grader.grade_source``), so the verdicts agree.
See ``cache`` for the verdict cache and ``report`` for the outputs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from typing import TYPE_CHECKING, Any

from ..exercises import get
from .notebook import read_exercise_cells

if TYPE_CHECKING:  # pragma: no cover
    from .grader import Submission

__all__ = ["grade", "grade_notebooks", "Limits", "Submission", "parse_size"]
_LAZY = ("grade_notebooks", "Limits", "Submission", "parse_size")


def __getattr__(name: str) -> Any:
    """The grader's names, imported on first use: the runner (``labkit.grade.runner``),
    which ``labkit.exercises.scoring`` imports, must not pull in the whole grader."""
    if name in _LAZY:
        from . import grader

        return getattr(grader, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def grade(
    notebook: str | os.PathLike | None = None,
    *,
    timeout: float = 10.0,
    memory: int | str = "2G",
    jobs: int | None = None,
    cache: object = True,
    isolation: str | None = None,
) -> Submission | None:
    """Grade one notebook (by default the one running this kernel), print the report,
    return it.

    ``timeout`` (seconds) and ``memory`` (bytes, or a size like ``"2G"``) limit each
    exercise; ``cache`` is True (the default cache directory), False, or a directory.
    When the file is the running notebook and its exercise cells differ from what the
    kernel last ran, it prints which exercises are unsaved, asks to save, and returns
    None. ``isolation`` is "bwrap" or "none"; by default bubblewrap where it works, else
    none (this grades your own code), saying so.
    """
    from .grader import Limits, grade_notebooks, parse_size
    from .report import format_submission
    from .sandbox import fallback_isolation

    path = _running_notebook() if notebook is None else os.fspath(notebook)
    stale = _unsaved_exercises(path, explicit=notebook is not None)
    if stale:
        print(
            f"{path} on disk differs from what this kernel last ran for exercise"
            f"{'s' if len(stale) > 1 else ''} {', '.join(stale)}: the grader reads the "
            "saved file. Save the notebook (File > Save, or Ctrl+S), then run grade() "
            "again."
        )
        return None
    limits = Limits(timeout=timeout, memory=parse_size(memory))
    [submission] = grade_notebooks(
        [path],
        jobs=jobs,
        limits=limits,
        cache=cache,
        isolation=isolation or fallback_isolation(),
    )
    print(format_submission(submission))
    return submission


def _shell():
    """The running IPython shell, or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        return None
    return get_ipython()


def _unsaved_exercises(path: str, explicit: bool) -> list[str]:
    """Ids of the exercises whose cell in the file at ``path`` differs from the last
    cell this kernel ran that defines the exercise's function (empty outside IPython, or
    when ``path`` is named and is known not to be the running notebook)."""
    shell = _shell()
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if not history:
        return []
    if explicit:
        try:
            if not os.path.samefile(path, _running_notebook()):
                return []
        except (OSError, ValueError):
            pass  # the running notebook is unknown: compare anyway
    try:
        cells, _ = read_exercise_cells(path)
    except (OSError, ValueError):
        return []  # the grader reports an unreadable file itself
    stale = []
    for cell in cells:
        try:
            name = get(cell.id).function
        except ValueError:
            continue
        defines = re.compile(rf"^def\s+{name}\s*\(", re.MULTILINE)
        ran = next(
            (s for s in reversed(history) if isinstance(s, str) and defines.search(s)),
            None,
        )
        if ran is not None and _lines(ran) != _lines(cell.source):
            stale.append(cell.id)
    return stale


def _lines(source: str) -> list[str]:
    """``source`` without trailing blanks, as a saved cell and a ran cell compare."""
    return [line.rstrip() for line in source.strip().splitlines()]


def _running_notebook() -> str:
    """The notebook this kernel runs, from Jupyter's JPY_SESSION_NAME or VS Code's
    variable."""
    candidates = []
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(
        ".ipynb"
    ):  # absolute, or relative to the server's (an ancestor) folder
        here = Path.cwd()
        candidates += [Path(session)] + [
            folder / session for folder in (here, *here.parents)
        ]
        candidates.append(here / Path(session).name)
    try:
        # get_ipython is defined in IPython only
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        candidates.append(Path(shell.user_ns.get("__vsc_ipynb_file__", "")))
    except NameError:
        pass
    for candidate in candidates:
        if candidate.suffix == ".ipynb" and candidate.is_file():
            return str(candidate)
    raise ValueError(
        "grade() could not tell which notebook is running; pass its file name, "
        "e.g. grade('05_optimizers.ipynb')"
    )
