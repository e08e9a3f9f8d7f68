"""Every exercise looks the same in every chapter and solution, and the book styles it.

The markdown cell just before an exercise cell opens with (or contains) the heading
``Exercise N.M: <title> (<k> points)``, whose title and points are the registry's,
followed by the statement. The heading is one level below the section that holds it and
at most a level-3 heading, so it is a node of the page's contents (the right-hand
"Contents" lists the page's sections and opens the subsections of the one being read).
The book's stylesheet frames the section such a heading opens; its selector is checked
against the section ids Sphinx makes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from docutils.nodes import make_id

from labkit.exercises import get

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb")) + sorted(
    (ROOT / "solutions").glob("*.ipynb")
)
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXERCISE_HEADING = re.compile(r"^Exercise (\d+\.\d+)\b")
STYLESHEET = ROOT / "book" / "_static" / "exercises.css"
SECTION_SELECTOR = 'section[id^="exercise-"]'


def expected_heading(exercise_id: str) -> str:
    exercise = get(exercise_id)
    unit = "point" if exercise.points == 1 else "points"
    return f"Exercise {exercise.id}: {exercise.title} ({exercise.points} {unit})"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def headings(markdown: str) -> list[tuple[int, str, int]]:
    """(level, text, line number) of each ATX heading outside fenced blocks."""
    found, fence = [], None
    for number, line in enumerate(markdown.split("\n")):
        stripped = line.strip()
        marker = re.match(r"^(`{3,}|~{3,}|:{3,})", stripped)
        if marker:
            if fence is None:
                fence = marker.group(1)
            elif stripped.startswith(fence) and stripped.strip(fence[0]) == "":
                fence = None
            continue
        match = HEADING.match(line) if fence is None else None
        if match:
            found.append((len(match.group(1)), match.group(2), number))
    return found


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text("utf-8"))["cells"]


def _is_exercise(cell: dict) -> bool:
    return "exercise" in cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in NOTEBOOKS]
)
def test_each_exercise_has_the_uniform_heading_and_a_statement(path):
    cells = _cells(path)
    outline: list[int] = []  # levels of the headings met so far, innermost last
    seen: dict[str, int] = {}  # exercise id -> level of its heading
    problems = []
    for position, cell in enumerate(cells):
        if cell.get("cell_type") == "markdown":
            text = _source(cell)
            for level, title, line in headings(text):
                while outline and outline[-1] >= level:
                    outline.pop()
                parent = outline[-1] if outline else 0
                outline.append(level)
                match = EXERCISE_HEADING.match(title)
                if not match:
                    continue
                exercise_id = match.group(1)
                if title != expected_heading(exercise_id):
                    problems.append(
                        f"{title!r} should read {expected_heading(exercise_id)!r}"
                    )
                if level != parent + 1 or level > 3:
                    problems.append(
                        f"{exercise_id}: a level-{level} heading under a "
                        f"level-{parent} "
                        "section is not a level the page's contents show"
                    )
                following = cells[position + 1] if position + 1 < len(cells) else {}
                if not (
                    _is_exercise(following)
                    and following["metadata"]["exercise"] == exercise_id
                ):
                    problems.append(
                        f"the heading of {exercise_id} is not followed by its cell"
                    )
                statement = "\n".join(text.split("\n")[line + 1 :]).strip()
                if len(statement.split()) < 12 or headings(statement):
                    problems.append(
                        f"{exercise_id}: no statement between heading and cell"
                    )
                seen[exercise_id] = level
        elif _is_exercise(cell) and cell["metadata"]["exercise"] not in seen:
            problems.append(f"exercise {cell['metadata']['exercise']} has no heading")
    assert problems == []
    assert seen, f"{path.name} has no exercise headings"


@pytest.mark.parametrize(
    "path", [pytest.param(p, id=f"{p.parent.name}/{p.name}") for p in NOTEBOOKS]
)
def test_no_exercise_is_announced_the_old_ways(path):
    for cell in _cells(path):
        if cell.get("cell_type") == "markdown":
            text = _source(cell)
            assert not re.search(r"\*\*Exercise \d", text), text[:200]
            assert not re.search(r"(?m)^Your turn\b", text), text[:200]


def test_the_stylesheet_frames_exactly_the_exercise_sections():
    """Sphinx gives a section the id make_id(heading); the selector must pick those
    only."""
    css = STYLESHEET.read_text("utf-8")
    assert SECTION_SELECTOR in css
    prefix = SECTION_SELECTOR.split('"')[1]
    exercise_ids, other_ids = [], []
    for path in NOTEBOOKS:
        for cell in _cells(path):
            if cell.get("cell_type") == "markdown":
                for _, title, _ in headings(_source(cell)):
                    target = (
                        exercise_ids if EXERCISE_HEADING.match(title) else other_ids
                    )
                    target.append(make_id(title))
    assert exercise_ids and all(i.startswith(prefix) for i in exercise_ids)
    assert [i for i in other_ids if i.startswith(prefix)] == []
    assert "exercises" in other_ids  # an "Exercises" section is not framed


def test_the_book_loads_the_stylesheet_from_its_static_folder():
    config = yaml.safe_load((ROOT / "book" / "_config.yml").read_text("utf-8"))
    sphinx = config["sphinx"]["config"]
    static = [ROOT / folder for folder in sphinx["html_static_path"]]
    assert STYLESHEET.parent in static
    assert STYLESHEET.name in sphinx["html_css_files"]
    assert not re.search(r"url\(|@import|https?:", STYLESHEET.read_text("utf-8"))
