"""A learner's HTML feedback page, opened in headless Chromium with the network cut off:
it reads offline, shows the points, the failing inputs, the known mistake and the first
hint, runs no script (not even one a submission smuggles into its feedback), and fits a
phone's screen.

Skipped, saying why, where Debian's Chromium (``/usr/bin/chromium``) or Playwright is
missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import chromium
import grading_fixtures as fx
from labkit.grade import grade_notebooks
from labkit.grade.feedback_html import write_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

HOSTILE = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
IGNORES_SCALE = fx.SOLUTIONS["99.1"].replace("scale * X + b", "X + b")
RAISES = fx.SOLUTIONS["99.2"].replace(
    "return float(sum(x)) / len(x), len(x)", f"raise ValueError({HOSTILE!r})"
)


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    fx.register()
    try:
        folder = tmp_path_factory.mktemp("feedback")
        notebook = fx.write_notebook(
            folder / "99_fixtures.ipynb",
            {"99.1": IGNORES_SCALE, "99.2": RAISES, "99.3": fx.SOLUTIONS["99.3"]},
        )
        [submission] = grade_notebooks([str(notebook)], cache=False, jobs=1)
        submission.learner_id, submission.learner_name = "1234", "Ada <b>Lovelace</b>"
        yield Path(write_page(folder, submission))
    finally:
        fx.unregister()


@pytest.fixture(scope="module")
def browser():
    with chromium.launch() as browser:
        yield browser


def open_offline(browser, path: Path, width: int):
    """A tab that may read files only; returns it and the list of other requests."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    requests: list[str] = []

    def route(request_route):
        url = request_route.request.url
        if url.startswith(("file:", "data:", "about:")):
            request_route.continue_()
        else:
            requests.append(url)
            request_route.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(path.as_uri(), wait_until="load")
    return context, page, requests


def test_the_feedback_page_reads_offline_and_runs_no_script(browser, page_file):
    context, page, requests = open_offline(browser, page_file, 1280)
    try:
        text = page.inner_text("body")
        assert "Feedback for Ada <b>Lovelace</b>" in text  # the name, as text
        assert page.inner_text("#total") == "Total: 4.5 of 6 points"
        rows = page.locator("#scores tbody tr")
        assert rows.count() == 3
        assert rows.nth(0).inner_text().split("\t") == [
            "99.1",
            "Add a bias",
            "1.5 / 2",
            "partial",
        ]
        ex1 = page.inner_text("#ex-99\\.1")
        assert "scale=2" in ex1  # the input it failed on
        assert "The scale keyword was ignored" in ex1 and "Reread 99.1 Fixtures" in ex1
        assert "Hint: Broadcast b over the rows." in ex1
        ex2 = page.inner_text("#ex-99\\.2")
        assert HOSTILE in ex2  # shown as text, never run
        assert page.evaluate("window.pwned") is None
        assert page.evaluate("document.scripts.length") == 0
        assert page.evaluate("document.images.length") == 0
        assert requests == []
    finally:
        context.close()


def test_the_feedback_page_fits_a_phone(browser, page_file):
    context, page, _ = open_offline(browser, page_file, 375)
    try:
        root = "document.documentElement"
        overflow = page.evaluate(f"{root}.scrollWidth - {root}.clientWidth")
        assert overflow <= 1
    finally:
        context.close()
