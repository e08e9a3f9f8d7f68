"""Re-run the notebooks when labkit changes, not only when their own code does.

myst-nb's execution cache (jupyter-cache) keys a notebook by its code cells, so an
unchanged notebook is not executed again. But every chapter imports ``labkit``: after an
edit to the package, the cached outputs may no longer be what the notebook prints. This
extension keeps a fingerprint of ``labkit`` (its files) and of the pinned dependencies
(``pyproject.toml``) next to the cache, and empties the cache when the fingerprint
changes, so the next build executes every notebook against the code it documents.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

STAMP = "labkit.sha256"


def fingerprint(repository: Path) -> str:
    """SHA-256 over labkit's files (path and bytes, sorted) and pyproject.toml."""
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in (repository / "labkit").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    for path in [*files, repository / "pyproject.toml"]:
        digest.update(path.relative_to(repository).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()


def refresh(cache: Path, repository: Path) -> None:
    """Empty ``cache`` if labkit or the pins changed since it was filled; stamp it."""
    current = fingerprint(repository)
    stamp = cache / STAMP
    previous = stamp.read_text().strip() if stamp.is_file() else None
    if previous == current:
        return
    if cache.exists():
        logger.info(
            "execution_cache: labkit changed since the notebooks were executed; "
            "emptying %s",
            cache,
        )
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    stamp.write_text(current + "\n")


def invalidate_stale_cache(app, config) -> None:
    """Sphinx hook: ``refresh`` the execution cache before any notebook is read."""
    if config.nb_execution_mode != "cache" or not config.nb_execution_cache_path:
        return
    repository = Path(app.srcdir)
    if (repository / "labkit").is_dir():
        # relative paths are from the build's cwd
        refresh(Path(config.nb_execution_cache_path), repository)


def setup(app):
    app.connect("config-inited", invalidate_stale_cache)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
