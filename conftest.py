"""nbval's runs feed the book: each notebook is executed once per ``make test``.

nbval is the notebook test (``--nbval-lax``: every code cell of a chapter or solution
runs in a fresh kernel, and none may raise). When every code cell of a notebook has run
and passed, the outputs nbval collected are put into that notebook's cells, as Jupyter
would show them, and the executed notebook is stored in the execution cache the book
build reads (``book/_build/.jupyter_cache``, myst-nb's ``execute_notebooks: cache``).
The build then finds every notebook there and executes none. A notebook with a failed or
skipped cell is not stored, so the build runs it itself and reports the same error.

The cache is emptied first when labkit or the pins changed since it was filled
(``book/_ext/execution_cache.py``), as the book build would.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parent
CACHE = REPOSITORY / "book" / "_build" / ".jupyter_cache"


def _nbval_running(config: pytest.Config) -> bool:
    return bool(
        config.getoption("nbval", False) or config.getoption("nbval_lax", False)
    )


def pytest_configure(config: pytest.Config) -> None:
    """Before any notebook runs (in the main process only), empty a stale cache."""
    if _nbval_running(config) and not hasattr(config, "workerinput"):
        sys.path.insert(0, str(REPOSITORY / "book" / "_ext"))
        from execution_cache import refresh

        refresh(CACHE, REPOSITORY)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """Under ``pytest -n N --dist loadgroup``: the cells of one notebook (they share a
    kernel) go, in order, to one worker, and so do the checks of one page visit of the
    book's browser tests (test ids ending ``[<page>@<width>px]``, see
    tests/test_book.py); every other test goes alone. The largest groups go first.

    (xdist's own loadgroup reads ``xdist_group`` marks through an attribute pytest 9 no
    longer has, so this replaces it.)"""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    config.option.loadscopereorder = True
    return WorkUnits(config, log)


def work_unit(nodeid: str) -> str:
    """The group a test runs in: its notebook, its page visit, or itself."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return path
    visit = re.search(r"\[([^\[\]]+@\d+px)\]$", nodeid)
    return f"visit {visit.group(1)}" if visit else nodeid


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each nbval cell's outputs; store the notebook once all of them passed."""
    report = (yield).get_result()
    notebook = item.parent
    if not hasattr(item, "test_outputs") or not hasattr(notebook, "nb"):
        return  # not an nbval cell
    if report.failed or report.skipped:
        notebook.book_cache_spoiled = True
    if call.when != "call" or not report.passed or item.test_outputs is None:
        return
    item.cell.outputs = _as_jupyter_shows(item.cell.source, item.test_outputs)
    item.cell.execution_count = item.cell_num + 1
    ran = getattr(notebook, "book_cache_ran", 0) + 1
    notebook.book_cache_ran = ran
    code_cells = sum(cell.cell_type == "code" for cell in notebook.nb.cells)
    if ran == code_cells and not getattr(notebook, "book_cache_spoiled", False):
        _store(notebook.nb, Path(str(notebook.fspath)))


def _as_jupyter_shows(source: str, outputs: list) -> list:
    """The outputs Jupyter keeps: none of the cell's value when its code ends with ';'.

    nbval runs cells without storing them in IPython's history, and IPython reads the
    trailing ';' from that history, so under nbval a cell's value is always displayed.
    """
    from IPython.core.displayhook import DisplayHook

    if DisplayHook.semicolon_at_end_of_expression(source):
        return [out for out in outputs if out.get("output_type") != "execute_result"]
    return outputs


def _store(nb, path: Path) -> None:
    """Put the executed notebook into the book's execution cache (retrying a busy
    database)."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from sqlalchemy.exc import OperationalError

    for attempt in range(5):
        try:
            get_cache(CACHE).cache_notebook_bundle(
                CacheBundleIn(nb, str(path)), check_validity=False, overwrite=True
            )
            return
        except OperationalError:  # another worker is writing the same SQLite file
            time.sleep(0.5 * (attempt + 1))
    raise RuntimeError(f"could not store {path} in the execution cache {CACHE}")
