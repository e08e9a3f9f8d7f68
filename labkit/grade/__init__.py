"""The grader: grade one notebook or a whole class, fast, without trusting the submitted code.

From a terminal (or as the console script ``labkit-grade``)::

    python -m labkit.grade chapters/05_optimizers.ipynb
    python -m labkit.grade submissions/*.ipynb --json grades.json --csv grades.csv

From a notebook cell, after saving the notebook (the grader reads the file on disk)::

    from labkit.grade import grade
    grade()                          # the running notebook, when Jupyter says which one it is
    grade("05_optimizers.ipynb")     # or name it

Both print the same report and go through the same machinery: only the cells tagged
``exercise`` are read; each runs in a separate, sandboxed worker process that receives the
inputs of the test cases and returns the outputs as plain data; this process judges the outputs
with ``labkit.exercises.scoring``, exactly as the learner's in-notebook ``check`` does, so the
verdicts agree. See ``worker`` for the sandbox, ``channel`` for the data-only format, ``cache``
for the verdict cache and ``report`` for the outputs.
"""

from __future__ import annotations

import os
from pathlib import Path

from .grader import Limits, Submission, grade_notebooks, parse_size
from .report import format_submission

__all__ = ["grade", "grade_notebooks", "Limits", "Submission", "parse_size"]


def grade(
    notebook: str | os.PathLike | None = None,
    *,
    timeout: float = 10.0,
    memory: int | str = "2G",
    jobs: int | None = None,
    cache: object = True,
) -> Submission:
    """Grade one notebook (by default the one running this kernel), print the report, return it.

    ``timeout`` (seconds) and ``memory`` (bytes, or a size like ``"2G"``) limit each exercise;
    ``cache`` is True (the default cache directory), False, or a directory.
    """
    path = _running_notebook() if notebook is None else os.fspath(notebook)
    limits = Limits(timeout=timeout, memory=parse_size(memory))
    [submission] = grade_notebooks([path], jobs=jobs, limits=limits, cache=cache)
    print(format_submission(submission))
    return submission


def _running_notebook() -> str:
    """The notebook this kernel runs, from Jupyter's JPY_SESSION_NAME or VS Code's variable."""
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
        shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821 - defined in IPython
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
