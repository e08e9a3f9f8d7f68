"""The built book, read as a reader would, with no network.

`make book` builds the site into book/_build/html (`make test` builds it first).
These tests

- check every internal link of the built HTML: each relative href/src (and each url() of
  a stylesheet) names a file that exists, and each #anchor names an element of its page;
- check that no page loads a script, stylesheet, font or image from the network, and
  that every page of the table of contents was built;
- open every page in headless Chromium with every non-file request aborted, and check
  that the math is typeset by the bundled MathJax (no raw TeX left, no TeX errors), that
  every image loads, that the "next" links walk the whole book in table-of-contents
  order, and that the search page finds "LSTM".

The browser tests (marker `browser`) are skipped, saying why, where Debian's Chromium is
not installed (`apt-get install chromium`; .ci/run installs it). For a book built from
another table of contents (`make book TOC=...`), set BOOK_TOC to the same file
(`make test TOC=...` does).
"""

from __future__ import annotations

import functools
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

import chromium

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "book" / "_build" / "html"
PDF = HTML / "book.pdf"  # the whole book, by `make pdf`
# `make book TOC=other.yml` builds a partial book (say, one chapter) and exports
# BOOK_TOC to match.
TOC = Path(os.environ.get("BOOK_TOC") or ROOT / "book" / "_toc.yml")
MATHJAX = "_static/mathjax/startup.js"
# Elements whose URL the browser loads by itself (unlike <a href>, which a reader
# follows).
LOADED = {
    "script": "src",
    "img": "src",
    "source": "src",
    "iframe": "src",
    "video": "src",
    "audio": "src",
    "embed": "src",
}
LOADED_LINK_RELS = {
    "stylesheet",
    "preload",
    "modulepreload",
    "icon",
    "shortcut",
    "prefetch",
    "manifest",
    "apple-touch-icon",
}


def _require_book() -> None:
    if not (HTML / "index.html").is_file():
        pytest.fail(
            f"the book is not built: {HTML / 'index.html'} is missing. Run `make book` "
            "first (`make test` runs it before these tests).",
            pytrace=False,
        )


def toc_pages() -> list[str]:
    """The pages of book/_toc.yml in reading order, as paths from the site root."""
    toc = yaml.safe_load(TOC.read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return [f"{page}.html" for page in pages]


class _Page(HTMLParser):
    """The anchors of one HTML page and the URLs it links to or loads."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (tag, url) a reader can follow
        self.loads: list[
            tuple[str, str]
        ] = []  # (tag, url) the browser fetches by itself

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "link" and attrs.get("href"):
            rels = set((attrs.get("rel") or "").lower().split())
            (self.loads if rels & LOADED_LINK_RELS else self.links).append(
                (tag, attrs["href"])
            )
        elif tag in LOADED and attrs.get(LOADED[tag]):
            self.loads.append((tag, attrs[LOADED[tag]]))
        elif tag == "a" and attrs.get("href"):
            self.links.append((tag, attrs["href"]))


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _is_remote(url: str) -> bool:
    return bool(urlsplit(url).scheme) or url.startswith("//")


def _site_pages() -> list[Path]:
    """Every HTML page of the site (not the theme's template snippets in _static)."""
    return sorted(
        p
        for p in HTML.rglob("*.html")
        if p.relative_to(HTML).parts[0] not in ("_static", "_sources")
    )


@pytest.fixture(scope="module")
def site() -> dict[Path, _Page]:
    _require_book()
    return {path: _parse(path) for path in _site_pages()}


def _target(page: Path, url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
    if parts.path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def test_every_page_of_the_table_of_contents_was_built():
    _require_book()
    missing = [page for page in toc_pages() if not (HTML / page).is_file()]
    assert not missing, f"pages listed in book/_toc.yml but not built: {missing}"


def test_every_labkit_module_has_an_api_page_in_the_toc():
    import pkgutil

    import labkit

    chapter_cases = re.compile(
        r"labkit\.exercises\.ch\d\d$"
    )  # exercise definitions, not API
    modules = {
        info.name
        for info in pkgutil.walk_packages(labkit.__path__, "labkit.")
        if not any(part.startswith("_") for part in info.name.split("."))
        and not chapter_cases.match(info.name)
    }
    toc = set(toc_pages())
    documented = {}
    for page in (ROOT / "book" / "api").glob("*.md"):
        for module in re.findall(r"automodule::\s+(\S+)", page.read_text()):
            documented[module] = f"book/api/{page.stem}.html"
    missing = sorted(m for m in modules if m not in documented)
    assert not missing, f"labkit modules without an API page in book/api/: {missing}"
    unlisted = sorted(page for page in documented.values() if page not in toc)
    assert not unlisted, f"API pages missing from book/_toc.yml: {unlisted}"


def test_every_internal_link_resolves_to_a_file_and_an_anchor(site):
    broken = []
    for page, parsed in site.items():
        for tag, url in parsed.links + parsed.loads:
            if _is_remote(url) or url == "#":
                continue
            target, fragment = _target(page, url)
            if target == PDF:
                continue  # `make pdf` writes it; the slow tier's PDF test checks it
            where = f"{page.relative_to(HTML)}: <{tag}> {url}"
            if not target.is_file():
                broken.append(f"{where} (no file {target})")
            elif fragment and target.suffix == ".html":
                ids = site[target].ids if target in site else _parse(target).ids
                if fragment not in ids:
                    broken.append(f"{where} (no element with id {fragment!r})")
    assert not broken, f"{len(broken)} broken internal links:\n" + "\n".join(
        broken[:50]
    )


def test_no_page_loads_anything_from_the_network(site):
    remote = [
        f"{page.relative_to(HTML)}: <{tag}> {url}"
        for page, parsed in site.items()
        for tag, url in parsed.loads
        if _is_remote(url)
    ]
    assert not remote, "pages load from the network:\n" + "\n".join(remote[:50])


CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)""")


def test_stylesheets_and_their_fonts_are_in_the_site():
    _require_book()
    missing, remote = [], []
    for css in sorted(HTML.glob("_static/**/*.css")):
        text = re.sub(
            r"/\*.*?\*/",
            "",
            css.read_text(encoding="utf-8", errors="replace"),
            flags=re.S,
        )
        for _, url in CSS_URL.findall(text):
            if url.startswith(("data:", "#")):
                continue
            if _is_remote(url):
                remote.append(f"{css.relative_to(HTML)}: {url}")
            elif not _target(css, url)[0].is_file():
                missing.append(f"{css.relative_to(HTML)}: {url}")
        remote += [
            f"{css.relative_to(HTML)}: @import {m}"
            for m in re.findall(
                r"@import\s+(?:url\()?['\"]?(https?://[^'\")\s]+)", text
            )
        ]
    assert not remote, "stylesheets fetch from the network:\n" + "\n".join(remote)
    assert not missing, "stylesheets name files the site lacks:\n" + "\n".join(missing)
    fonts = list(HTML.glob("_static/vendor/fontawesome/**/*.woff"))
    assert fonts, "the theme's icon font (fontawesome) is not in the site"


def test_math_pages_load_the_bundled_mathjax(site):
    assert (HTML / MATHJAX).is_file(), f"{MATHJAX} is missing from the site"
    assert list((HTML / "_static/mathjax/output/chtml/fonts/woff-v2").glob("*.woff")), (
        "MathJax's web fonts are missing from the site"
    )
    for page in toc_pages():
        text = (HTML / page).read_text(encoding="utf-8")
        if 'class="math' in text:
            scripts = [url for tag, url in site[HTML / page].loads if tag == "script"]
            assert any(urlsplit(url).path.endswith(MATHJAX) for url in scripts), (
                f"{page} has math but does not load {MATHJAX}: {scripts}"
            )


# --------------------------------------------------------------------------------------
# In the browser, offline.


@pytest.fixture(scope="session")
def browser():
    _require_book()
    with chromium.launch() as browser:
        yield browser
        _READERS.clear()  # their tabs close with the browser


class OfflineReader:
    """A browser tab ``width`` pixels wide that may read only files: every other
    request is aborted and recorded; script errors, console errors and warnings, and the
    bytes of every response are recorded too."""

    def __init__(self, browser, width: int = 1400):
        self.context = browser.new_context(
            viewport={"width": width, "height": 900},
            has_touch=width < 992,  # phones and tablets: taps, not clicks
        )
        self.network: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        self.responses: list[tuple[str, str, int]] = []  # (url, resource type, bytes)
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.page.on(
            "pageerror", lambda exc: self.errors.append(f"{self.page.url}: {exc}")
        )
        self.page.on("console", self._console)
        self.page.on("requestfinished", self._finished)

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            route.continue_()
        else:
            self.network.append(url)
            route.abort()

    def _console(self, message):
        if message.type in ("error", "warning"):
            self.console.append(f"{self.page.url}: {message.type}: {message.text}")

    def _finished(self, request):
        try:
            response = request.response()
            size = len(response.body()) if response is not None else 0
        except Exception:  # the tab closed while the body was read  # noqa: BLE001
            return
        self.responses.append((request.url, request.resource_type, size))

    def open(self, page: str) -> None:
        self.page.goto("about:blank")  # the last page's late requests end here
        self.responses.clear()
        self.page.goto((HTML / page).as_uri(), wait_until="load")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def reader(browser):
    reader = OfflineReader(browser)
    yield reader
    reader.close()


# Runs in the page: waits for MathJax and the images, then says what a reader would see.
INSPECT = """async () => {
  const math = [...document.querySelectorAll('.math')];
  if (math.length) {
    const start = Date.now();
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
      if (Date.now() - start > 30000) break;
      await new Promise(r => setTimeout(r, 50));
    }
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
      await MathJax.startup.promise;
    }
  }
  const images = [...document.querySelectorAll('article img, .bd-content img')];
  await Promise.all(images.map(img => img.decode().catch(() => null)));
  await document.fonts.ready;
  const article = (document.querySelector('article') || document.body).cloneNode(true);
  article.querySelectorAll(
    'pre, code, script, style, mjx-container, .highlight, .MathJax')
    .forEach(node => node.remove());
  const root = document.documentElement;
  return {
    mathjax: Boolean(window.MathJax && MathJax.version),
    math: math.length,
    typeset: math.filter(node => node.querySelector('mjx-container')).length,
    untypeset: math.filter(node => !node.querySelector('mjx-container'))
                   .slice(0, 3).map(node => node.textContent.slice(0, 80)),
    texErrors: [...document.querySelectorAll('mjx-merror')]
                   .slice(0, 3)
                   .map(node => node.getAttribute('data-mjx-error')
                                || node.textContent),
    images: images.length,
    brokenImages: images.filter(img => !(img.complete && img.naturalWidth > 0))
                        .map(img => img.getAttribute('src')),
    fontErrors: [...document.fonts].filter(font => font.status === 'error')
                    .map(font => font.family),
    text: article.textContent,
    title: (document.querySelector('article h1') || {}).textContent || '',
    overflow: root.scrollWidth - root.clientWidth,
    widest: root.scrollWidth <= root.clientWidth ? [] :  // only a page too wide
            [...document.querySelectorAll('article *')]
              .filter(node => node.getBoundingClientRect().right > root.clientWidth + 1)
              .filter(node => !node.closest('pre, .highlight, div.math, .cell_output, '
                                           + '.pst-scrollable-table-container, table'))
              .slice(0, 3).map(node => node.tagName + '.' + node.className),
  };
}"""
RAW_MATH = re.compile(r"(?<![\\\w])\$[^$\s][^$\n]{0,200}?\$|\\\(|\\\[|\\begin\{")
# Phone, tablet, desktop.
WIDTHS = (390, 800, 1400)
PHONE, DESKTOP = WIDTHS[0], WIDTHS[-1]
API = "book/api"  # the folder of the API pages
# Bytes a chapter page may load beyond its own figures (scripts, styles, fonts, the
# page).
PAGE_BUDGET = 1_500_000
# The smallest text a reader may be asked to read in a figure, in CSS pixels.
FIGURE_TEXT_PX = 9
# axe-core impact levels that fail the accessibility check. On the shortest page of
# each kind (each folder of the site: book pages, chapters, solutions, API pages) axe
# reads the whole page at the desktop width, and at phone and tablet widths what changes
# with the width: everything but the article (the same markup at every width; the page
# around it is the same on every page of a kind). A run takes seconds on a chapter, so
# the whole-page runs on every other page are in the slow tier. Highlighted code is
# left out everywhere (its colours are the theme's contrast-checked Pygments style).
BLOCKING_IMPACT = ("serious", "critical")
AXE_CONTEXT = {
    "wide": {"exclude": [["div.highlight"]]},
    "narrow": {"exclude": [["div.highlight"], ["article.bd-article"]]},
}
AXE_OPTIONS = {"resultTypes": ["violations"], "preload": False}
# Runs in the page: every figure image of the article, its size as shown, and what a
# figure needs around it (number, caption, alt text, a link to it from the prose).
FIGURES = """() => [...document.querySelectorAll('article img')].map(img => {
  const figure = img.closest('figure');
  const id = figure ? figure.id : '';
  const links = id ? [...document.querySelectorAll('article a[href$="#' + id + '"]')]
                       .filter(a => !figure.contains(a)).length : 0;
  const text = selector => ((figure && figure.querySelector(selector)) || {})
                             .textContent || '';
  return {src: img.currentSrc, alt: img.getAttribute('alt') || '',
          output: Boolean(img.closest('.cell_output')),
          shown: img.getBoundingClientRect().width, natural: img.naturalWidth,
          id, number: text('.caption-number').trim(),
          caption: text('.caption-text').trim(), links};
})"""
NEXT = "() => (document.querySelector('a.right-next') || {}).href || ''"


def _axe():
    axe = pytest.importorskip(
        "axe_playwright_python.sync_playwright",
        reason="axe-playwright-python is not installed (pip install -e '.[dev]')",
    )
    return axe.Axe()


# One visit per page and width, made by the first test that needs it in this process
# and read by the others. Under `pytest -n auto --dist loadgroup` the tests of one visit
# (ids ending `[<page>@<width>px]`) run on one worker, the one that made it
# (conftest.py's scheduler).
_VISITS: dict[tuple[str, int], dict] = {}
LOGS = ("errors", "console", "network")  # what OfflineReader records as it reads


_READERS: dict[int, OfflineReader] = {}  # one tab per width in this process


def _visit(browser, page: str, width: int) -> dict:
    """What a reader of ``page`` at ``width`` pixels sees (INSPECT), the next-page
    link, the figures, the console, the bytes loaded, and, on the shortest page of
    each kind, axe-core's serious and critical violations."""
    if (page, width) in _VISITS:
        return _VISITS[(page, width)]
    reader = _reader(browser, width)
    before = {name: len(getattr(reader, name)) for name in LOGS}
    reader.open(page)
    seen = reader.page.evaluate(INSPECT)
    seen["next"] = reader.page.evaluate(NEXT)
    seen["figures"] = reader.page.evaluate(FIGURES)
    seen["bytes"] = sum(size for _, kind, size in reader.responses if kind != "image")
    if page in _shortest_of_each_kind():
        seen["axe"] = _violations(reader.page, "wide" if width == DESKTOP else "narrow")
    reader.page.goto("about:blank")  # what the page still logs is its own
    for name in LOGS:
        seen[name] = getattr(reader, name)[before[name] :]
    _VISITS[(page, width)] = seen
    return seen


def _reader(browser, width: int) -> OfflineReader:
    """This process's tab at ``width`` (a new tab costs a new renderer)."""
    if width not in _READERS:
        _READERS[width] = OfflineReader(browser, width=width)
    return _READERS[width]


def _violations(page, context: str) -> list[str]:
    """axe-core's serious and critical violations on the open page."""
    found = _axe().run(page, AXE_CONTEXT[context], AXE_OPTIONS).response
    return [
        f"{v['id']} ({v['impact']}, {len(v['nodes'])}x): {v['help']}; e.g. "
        + ", ".join(str(node["target"]) for node in v["nodes"][:2])
        for v in found["violations"]
        if v["impact"] in BLOCKING_IMPACT
    ]


def _kind(page: str) -> str:
    """A page's folder in the site: book pages, chapters, solutions or API pages."""
    return page.rsplit("/", 1)[0]


@functools.cache
def _shortest_of_each_kind() -> frozenset[str]:
    """The page of each kind with the least HTML (the first one when the site is not
    built): the page around the article is the same on every page of a kind, so one
    page shows it, and the shortest shows it soonest."""
    size = {
        page: (HTML / page).stat().st_size if (HTML / page).is_file() else 0
        for page in toc_pages()
    }
    shortest: dict[str, str] = {}
    for page in toc_pages():
        kind = _kind(page)
        if kind not in shortest or size[page] < size[shortest[kind]]:
            shortest[kind] = page
    return frozenset(shortest.values())


def _visits(pages=None, widths=WIDTHS):
    """pytest parameters: one per page (of the table of contents) and width.

    The quick tier reads every chapter, solution and book page at the phone's width,
    where its article has the least room: what fits and reads there fits and reads in a
    wider column (an image is shown at most as wide as the column). What else changes
    with the width is the page around the article, the same on every page of a kind,
    so at tablet and desktop widths it reads the shortest page of each kind. The API
    pages come from one template (autodoc), so it reads the shortest of them at every
    width. The slow tier reads every other page at every width."""
    return [
        pytest.param(
            (page, width),
            id=f"{page}@{width}px",
            marks=[]
            if page in _shortest_of_each_kind()
            or (width == PHONE and _kind(page) != API)
            else [pytest.mark.slow],
        )
        for page in (toc_pages() if pages is None else pages)
        for width in widths
    ]


def _chapters() -> list[str]:
    return [page for page in toc_pages() if page.startswith("chapters/")]


@pytest.fixture
def visit(browser, request) -> dict:
    return _visit(browser, *request.param)


@pytest.mark.browser
@pytest.mark.parametrize("visit", _visits(), indirect=True)
def test_a_page_reads_offline_with_math_and_figures(visit):
    problems = []
    if not visit["title"].strip():
        problems.append("no <h1> title")
    if visit["math"]:
        if not visit["mathjax"]:
            problems.append("MathJax did not load")
        if visit["typeset"] != visit["math"]:
            problems.append(
                f"{visit['math'] - visit['typeset']} of {visit['math']} formulas not "
                f"typeset, e.g. {visit['untypeset']}"
            )
    if visit["texErrors"]:
        problems.append(f"TeX errors {visit['texErrors']}")
    raw = RAW_MATH.findall(visit["text"])
    if raw:
        problems.append(f"raw TeX left in the text: {raw[:3]}")
    if visit["fontErrors"]:
        problems.append(f"fonts that did not load: {visit['fontErrors'][:5]}")
    if visit["brokenImages"]:
        problems.append(f"images that do not load: {visit['brokenImages'][:5]}")
    if visit["errors"]:
        problems.append(f"JavaScript errors: {visit['errors'][:5]}")
    if visit["network"]:
        problems.append(f"requests to the network: {sorted(set(visit['network']))}")
    assert not problems, "\n".join(problems)


def test_the_book_has_math_for_the_math_check_to_read():
    pages = [page for page in toc_pages() if page.startswith("chapters/")]
    if not pages:
        pytest.skip("no chapter in this table of contents")
    _require_book()
    assert any('class="math' in (HTML / page).read_text() for page in pages)


@pytest.mark.browser
@pytest.mark.parametrize("visit", _visits(), indirect=True)
def test_the_console_stays_quiet(visit):
    """No errors or warnings in the console ("Got invalid theme mode" was one)."""
    assert not visit["console"], "\n".join(visit["console"][:10])


@pytest.mark.browser
@pytest.mark.parametrize("visit", _visits(), indirect=True)
def test_a_page_does_not_scroll_sideways(visit):
    """Only code, outputs, tables and display math may scroll, each in its own box."""
    assert visit["overflow"] <= 0, (
        f"{visit['overflow']} px too wide, e.g. {visit['widest']}"
    )


@pytest.mark.browser
@pytest.mark.parametrize("visit", _visits(_chapters()), indirect=True)
def test_a_chapter_page_stays_within_its_weight_budget(visit):
    assert visit["bytes"] <= PAGE_BUDGET, (
        f"{visit['bytes'] / 1e6:.2f} MB loaded besides figures "
        f"(budget {PAGE_BUDGET / 1e6} MB)"
    )


@pytest.mark.browser
@pytest.mark.parametrize(
    "visit",
    _visits([p for p in toc_pages() if p in _shortest_of_each_kind()]),
    indirect=True,
)
def test_no_serious_accessibility_violations(visit):
    """axe-core (shipped inside axe-playwright-python, run offline)."""
    assert not visit["axe"], "\n".join(visit["axe"][:30])


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.parametrize(
    "page", [p for p in toc_pages() if p not in _shortest_of_each_kind()]
)
def test_no_serious_accessibility_violations_on_the_whole_page(browser, page):
    """axe-core on every other page, whole, at the desktop width."""
    reader = _reader(browser, DESKTOP)
    reader.open(page)
    found = _violations(reader.page, "wide")
    reader.page.goto("about:blank")
    assert not found, "\n".join(found[:30])


def _smallest_text_px(src: str) -> float | None:
    """The pixel size of a figure's smallest text, as labkit.plots recorded it in the
    PNG (None when it did not)."""
    from PIL import Image

    from labkit.plots import SMALLEST_TEXT_KEY

    path = Path(unquote(urlsplit(src).path))
    with Image.open(path) as image:
        value = getattr(image, "text", {}).get(SMALLEST_TEXT_KEY)
    return float(value) if value is not None else None


@pytest.mark.browser
@pytest.mark.parametrize("visit", _visits(_chapters()), indirect=True)
def test_figure_text_is_legible_at_this_width(visit):
    """A figure's smallest text, scaled as the page shows the image, is 9 px or more."""
    small = []
    for figure in visit["figures"]:
        if not figure["output"]:
            continue
        px = _smallest_text_px(figure["src"])
        if px is None:
            small.append(
                f"{figure['id'] or figure['src']}: no text size recorded (drawn "
                "before labkit.plots.use_style()?)"
            )
            continue
        shown = px * figure["shown"] / figure["natural"]
        if shown < FIGURE_TEXT_PX:
            small.append(
                f"{figure['id'] or figure['src']}: smallest text {shown:.1f} px "
                f"({figure['natural']} px image shown {figure['shown']:.0f} px wide)"
            )
    assert not small, "\n".join(small)


@pytest.mark.browser
@pytest.mark.parametrize("visit", _visits(_chapters(), (PHONE,)), indirect=True)
def test_every_figure_has_a_number_a_caption_alt_text_and_a_mention(visit):
    """Each figure: a number ("Fig. 3.2"), a caption, alt text that describes it (not
    a file name), and a link to it from the prose ({numref})."""
    problems = []
    for figure in visit["figures"]:
        name = figure["id"] or figure["src"].rsplit("/", 1)[-1]
        if not figure["id"]:
            problems.append(f"{name}: not in a named figure")
        if not re.fullmatch(r"Fig\. \d+(\.\d+)*", figure["number"]):
            problems.append(f"{name}: no figure number ({figure['number']!r})")
        if len(figure["caption"].split()) < 4:
            problems.append(f"{name}: no caption ({figure['caption']!r})")
        alt = figure["alt"]
        if len(alt.split()) < 6 or re.search(r"\.(png|jpe?g|svg)$|/", alt):
            problems.append(f"{name}: alt text does not say what it shows ({alt!r})")
        if not figure["links"]:
            problems.append(f"{name}: the text never refers to it")
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.parametrize("visit", _visits(toc_pages()[:-1], (PHONE,)), indirect=True)
def test_the_next_link_leads_to_the_next_page_of_the_table_of_contents(visit, request):
    page = request.node.callspec.params["visit"][0]
    expected = toc_pages()[toc_pages().index(page) + 1]
    assert visit["next"], "no link to the next page"
    found = Path(unquote(urlsplit(visit["next"]).path)).relative_to(HTML).as_posix()
    assert found == expected


@pytest.mark.browser
def test_the_last_page_has_no_next_link_and_the_site_opens_on_the_first(reader):
    reader.open(toc_pages()[-1])
    assert reader.page.evaluate(NEXT) == ""
    reader.open("index.html")  # redirects to the root page
    reader.page.wait_for_url(re.compile(re.escape(toc_pages()[0]) + "$"))
    assert not reader.network, reader.network[:5]


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 800], ids=lambda w: f"{w}px")
@pytest.mark.parametrize(
    "button, drawer",
    [
        ("primary-toggle", "#pst-primary-sidebar-modal"),
        ("secondary-toggle", "#pst-secondary-sidebar-modal"),
    ],
    ids=["menu", "contents"],
)
def test_phone_and_tablet_buttons_open_their_drawers(browser, width, button, drawer):
    reader = _reader(browser, width)
    errors = len(reader.errors)
    reader.open(toc_pages()[0])  # the same buttons and drawers on every page
    visible = reader.page.locator(f".{button}:visible")
    assert visible.count() == 1, f"{visible.count()} visible .{button} buttons"
    assert not reader.page.locator(drawer).is_visible()
    visible.tap()
    reader.page.locator(drawer).wait_for(state="visible", timeout=30_000)
    links = reader.page.locator(f"{drawer} a:visible")
    assert links.count() > 0, "the drawer opened empty"
    reader.page.keyboard.press("Escape")
    reader.page.locator(drawer).wait_for(state="hidden", timeout=30_000)
    assert not reader.errors[errors:], reader.errors[errors:]


@pytest.mark.browser
def test_wide_screens_have_no_header_bar_of_their_own(browser):
    """The article's own button row is the only bar: no header holding only search."""
    reader = OfflineReader(browser, width=1400)
    try:
        reader.open(toc_pages()[0])
        header = reader.page.locator("#pst-header")
        height = header.evaluate("h => h.getBoundingClientRect().height")
        assert height == 0, f"a header bar {height} px high"
        search = reader.page.locator(".bd-sidebar-primary .search-button-field")
        assert search.is_visible(), "no search field in the sidebar"
    finally:
        reader.close()


@pytest.mark.browser
def test_search_finds_lstm(reader):
    reader.page.goto((HTML / "search.html").as_uri() + "?q=LSTM", wait_until="load")
    results = reader.page.locator("#search-results ul.search li a")
    results.first.wait_for(state="attached", timeout=30_000)
    hrefs = results.evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert hrefs, "the search found nothing for LSTM"
    if (HTML / "chapters" / "03_rnn_lstm.html").is_file():
        assert any("chapters/03_rnn_lstm.html" in href for href in hrefs), hrefs
    assert not reader.network, f"the search reached the network: {reader.network[:5]}"


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served():
    """The book served by `make serve` (what README and the intro page tell readers to
    run), on a free local port; yields its address."""
    import shutil
    import signal
    import subprocess
    import time
    import urllib.request

    _require_book()
    if shutil.which("make") is None:
        pytest.skip("no make")
    port = _free_port()
    server = subprocess.Popen(
        ["make", "-s", "serve", f"PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(address + "search.html", timeout=2).close()
                break
            except OSError:
                assert server.poll() is None, "make serve exited"
                time.sleep(0.1)
        else:
            pytest.fail("make serve did not answer within 30 s")
        yield address
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.browser
def test_served_search_shows_excerpts_without_tex(browser, served):
    """Served over http (`make serve`), search shows an excerpt of each page found;
    formulas appear in excerpts as an ellipsis, never as TeX source."""
    reader = OfflineReader(browser, width=390)
    reader.context.unroute("**/*")
    reader.context.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(served)
            else (reader.network.append(route.request.url), route.abort())
        ),
    )
    try:
        query = "gradient" if any("chapters/" in p for p in toc_pages()) else "book"
        reader.page.goto(served + f"search.html?q={query}", wait_until="load")
        excerpts = reader.page.locator("#search-results ul.search li p.context")
        excerpts.first.wait_for(state="attached", timeout=60_000)
        reader.page.wait_for_function(
            "() => !document.querySelector('#search-progress')?.textContent"
            ".includes('Preparing')",
            timeout=60_000,
        )
        texts = excerpts.all_text_contents()
        assert texts and all(t.strip() for t in texts[:5]), texts[:5]
        tex = [t for t in texts if RAW_MATH.search(t) or "\\frac" in t]
        assert not tex, f"excerpts with TeX source: {tex[:3]}"
        assert not reader.network, reader.network[:5]
    finally:
        reader.close()


@pytest.mark.slow
def test_the_whole_book_is_one_pdf_linked_from_the_first_page(site):
    """`make book` prints the single-page build to book.pdf (Chromium needed)."""
    pdf = PDF
    if not chromium.CHROMIUM.exists() and not pdf.exists():
        pytest.skip(f"no PDF without a browser: {chromium.CHROMIUM} is not installed")
    assert pdf.is_file(), "book/_build/html/book.pdf is missing: run `make book`"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-"), "book.pdf is not a PDF"
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    assert pages >= 2 * len(toc_pages()), f"book.pdf has only {pages} pages"
    root = HTML / toc_pages()[0]
    links = [url for tag, url in site[root].links if url.endswith("book.pdf")]
    assert links, f"{toc_pages()[0]} does not link to book.pdf"
    assert all(_target(root, url)[0] == pdf.resolve() for url in links), links


# --------------------------------------------------------------------------------------
# The build's own extensions (book/_ext), on small inputs.


def _extension(name: str):
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


@pytest.mark.parametrize(
    "remote",
    [
        "git@github.com:me/course.git",
        "https://user:token@github.com/me/course.git",
        "ssh://git@github.com/me/course",
        "https://github.com/me/course/",
    ],
)
def test_a_git_remote_becomes_the_repository_web_address(remote):
    assert (
        _extension("repository").web_address(remote) == "https://github.com/me/course"
    )


def test_the_repository_address_comes_from_the_environment_then_git(
    tmp_path, monkeypatch
):
    repository = _extension("repository")
    monkeypatch.delenv("BOOK_REPOSITORY", raising=False)
    assert repository.repository_url(tmp_path, "https://x.org/d") == "https://x.org/d"
    monkeypatch.setenv("BOOK_REPOSITORY", "git@github.com:fork/course.git")
    assert repository.repository_url(tmp_path, "https://x.org/d") == (
        "https://github.com/fork/course"
    )


def test_css_purge_keeps_used_and_grouped_selectors_and_drops_unused_ones():
    slim = _extension("slim_site")
    css = (
        ".used{a:1}.unused{b:2}.used,.unused{c:3}"
        ".x:is(.used,.gone){d:4}@media (min-width:1px){.unused{e:5}.used{f:6}}"
        ".bs-tooltip-top{g:7}a:not(.gone){h:8}"
    )
    out = slim.purge_stylesheet(css, {"used", "x"})
    assert out == (
        ".used{a:1}.used{c:3}@media (min-width:1px){.used{f:6}}"
        ".bs-tooltip-top{g:7}a:not(.gone){h:8}"
    )


def test_code_spans_in_the_text_colour_are_unwrapped_inside_pre_only():
    slim = _extension("slim_site")
    css = (
        'html[data-theme="light"] .highlight { background: #fff; color: #080808 }\n'
        'html[data-theme="light"] .highlight .n { color: #080808 }\n'
        'html[data-theme="light"] .highlight .k { color: #0000ff }\n'
        'html[data-theme="dark"] .highlight { background: #000; color: #F8F8F2 }\n'
        'html[data-theme="dark"] .highlight .n { color: #F8F8F2 }\n'
        'html[data-theme="dark"] .highlight .k { color: #ff0000 }\n'
    )
    plain = slim.plain_token_classes(css)
    assert plain == {"n"}
    html = (
        '<p><span class="n">x</span></p><pre><span class="k">def</span> '
        '<span class="n">f</span>():</pre>'
    )
    assert slim.unwrap_spans(html, plain) == (
        '<p><span class="n">x</span></p><pre><span class="k">def</span> f():</pre>'
    )


def test_bibliography_labels_are_author_and_year():
    from pybtex.database import parse_string

    citations = _extension("citations")
    bib = parse_string(
        "@article{a, author={Kingma, Diederik and Ba, Jimmy}, year={2015}}"
        "@article{b, author={Hochreiter, Sepp}, year={1997}}"
        "@article{c, author={He, K. and Zhang, X. and Ren, S.}, year={2015}}"
        "@article{d, author={He, K. and Zhang, X. and Sun, J.}, year={2015}}",
        "bibtex",
    )
    labels = list(
        citations.AuthorYearLabels().format_labels(list(bib.entries.values()))
    )
    assert labels == [
        "Kingma and Ba, 2015",
        "Hochreiter, 1997",
        "He et al., 2015a",
        "He et al., 2015b",
    ]
