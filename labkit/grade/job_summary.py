"""A Markdown summary of graded submissions, for a CI run's page (GitHub Actions reads
it from the file named by ``$GITHUB_STEP_SUMMARY``).

Per submission: the total, then a table with one row per exercise (points, status, and
the feedback of any exercise not fully passed). Everything that comes from a submission
is escaped for Markdown and HTML, so a file name or a returned value quoted in feedback
cannot add links, images or markup to the page.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

from .report import printable

if TYPE_CHECKING:  # pragma: no cover
    from .grader import Submission

__all__ = ["job_summary", "md"]

_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:>])")
_MAX_FEEDBACK = 600
MAX_CHARS = 900_000


def md(text: object, limit: int | None = None) -> str:
    """``text`` as inert Markdown on one line: HTML-escaped, punctuation escaped."""
    flat = " ".join(printable(str(text)).split())
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return _PUNCTUATION.sub(r"\\\1", html.escape(flat, quote=True))


def job_summary(
    submissions: list[Submission], heading: str = "Grades", limit: int = MAX_CHARS
) -> str:
    """The Markdown of one run: a heading, then a section per submission, as many as
    fit in ``limit`` bytes (GitHub refuses a job summary over 1 MiB); a last line says
    how many did not fit."""
    out = [f"## {md(heading)}\n\n"]
    size = len(out[0])
    for shown, s in enumerate(submissions):
        section = _section(s)
        size += len(section.encode("utf-8", "surrogateescape"))
        if size > limit:
            left = len(submissions) - shown
            return "".join(out) + f"{left} more submissions: see the gradebook.\n"
        out.append(section)
    return "".join(out)


def _section(s: Submission) -> str:
    who = s.learner_name or s.learner_id
    title = md(s.path) + (f" ({md(who)})" if who else "")
    if s.error is not None:
        return f"### {title}: not graded\n\n{md(s.error)}\n\n"
    out = [
        f"### {title}: {s.score:g} / {s.max_score:g} points",
        "",
        "| exercise | points | status | feedback |",
        "|---|---:|---|---|",
    ]
    for r in s.exercises:
        feedback = "" if r.status == "passed" else md(r.feedback, _MAX_FEEDBACK)
        out.append(
            f"| {md(r.id)} {md(r.title)} | {r.score:g} / {r.max_score:g} | "
            f"{md(r.status.replace('_', ' '))} | {feedback} |"
        )
    out.append("")
    out += [f"- note: {md(w, _MAX_FEEDBACK)}" for w in s.warnings]
    return "\n".join(out) + ("\n\n" if s.warnings else "\n")
