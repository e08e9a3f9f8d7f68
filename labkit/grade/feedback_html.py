"""One HTML feedback page per learner: the score of each exercise, what failed on which
input, the known mistake recognised and the first hint.

A page is a single file with its style inline: it reads offline, from a disk, an e-mail
or an LMS's file area, and holds no script at all (its Content-Security-Policy forbids
scripts and every fetch, so nothing in it can run or call out). Everything that comes
from a submission (file names, feedback quoting returned values, warnings) is
HTML-escaped, control characters included, so a submission cannot add markup to its own
page.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from typing import TYPE_CHECKING

from labkit.exercises import get

from .report import atomic_write, printable

if TYPE_CHECKING:  # pragma: no cover
    from .grader import Submission

__all__ = ["feedback_page", "page_name", "write_page"]

_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'"
)
_STATUS = {
    "passed": ("passed", "#1a7f37"),
    "partial": ("partial", "#9a6700"),
    "failed": ("failed", "#cf222e"),
    "error": ("error", "#cf222e"),
    "timeout": ("time-out", "#cf222e"),
    "memory": ("out of memory", "#cf222e"),
    "not_attempted": ("not attempted", "#57606a"),
}
_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 52rem; margin: 2rem auto;
       padding: 0 1rem; color: #1f2328; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #d0d7de; }
td.points { text-align: right; white-space: nowrap; }
.status { font-weight: 600; }
section { border: 1px solid #d0d7de; border-radius: 6px; padding: .2rem 1rem 1rem;
          margin: 1rem 0; }
h2 { font-size: 1.15rem; }
pre, code { font: 14px/1.4 ui-monospace, monospace; white-space: pre-wrap;
            overflow-wrap: anywhere; }
.hint, .mistake { border-left: 4px solid #0969da; padding: .2rem .8rem; background:
#f6f8fa; } .mistake { border-color: #9a6700; } .note { color: #57606a; }
"""


def _e(text: object) -> str:
    return html.escape(printable(str(text)), quote=True)


def page_name(submission: Submission) -> str:
    """The page's file name: readable, safe, the same on every machine of a run."""
    who = (
        submission.learner_name
        or submission.learner_id
        or os.path.basename(submission.path)
    )
    slug = re.sub(r"[^A-Za-z0-9]+", "-", who).strip("-").lower()[:40] or "submission"
    key = (
        submission.learner_id if submission.learner_id is not None else submission.path
    )
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return f"{slug}-{digest}.html"


def write_page(folder: str | os.PathLike, submission: Submission) -> str:
    """Write the page of ``submission`` into ``folder`` atomically; return its path."""
    path = os.path.join(os.fspath(folder), page_name(submission))
    atomic_write(path, feedback_page(submission))
    return path


def feedback_page(submission: Submission) -> str:
    """The complete HTML page of one submission."""
    who = submission.learner_name or submission.learner_id
    title = f"Feedback for {who}" if who else "Feedback"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{_e(title)}</h1>",
    ]
    if submission.learner_id is not None:
        parts.append(f'<p class="note">Learner id: {_e(submission.learner_id)}</p>')
    files = submission.files or [submission.path]
    parts.append(
        '<p class="note">Graded: '
        + ", ".join(f"<code>{_e(os.path.basename(f))}</code>" for f in files)
        + "</p>"
    )
    if submission.error is not None:
        parts.append(
            f'<p id="total"><strong>Could not be graded:</strong> '
            f"{_e(submission.error)}</p>"
        )
    else:
        parts.append(
            f'<p id="total"><strong>Total: {submission.score:g} of '
            f"{submission.max_score:g} points</strong></p>"
        )
        parts += _table(submission)
        parts += [_exercise(result) for result in submission.exercises]
    if submission.warnings:
        parts.append("<h2>Notes</h2>")
        parts.append(
            '<ul class="notes">'
            + "".join(f"<li>{_e(w)}</li>" for w in submission.warnings)
            + "</ul>"
        )
    parts += [
        '<p class="note">Written by labkit-grade. The points are the grader\'s '
        "verdict on "
        "the exercise cells only; every other cell was ignored.</p>",
        "</main>",
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


def _table(submission: Submission) -> list[str]:
    rows = [
        '<table id="scores">',
        "<thead><tr><th>Exercise</th><th>Title</th><th>Points</th><th>Status</th>"
        "</tr></thead>",
        "<tbody>",
    ]
    for r in submission.exercises:
        word, color = _STATUS.get(r.status, (r.status, "#1f2328"))
        rows.append(
            f'<tr data-exercise="{_e(r.id)}">'
            f'<td><a href="#ex-{_e(r.id)}">{_e(r.id)}</a>'
            f"</td><td>{_e(r.title)}</td>"
            f'<td class="points">{r.score:g} / {r.max_score:g}</td>'
            f'<td class="status" style="color:{color}">{_e(word)}</td></tr>'
        )
    rows += ["</tbody>", "</table>"]
    return rows


def _exercise(result) -> str:
    word, color = _STATUS.get(result.status, (result.status, "#1f2328"))
    out = [
        f'<section id="ex-{_e(result.id)}" class="exercise">',
        f"<h2>Exercise {_e(result.id)}: {_e(result.title)}</h2>",
        f'<p><span class="status" style="color:{color}">{_e(word)}</span>, '
        f"{result.score:g} of {result.max_score:g} points</p>",
    ]
    if result.status == "passed":
        out.append(f"<p>{_e(result.feedback)}</p>")
    else:
        failing = [(label, why) for label, why in result.cases if why is not None]
        if failing:
            out.append('<p>Failed on these inputs:</p><ul class="cases">')
            out += [
                f"<li><strong>{_e(label)}</strong>: <code>{_e(why)}</code></li>"
                for label, why in failing
            ]
            out.append("</ul>")
        else:
            out.append(f'<p class="feedback">{_e(result.feedback)}</p>')
        mistake = _mistake(result)
        if mistake:
            out.append(f'<div class="mistake"><p>{mistake}</p></div>')
        hint = _first_hint(result.id)
        if hint:
            out.append(
                f'<div class="hint"><p><strong>Hint:</strong> {_e(hint)}</p></div>'
            )
    out.append("</section>")
    return "\n".join(out)


def _exercise_of(exercise_id: str):
    try:
        return get(exercise_id)
    except ValueError:
        return None


def _first_hint(exercise_id: str) -> str:
    """The first tier of the exercise's hints: the idea, never the recipe."""
    exercise = _exercise_of(exercise_id)
    if exercise is None:
        return ""
    hints = getattr(exercise, "hints", None) or (getattr(exercise, "hint", "") or None,)
    return hints[0] or ""


def _mistake(result) -> str:
    """The known mistake the result was recognised as, escaped, with where to reread."""
    mistake_id = getattr(result, "mistake", None)
    if not mistake_id:
        return ""
    exercise = _exercise_of(result.id)
    for mistake in getattr(exercise, "mistakes", ()) or ():
        if mistake.id == mistake_id:
            return (
                f"<strong>A known mistake:</strong> {_e(mistake.description)} "
                f"Reread {_e(mistake.section)}."
            )
    return f"<strong>A known mistake:</strong> {_e(mistake_id)}."
