"""Every chapter and solution notebook runs without an error.

This is the check nbval makes (``--nbval-lax`` on notebooks stored without outputs:
each cell executes and none raises), read from the one execution ``make test`` makes
for the book instead of running every notebook a second time: ``book/execute.py`` runs
the notebooks into the execution cache the book build reads, and here each notebook
must have an entry in that cache for its current code, made against the current
labkit, with no error among its outputs. Without a cache (``make unit``) these tests
are skipped, saying so, unless ``LABKIT_REQUIRE_EXECUTED=1`` (``make test``) asks for
them; ``make notebooks`` runs nbval itself.
"""

import os
import sys
from pathlib import Path

import nbformat
import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
CACHE = REPOSITORY / "book" / "_build" / ".jupyter_cache"
NOTEBOOKS = sorted(
    p.relative_to(REPOSITORY)
    for folder in ("chapters", "solutions")
    for p in (REPOSITORY / folder).glob("*.ipynb")
)


def not_checked(reason: str):
    """Fail under ``make test`` (LABKIT_REQUIRE_EXECUTED=1), else skip saying why."""
    if os.environ.get("LABKIT_REQUIRE_EXECUTED") == "1":
        pytest.fail(f"{reason}: run python book/execute.py")
    pytest.skip(f"{reason}; make test runs book/execute.py first")


@pytest.fixture(scope="module")
def cache():
    if not (CACHE / "global.db").is_file():
        not_checked(f"no execution cache at {CACHE}")
    sys.path.insert(0, str(REPOSITORY / "book" / "_ext"))
    from execution_cache import STAMP, fingerprint
    from jupyter_cache import get_cache

    stamp = (CACHE / STAMP).read_text().strip() if (CACHE / STAMP).is_file() else ""
    if stamp != fingerprint(REPOSITORY):
        not_checked("the cached executions predate the current labkit")
    return get_cache(CACHE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=str)
def test_notebook_ran_without_error(cache, path):
    notebook = nbformat.read(REPOSITORY / path, as_version=4)
    try:
        record = cache.match_cache_notebook(notebook)
    except KeyError:
        traceback = ""
        try:
            traceback = cache.get_project_record(str(REPOSITORY / path)).traceback
        except KeyError:
            pass
        pytest.fail(
            f"{path} has no successful execution of its current code in the cache "
            f"(python book/execute.py runs it){traceback and ':' + chr(10) + traceback}"
        )
    executed = cache.get_cache_bundle(record.pk).nb
    errors = [
        f"cell {i}: {output.get('ename')}: {output.get('evalue')}"
        for i, cell in enumerate(executed.cells)
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, f"{path}: " + "; ".join(errors)
    code_cells = [c for c in executed.cells if c.cell_type == "code" and c.source]
    assert all(c.get("execution_count") for c in code_cells), (
        f"{path}: a cell never ran"
    )
