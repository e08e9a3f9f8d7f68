"""Print the whole book to one PDF, offline: the single-page HTML build, typeset by the
bundled MathJax in headless Chromium (Debian's), saved with Chromium's own PDF printer.

    python book/print_pdf.py book/_build/singlehtml book/_build/html/book.pdf

`make book` runs this after building the site and the single-page HTML. Without
/usr/bin/chromium it says so and writes nothing (exit status 0): the site still builds,
and the browser tests, which need the same Chromium, are skipped.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

# Debian's Chromium, or another Chromium-based browser named by BOOK_CHROMIUM (the Pages
# workflow uses the runner's Google Chrome).
CHROMIUM = Path(os.environ.get("BOOK_CHROMIUM", "/usr/bin/chromium"))
# Wait until MathJax has typeset every formula and every image has decoded.
READY = """async () => {
  const start = Date.now();
  if (document.querySelector('.math')) {
    while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
      if (Date.now() - start > 120000) throw new Error('MathJax did not start');
      await new Promise(r => setTimeout(r, 100));
    }
    await MathJax.startup.promise;
  }
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  await document.fonts.ready;
}"""
# Print only the book: no sidebars, buttons or search dialog; figures and code within a
# page.
PRINT_CSS = """
.bd-sidebar-primary, .bd-sidebar-secondary, .bd-header-article, .prev-next-area,
.bd-footer, .bd-footer-content, #pst-search-dialog, .skip-link, .copybtn, .headerlink,
.toggle-details, dialog { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
img { max-width: 100% !important; page-break-inside: avoid; }
figure, .cell_output, div.math { page-break-inside: avoid; }
pre { white-space: pre-wrap !important; }
"""


def print_pdf(source: Path, target: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page()
        # Offline: the page may read files only.
        page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("file:", "data:", "blob:"))
                else route.abort()
            ),
        )
        page.set_default_timeout(600_000)
        page.goto(source.resolve().as_uri(), wait_until="load")
        page.evaluate(READY)
        page.add_style_tag(content=PRINT_CSS)
        target.parent.mkdir(parents=True, exist_ok=True)
        page.pdf(
            path=str(target),
            format="A4",
            margin={"top": "18mm", "bottom": "18mm", "left": "16mm", "right": "16mm"},
            print_background=True,
            outline=True,
            tagged=True,
        )
        browser.close()


def root_page(folder: Path) -> Path:
    """The single page, copied to the top of ``folder`` where its links point from.

    Jupyter Book writes ``index.html`` as a redirect to the table of contents' root
    page (``book/intro.html``), but the single-page builder writes that page's links to
    assets and images relative to the top folder.
    """
    index = folder / "index.html"
    redirect = re.compile(r'http-equiv="Refresh" content="0; url=([^"]+)"')
    target = redirect.search(index.read_text())
    if not target:
        return index
    flat = folder / "whole-book.html"
    flat.write_bytes((folder / target.group(1)).read_bytes())
    return flat


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    source, target = Path(argv[0]), Path(argv[1])
    if not CHROMIUM.exists():
        print(
            f"print_pdf: {CHROMIUM} is not installed; no PDF (apt-get install chromium)"
        )
        return 0
    print_pdf(root_page(source) if source.is_dir() else source, target)
    print(f"print_pdf: wrote {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
