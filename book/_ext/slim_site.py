"""Ship only what the pages use: the built site, lightened after the build.

pydata-sphinx-theme ships Font Awesome twice, as a 1.5 MB script that swaps icons for
SVG and as web fonts (with TrueType fallbacks) behind its stylesheet, plus source maps
of its scripts and styles, and it loads the search index (and Sphinx's search code) on
every page so that search-as-you-type could work, which this book does not turn on.
After an HTML build this extension

- removes every source map and the Font Awesome script (the stylesheet's web fonts draw
  the same icons), and drops that script's tag from every page;
- cuts the three icon fonts down to the glyphs of the icons the pages and scripts name,
  as small WOFF files (zlib: no brotli needed), and drops the stylesheet rules of every
  other icon and the WOFF2 and TrueType originals;
- drops, from every stylesheet of the theme and its extensions, the rules whose
  selectors name a class that no page and no script of the site contains (Bootstrap's
  utilities, components the book does not use); a class a script builds from pieces
  keeps its rules through ``DYNAMIC_PREFIXES``;
- loads ``searchindex.js``, ``searchtools.js`` and ``language_data.js`` only on the
  search page;
- gives bibliography entries the ARIA role their list requires (``listitem``) and the
  sidebar's chevron-only expand buttons a name;
- unwraps the highlighted-code spans whose class draws text in the code block's own
  colour in every theme (names, punctuation, white space): the same look in a third
  fewer bytes.

The browser tests hold the result to a page-weight budget (tests/test_book.py).
"""

from __future__ import annotations

import re
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont
from sphinx.util import logging

logger = logging.getLogger(__name__)

FONT_DIR = "_static/vendor/fontawesome/webfonts"
FONTS = ("fa-solid-900", "fa-regular-400", "fa-brands-400")
THEME_CSS = "_static/styles/pydata-sphinx-theme.css"
ICON_SCRIPT = re.compile(
    r'\s*<script[^>]*src="[^"]*scripts/fontawesome\.js[^"]*"[^>]*>\s*</script>'
)
SEARCH_SCRIPTS = re.compile(
    r'\s*<script src="[^"]*(?:_static/searchtools\.js|_static/language_data\.js|'
    r'searchindex\.js)"></script>'
)
# One icon rule of the theme's stylesheet:
# `.fa-bars:before,.fa-navicon:before{content:"\f0c9"}`
ICON_RULE = re.compile(r'((?:\.fa-[\w-]+:(?::)?before,?)+)\{content:"\\([0-9a-f]+)"\}')
ICON_CLASS = re.compile(r"\bfa-([a-z0-9-]+)")
# Classes that scripts compose at run time ("bs-tooltip-" + placement, MathJax's mjx-*).
DYNAMIC_PREFIXES = ("bs-", "mjx", "MathJax", "popover", "tooltip", "pst-", "sd-tab")
SELECTOR_CLASS = re.compile(r"\.(-?[_a-zA-Z][\w-]*)")
NOT_PSEUDO = re.compile(r":not\([^()]*\)|\[[^\]]*\]|\"[^\"]*\"")
COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
GROUPING_RULES = ("@media", "@supports", "@layer", "@container")
TOGGLE = '<summary><span class="toctree-toggle" role="presentation">'
NAMED_TOGGLE = '<summary aria-label="Pages in this section">'
PRE_BLOCK = re.compile(r"<pre>.*?</pre>", re.DOTALL)
PYGMENTS_RULE = re.compile(
    r'html\[data-theme="(\w+)"\] \.highlight (?:\.([\w-]+) )?\{([^}]*)\}'
)
TRUETYPE = re.compile(r',url\([^)]*\.ttf\) format\("truetype"\)')
WOFF2 = re.compile(r'(url\([^)]*/fa-[\w-]+)\.woff2\) format\("woff2"\)')


def _pages(outdir: Path) -> list[Path]:
    return [
        p
        for p in outdir.rglob("*.html")
        if "_sources" not in p.relative_to(outdir).parts
    ]


def _used_icons(outdir: Path, pages: list[Path]) -> set[str]:
    """Names of every ``fa-*`` class that a page or one of the site's scripts names."""
    used = set()
    for path in [*pages, *outdir.glob("_static/**/*.js")]:
        used |= set(
            ICON_CLASS.findall(path.read_text(encoding="utf-8", errors="ignore"))
        )
    return used


def _blocks(css: str) -> list[tuple[str, str | None]]:
    """The top-level blocks of a stylesheet: (prelude, body), or (tail, None)."""
    blocks, i = [], 0
    while i < len(css):
        start = css.find("{", i)
        if start < 0:
            blocks.append((css[i:], None))
            break
        depth, k = 1, start + 1
        while depth:
            char = css[k]
            if char in "\"'":  # a string may hold braces
                k = css.index(char, k + 1)
            depth += {"{": 1, "}": -1}.get(char, 0)
            k += 1
        blocks.append((css[i:start], css[start + 1 : k - 1]))
        i = k
    return blocks


def _selectors(prelude: str) -> list[str]:
    """The comma-separated selectors of a rule (commas inside ``:is(a, b)`` stay)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(prelude):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(prelude[start:i])
            start = i + 1
    return [*parts, prelude[start:]]


def purge_stylesheet(css: str, tokens: set[str]) -> str:
    """Keep the selectors whose classes all occur in ``tokens`` (the words of the site's
    pages and scripts) or start with a ``DYNAMIC_PREFIXES`` entry; drop rules left with
    none."""

    def known(selector: str) -> bool:
        classes = SELECTOR_CLASS.findall(NOT_PSEUDO.sub("", selector))
        return all(c in tokens or c.startswith(DYNAMIC_PREFIXES) for c in classes)

    kept = []
    for prelude, body in _blocks(css):
        head = prelude.strip()
        if body is None or (
            head.startswith("@") and not head.startswith(GROUPING_RULES)
        ):
            kept.append(prelude if body is None else f"{prelude}{{{body}}}")
        elif head.startswith(GROUPING_RULES):
            inner = purge_stylesheet(body, tokens)
            kept.append(f"{prelude}{{{inner}}}" if inner.strip() else "")
        else:
            selectors = [s for s in _selectors(prelude) if known(s)]
            kept.append(",".join(selectors) + f"{{{body}}}" if selectors else "")
    return "".join(kept)


def slim_stylesheet(css: str, used: set[str]) -> tuple[str, set[int]]:
    """Drop the rules of unused icons and the TrueType fallbacks, and load the icon
    fonts as WOFF; return the code points of the icons kept."""
    keep: set[int] = set()

    def rule(match: re.Match) -> str:
        names = set(re.findall(r"\.fa-([\w-]+):", match.group(1)))
        if names & used:
            keep.add(int(match.group(2), 16))
            return match.group(0)
        return ""

    css = ICON_RULE.sub(rule, css)
    css = WOFF2.sub(r'\1.woff) format("woff")', TRUETYPE.sub("", css))
    return css, keep


def subset_font(truetype: Path, codepoints: set[int], woff: Path) -> int:
    """Write the glyphs of ``codepoints`` from ``truetype`` to the WOFF file ``woff``;
    return its size in bytes."""
    options = subset.Options()
    options.flavor = "woff"  # zlib: no brotli module needed, and a few KB either way
    options.layout_features = []
    options.name_IDs = []
    font = TTFont(truetype)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(codepoints) or [0x20])
    subsetter.subset(font)
    subset.save_font(font, str(woff), options)
    return woff.stat().st_size


def plain_token_classes(pygments_css: str) -> set[str]:
    """Pygments classes whose only style, in every theme, is the code block's colour."""
    base, styles = {}, {}
    for theme, cls, body in PYGMENTS_RULE.findall(pygments_css):
        color = re.search(r"(?:^|;)\s*color:\s*([^;]+?)\s*(?:;|$)", body)
        if not cls:
            base[theme] = color.group(1).lower() if color else None
        else:
            styles.setdefault(cls, {})[theme] = body.strip().lower()
    return {
        cls
        for cls, by_theme in styles.items()
        if base and all(by_theme.get(t) == f"color: {c}" for t, c in base.items() if c)
    }


def unwrap_spans(html: str, classes: set[str]) -> str:
    """Replace ``<span class="c">text</span>`` by ``text`` inside ``<pre>``, for each
    class ``c`` of ``classes``."""
    if not classes:
        return html
    names = "|".join(map(re.escape, sorted(classes)))
    span = re.compile(rf'<span class="(?:{names})">([^<]*)</span>')
    return PRE_BLOCK.sub(lambda block: span.sub(r"\1", block.group(0)), html)


def slim(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    pages = _pages(outdir)
    pygments = outdir / "_static" / "pygments.css"
    plain = plain_token_classes(pygments.read_text()) if pygments.is_file() else set()
    for page in pages:
        text = page.read_text(encoding="utf-8")
        slimmer = unwrap_spans(ICON_SCRIPT.sub("", text), plain)
        # docutils marks bibliography entries "doc-biblioentry" inside a role="list":
        # ARIA 1.2 dropped that role, and a list may only hold list items.
        slimmer = slimmer.replace('role="doc-biblioentry"', 'role="listitem"')
        # The sidebar's expand buttons show only a chevron: give them a name.
        slimmer = slimmer.replace(TOGGLE, TOGGLE.replace("<summary>", NAMED_TOGGLE))
        if page.name != "search.html":
            slimmer = SEARCH_SCRIPTS.sub("", slimmer)
        if slimmer != text:
            page.write_text(slimmer, encoding="utf-8")
    for leftover in {
        *outdir.glob("_static/**/*.map"),
        *outdir.glob("_static/scripts/fontawesome.js*"),
    }:
        leftover.unlink()
    css_path = outdir / THEME_CSS
    if not css_path.is_file():
        return
    css, codepoints = slim_stylesheet(
        css_path.read_text(encoding="utf-8"), _used_icons(outdir, pages)
    )
    css_path.write_text(css, encoding="utf-8")
    tokens = set()
    for path in [*pages, *outdir.glob("_static/**/*.js")]:
        tokens |= set(re.findall(r"[\w-]+", path.read_text("utf-8", errors="ignore")))
    for sheet in outdir.glob("_static/**/*.css"):
        if "mathjax" not in sheet.relative_to(outdir).parts:
            css = sheet.read_text("utf-8")
            # License comments (/*! ... */) move to the top; the others go.
            notices = [c for c in COMMENT.findall(css) if c.startswith("/*!")]
            slimmed = purge_stylesheet(COMMENT.sub("", css), tokens)
            sheet.write_text("\n".join([*notices, slimmed]), "utf-8")
    fonts = outdir / FONT_DIR
    for name in FONTS:
        truetype = fonts / f"{name}.ttf"
        if truetype.is_file():
            size = subset_font(truetype, codepoints, fonts / f"{name}.woff")
            truetype.unlink()
            (fonts / f"{name}.woff2").unlink(missing_ok=True)
            logger.info("slim_site: %s cut to %d bytes", name, size)


def setup(app):
    app.connect("build-finished", slim, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
