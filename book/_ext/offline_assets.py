"""Make the built book readable with no network: MathJax from a PyPI package, no CDN
assets.

Sphinx loads MathJax 3 from a CDN by default, and sphinx-thebe (which Jupyter Book 1
always loads) adds scripts that fetch thebe from one when a reader presses a button.
This extension

- copies the parts of MathJax 3 the book uses (the loader, the core, TeX input with its
  extensions loaded on demand, CommonHTML output with its web fonts, and the assistive
  MathML that screen readers read) from the ``django-static-mathjax`` package into
  ``_static/mathjax`` and configures the loader to load just those: no menu, no speech
  rule engine and its speech maps;
- removes thebe's scripts, stylesheet and per-page configuration (the book has no thebe
  button, and thebe would fetch its code from a CDN);
- warns (which fails a ``-W`` build) if any page still loads a script or stylesheet from
  a URL.

``slim_site`` (its neighbour) then removes what the theme ships but the book does not
use.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.fileutil import copy_asset

logger = logging.getLogger(__name__)

MATHJAX_ENTRY = "startup.js"
# The components the loader loads on every page with math (MathJax resolves their
# dependencies: core first, the CommonHTML font data with the output).
MATHJAX_LOAD = ["input/tex", "output/chtml", "a11y/assistive-mml"]
# Files copied, relative to the MathJax es5 folder: the components above, the TeX
# packages that autoload fetches when a page uses one (\boldsymbol, \cancel ...), and
# the web fonts.
MATHJAX_FILES = (
    "startup.js",
    "core.js",
    "input/tex.js",
    "input/tex/extensions",
    "output/chtml.js",
    "output/chtml/fonts",
    "a11y/assistive-mml.js",
)
THEBE_ASSETS = ("sphinx-thebe.js", "sphinx-thebe.css")


def mathjax_source() -> Path:
    """The MathJax 3 ``es5`` folder that the ``django-static-mathjax`` package ships."""
    spec = importlib.util.find_spec("mathjax")
    folders = [] if spec is None else list(spec.submodule_search_locations or [])
    for folder in folders:
        es5 = Path(folder) / "static" / "mathjax" / "es5"
        if (es5 / MATHJAX_ENTRY).is_file():
            return es5
    raise ExtensionError(
        "offline_assets: MathJax 3 not found; install the pinned "
        "django-static-mathjax package (pip install -e '.[dev]')"
    )


def use_local_mathjax(app, config) -> None:
    """Point ``mathjax_path`` (relative to ``_static``) at the copy ``copy_mathjax``
    makes, and tell MathJax's loader which components to load from it."""
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"
    settings = dict(config.mathjax3_config or {})
    settings["loader"] = {**settings.get("loader", {}), "load": MATHJAX_LOAD}
    config.mathjax3_config = settings


def math_on_every_page(app) -> None:
    """The single-page build (the PDF's source) holds every chapter in one page whose
    own source has no formula: load MathJax there whatever Sphinx counts."""
    if app.builder.name == "singlehtml":
        app.set_html_assets_policy("always")


def copy_mathjax(app, exception) -> None:
    """Copy the MathJax files the pages load into ``<outdir>/_static/mathjax``."""
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source()
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_FILES:
        destination = target / part
        if (source / part).is_file():
            destination = destination.parent  # copy_asset copies a file into a folder
        copy_asset(str(source / part), str(destination))


def _is_thebe(asset) -> bool:
    name = str(asset.filename or "")
    body = asset.attributes.get("body", "") if hasattr(asset, "attributes") else ""
    return name.endswith(THEBE_ASSETS) or "thebe_selector" in body


def drop_thebe_config(app, doctree, docname) -> None:
    """Remove the ``text/x-thebe-config`` blocks sphinx-thebe writes into every page."""
    for node in list(doctree.findall(nodes.raw)):
        text = node.astext().strip()
        if "text/x-thebe-config" in text or text.startswith("<script>kernelName ="):
            node.parent.remove(node)


def drop_remote_assets(app, pagename, templatename, context, doctree) -> None:
    """Remove thebe's assets; warn of any script or stylesheet loaded from a URL."""
    for key in ("script_files", "css_files"):
        assets = context.get(key)
        if assets is None:
            continue
        assets[:] = [asset for asset in assets if not _is_thebe(asset)]
        for asset in assets:
            if "://" in str(asset.filename or ""):
                logger.warning(
                    "offline_assets: page %s loads %s from the network",
                    pagename,
                    asset.filename,
                    location=pagename,
                )


def setup(app):
    app.connect("config-inited", use_local_mathjax, priority=900)
    app.connect("builder-inited", math_on_every_page)
    app.connect("doctree-resolved", drop_thebe_config, priority=900)
    app.connect("html-page-context", drop_remote_assets, priority=900)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
