"""Execute the book's notebooks once, in parallel, into the cache the book build reads.

``make book`` runs this first. Every notebook of the table of contents whose code (or
labkit, or a pin) changed since its last execution runs, one per CPU at a time, through
jupyter-cache into ``book/_build/.jupyter_cache``, the cache ``jupyter-book build``
(``execute_notebooks: cache``) reads, so the build itself executes none. Under
``make test`` nbval has already filled that cache (``conftest.py``) and nothing is left
to run here: each notebook runs once per ``make test``.

Usage: ``python book/execute.py [--toc book/_toc.yml]``; exit status 1 if any notebook
raised, with the tracebacks printed.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

import yaml

REPOSITORY = Path(__file__).resolve().parent.parent
CACHE = REPOSITORY / "book" / "_build" / ".jupyter_cache"
TIMEOUT = 300  # seconds per cell, as book/_config.yml's execute.timeout


def notebooks(toc: Path) -> list[Path]:
    """The notebooks a table of contents names, in its order."""
    found: list[Path] = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root") and isinstance(value, str):
                    path = REPOSITORY / f"{value}.ipynb"
                    if path.is_file():
                        found.append(path)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load(toc.read_text()))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toc", type=Path, default=REPOSITORY / "book" / "_toc.yml")
    args = parser.parse_args(argv)
    # One kernel per CPU: each kernel's numpy and torch use one thread, not all of them.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    sys.path.insert(0, str(REPOSITORY / "book" / "_ext"))
    from execution_cache import refresh
    from jupyter_cache import get_cache
    from jupyter_cache.executors import load_executor

    refresh(CACHE, REPOSITORY)
    cache = get_cache(CACHE)
    paths = notebooks(args.toc)
    records = [cache.add_nb_to_project(str(path)) for path in paths]
    stale = [r for r in records if cache.get_cached_project_nb(r.pk) is None]
    print(f"execute: {len(paths) - len(stale)} notebooks cached, {len(stale)} to run")
    if not stale:
        return 0
    logger = logging.getLogger("execute")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    executor = load_executor("local-parallel", cache, logger=logger)
    result = executor.run_and_cache(
        filter_pks=[r.pk for r in stale], timeout=TIMEOUT, allow_errors=False
    )
    failed = result.excepted + result.errored
    for uri in failed:
        traceback = cache.get_project_record(uri).traceback or "(no traceback)"
        print(f"execute: {uri} failed\n{traceback}", file=sys.stderr)
    print(f"execute: {len(result.succeeded)} executed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
