"""The repository's address, in one place, for every page that names it.

The launch, repository and issue buttons and the set-up page's install line all point at
the course's repository. Its address is read, in this order, from

1. the environment variable ``BOOK_REPOSITORY`` (``make book
   BOOK_REPOSITORY=https://...``);
2. ``git remote get-url origin`` of the checkout being built (a fork or a Classroom copy
   names itself);
3. ``repository.url`` in ``book/_config.yml``, the documented default.

The theme's buttons read ``html_theme_options["repository_url"]``; pages write ``{{
repository_url }}`` (also inside code blocks), replaced here before they are parsed.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from sphinx.util import logging

logger = logging.getLogger(__name__)

PLACEHOLDER = "{{ repository_url }}"
# git@github.com:owner/name.git, ssh://git@github.com/owner/name,
# https://github.com/owner/name
_SCP = re.compile(r"^[\w.-]+@([\w.-]+):(.+)$")


def web_address(remote: str) -> str:
    """The https address of a git remote URL, without credentials or ``.git``."""
    remote = remote.strip()
    scp = _SCP.match(remote)
    if scp:
        remote = f"https://{scp.group(1)}/{scp.group(2)}"
    remote = re.sub(r"^(ssh|git|http)://", "https://", remote)
    remote = re.sub(r"^https://[^/@]+@", "https://", remote)  # drop user:token@
    return re.sub(r"(\.git)?/*$", "", remote)


def origin(folder: Path) -> str | None:
    """The web address of the checkout's ``origin`` remote at ``folder``, if any."""
    try:
        found = subprocess.run(
            ["git", "remote", "get-url", "origin"],
            cwd=folder,
            capture_output=True,
            check=False,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    address = web_address(found.stdout) if found.returncode == 0 else ""
    return address if address.startswith("https://") else None


def repository_url(folder: Path, default: str) -> str:
    """``BOOK_REPOSITORY``, else the checkout's ``origin``, else ``default``."""
    configured = os.environ.get("BOOK_REPOSITORY", "").strip()
    return web_address(configured) if configured else origin(folder) or default


def set_repository(app, config) -> None:
    """Point the theme's buttons at the repository and remember it for the pages."""
    options = config.html_theme_options
    url = repository_url(Path(app.srcdir), options.get("repository_url", ""))
    if not url:
        return
    options["repository_url"] = url
    app.env_repository_url = url
    logger.info("repository: %s", url)


def substitute(app, docname, source) -> None:
    """Replace ``{{ repository_url }}`` in a page's source before it is parsed."""
    url = getattr(app, "env_repository_url", None)
    if url and PLACEHOLDER in source[0]:
        source[0] = source[0].replace(PLACEHOLDER, url)


def setup(app):
    app.connect("config-inited", set_repository)
    app.connect("source-read", substitute)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
