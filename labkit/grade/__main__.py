"""``python -m labkit.grade`` / ``labkit-grade``: grade notebooks from the command line.

Inputs are notebooks, folders and ``.zip`` archives (Canvas and Moodle bulk downloads
included); each learner's notebooks are graded as one submission (see ``inputs``).
Prints a report per submission (in the order given) and, for a batch, a progress bar on
a terminal and a summary. The ``--json``, ``--csv``, ``--canvas`` and ``--gradescope``
files are rewritten atomically as submissions finish, so an interrupted batch leaves a
complete gradebook of what was graded; ``--feedback`` writes a page per learner as each
is graded.

More commands: ``labkit-grade merge SHARD.json ...`` joins the gradebooks of a sharded
run (``labkit.grade.merge``), ``labkit-grade gradescope-bundle OUT.zip`` writes a
Gradescope autograder (``labkit.grade.gradescope``), and ``labkit-grade prepare`` builds
the exercises' cases into the cache ahead of grading. Exit status: 0 when every
submission was graded (whatever the scores), 1 when some could not be read, 2 for a
usage error, 3 when the grading workers cannot start (bubblewrap missing or unable to
sandbox: the message says how to install it, or to pass ``--isolation none`` for your
own work), 130 when interrupted (141, quietly, when the reader of its output goes away,
as in ``labkit-grade ... | head``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Callable, TextIO

from . import canvas, feedback_html, gradescope, job_summary
from .batch import ClassBatch, Shard
from .cache import Cache, default_directory
from .grader import Limits, Submission, parse_size
from .pool import WorkerStartError, default_jobs
from .sandbox import INSTALL, ISOLATIONS, IsolationError, default_isolation, problem
from .report import (
    atomic_write,
    format_submission,
    format_summary,
    gradebook_csv,
    gradebook_json,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit-grade",
        description="Grade course notebooks: only their exercise cells, each notebook "
        "in a sandbox of its own, against the cases held by labkit.",
    )
    parser.add_argument(
        "notebooks",
        nargs="+",
        metavar="INPUT",
        help="submitted notebooks, folders of them, or .zip archives (Canvas and "
        "Moodle bulk downloads included)",
    )
    parser.add_argument("--json", metavar="OUT.json", help="write the grades as JSON")
    parser.add_argument(
        "--csv",
        metavar="OUT.csv",
        help="write a gradebook: one row per "
        "submission, one column per exercise, total last",
    )
    parser.add_argument(
        "--canvas",
        metavar="OUT.csv",
        help="write a gradebook to import into Canvas, filled from --roster",
    )
    parser.add_argument(
        "--roster",
        metavar="ROSTER.csv",
        help="the gradebook exported from Canvas (Grades, Export) that --canvas fills",
    )
    parser.add_argument(
        "--canvas-column",
        metavar="NAME",
        help="the roster's assignment column to fill, e.g. 'Notebook 5 (1234)' "
        "(default: the only assignment column)",
    )
    parser.add_argument(
        "--gradescope",
        metavar="OUT.json",
        help="grade every input as ONE submission and write Gradescope's results.json",
    )
    parser.add_argument(
        "--feedback",
        metavar="DIR",
        help="write one self-contained HTML feedback page per learner into DIR",
    )
    parser.add_argument(
        "--summary",
        metavar="FILE",
        help="append a Markdown summary to FILE (e.g. $GITHUB_STEP_SUMMARY)",
    )
    parser.add_argument(
        "--shard",
        metavar="K/N",
        help="grade only shard K of N (1 <= K <= N): the learners whose id hashes "
        "to K, the same share on every machine; --json then writes a shard "
        "gradebook for 'labkit-grade merge'",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=default_jobs(),
        metavar="N",
        help="worker processes (default: every core, here %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=Limits.timeout,
        metavar="SECONDS",
        help="wall-clock limit per exercise (default %(default)g)",
    )
    parser.add_argument(
        "--memory",
        default="2G",
        metavar="SIZE",
        help="memory limit per exercise, e.g. 512M or 2G (default %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where to cache cases and verdicts "
        "(default: "
        "$LABKIT_GRADE_CACHE or ~/.cache/labkit/grade)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="grade every exercise cell afresh and write nothing to the cache "
        "(cases already cached are still read, once they verify)",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print only the summary, not a report per submission",
    )
    parser.add_argument(
        "--isolation",
        choices=ISOLATIONS,
        default=default_isolation(),
        help="how submitted code runs: in a bubblewrap sandbox (bwrap, the default on "
        "Linux) or as a plain process (none: only for your own work) "
        "(default %(default)s)",
    )
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    return parser


class _Outputs:
    """The gradebook files, rewritten atomically at most once a second and at the
    end."""

    def __init__(self, args: argparse.Namespace, batch: ClassBatch, roster):
        start = time.monotonic()
        json_render = gradebook_json
        if batch.info is not None:
            json_render = lambda done: _shard_json(batch.info, done)  # noqa: E731
        self.writers: list[tuple[str, Callable[[list[Submission]], str]]] = [
            (path, render)
            for path, render in (
                (args.json, json_render),
                (args.csv, gradebook_csv),
                (
                    args.canvas,
                    lambda done: canvas.canvas_csv(roster, done, args.canvas_column),
                ),
                (
                    args.gradescope,
                    lambda done: (
                        gradescope.results_json(done[0], time.monotonic() - start)
                        if done
                        else None
                    ),
                ),
            )
            if path
        ]
        self.feedback, self.roster = args.feedback, roster
        self.done: list[Submission | None] = [None] * batch.total
        self.written = 0.0

    def add(self, index: int, submission: Submission) -> None:
        self.done[index] = submission
        if self.roster is not None:  # its names read better than a download's
            submission.learner_name = (
                self.roster.student(submission.learner_id) or submission.learner_name
            )
        if self.feedback:
            feedback_html.write_page(self.feedback, submission)
        if time.monotonic() - self.written > 1.0:
            self.write()

    def write(self) -> None:
        finished = [s for s in self.done if s is not None]
        for path, render in self.writers:
            content = render(finished)
            if content is not None:
                atomic_write(path, content)
        self.written = time.monotonic()


def _shard_json(info, submissions: list[Submission]) -> str:
    """A shard's gradebook: its record for ``labkit-grade merge``, its submissions."""
    return (
        json.dumps(
            {
                "shard": info.as_dict(),
                "submissions": [s.as_dict() for s in submissions],
            },
            indent=2,
            allow_nan=False,
        )
        + "\n"
    )


class _Progress:
    """A one-line progress bar on a terminal's stderr; silent anywhere else."""

    def __init__(self, total: int, stream: TextIO):
        self.total, self.stream, self.done = total, stream, 0
        self.active = total > 1 and stream.isatty()
        self.start = time.monotonic()

    def advance(self) -> None:
        self.done += 1
        self.draw()

    def draw(self) -> None:
        if not self.active:
            return
        elapsed = time.monotonic() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = f"{(self.total - self.done) / rate:.0f} s left" if rate else ""
        filled = 30 * self.done // self.total
        self.stream.write(
            f"\r\033[K[{'#' * filled}{'.' * (30 - filled)}] {self.done}/"
            f"{self.total}  {rate:.1f}/s  {eta}"
        )
        self.stream.flush()

    def clear(self) -> None:
        if self.active:
            self.stream.write("\r\033[K")
            self.stream.flush()


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["merge"]:
        from .commands import merge_main

        return merge_main(argv[1:])
    if argv[:1] == ["gradescope-bundle"]:
        from .commands import bundle_main

        return bundle_main(argv[1:])
    if argv[:1] == ["prepare"]:
        from .commands import prepare_main

        return prepare_main(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        limits = Limits(timeout=args.timeout, memory=parse_size(args.memory))
        if args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
        inputs = {os.path.realpath(path) for path in args.notebooks}
        for option in ("json", "csv", "canvas", "gradescope", "summary"):
            path = getattr(args, option)
            if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                raise ValueError(f"--{option}: the folder of {path!r} does not exist")
            if path and os.path.realpath(path) in inputs:
                raise ValueError(f"--{option}: {path!r} is a submission to grade")
        if args.feedback and not os.path.isdir(args.feedback):
            raise ValueError(f"--feedback: {args.feedback!r} is not a folder")
        if bool(args.canvas) != bool(args.roster):
            raise ValueError("--canvas and --roster go together")
        roster = canvas.read_roster(args.roster) if args.roster else None
        if roster is not None:
            canvas.canvas_csv(roster, [], args.canvas_column)  # the column exists
        shard = Shard.parse(args.shard) if args.shard else None
        if shard is not None and args.gradescope:
            raise ValueError("--gradescope grades one submission; it takes no --shard")
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    if args.isolation == "bwrap" and problem() is not None:
        print(
            f"labkit-grade: cannot sandbox the submissions: {problem()}; {INSTALL}",
            file=sys.stderr,
        )
        return 3
    cache = Cache(
        args.cache_dir or default_directory(),
        verdicts=not args.no_cache,
        write=not args.no_cache,
    )
    for stream in (sys.stdout, sys.stderr):  # a name that is not UTF-8 still prints
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    color = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    with ClassBatch(args.notebooks, shard, single=bool(args.gradescope)) as batch:
        return _run(args, batch, roster, limits, cache, color)


def _run(args, batch: ClassBatch, roster, limits, cache, color: bool) -> int:
    total = batch.total
    outputs = _Outputs(args, batch, roster)
    progress = _Progress(total, sys.stderr)
    reported = [0]

    def on_graded(index: int, submission: Submission) -> None:
        outputs.add(index, submission)
        progress.advance()
        while reported[0] < total and outputs.done[reported[0]] is not None:
            if not args.quiet:
                progress.clear()
                print(
                    format_submission(outputs.done[reported[0]], color=color),
                    flush=True,
                )
            reported[0] += 1
        progress.draw()

    start = time.monotonic()
    try:
        submissions = batch.grade(
            jobs=args.jobs,
            limits=limits,
            cache=cache,
            on_graded=on_graded,
            isolation=args.isolation,
        )
        progress.clear()
        outputs.write()
        if total > 1:
            print(
                ("" if args.quiet else "\n")
                + format_summary(submissions, time.monotonic() - start)
            )
        if batch.info is not None:
            print(
                f"Shard {batch.info.index}/{batch.info.count}: {total} of the class's "
                f"{batch.info.learners} learners."
            )
        if roster is not None and roster.unmatched:
            names = ", ".join(s.learner_id or s.path for s in roster.unmatched[:10])
            print(
                f"labkit-grade: {len(roster.unmatched)} graded learner(s) are not in "
                f"the roster, so not in {args.canvas}: {names}",
                file=sys.stderr,
            )
        if args.summary:
            with open(args.summary, "a", encoding="utf-8") as f:
                f.write(job_summary.job_summary(submissions))
    except KeyboardInterrupt:
        progress.clear()
        outputs.write()
        print(
            f"interrupted: {sum(s is not None for s in outputs.done)} of {total} "
            "submissions "
            "were graded and written",
            file=sys.stderr,
        )
        return 130
    except (WorkerStartError, IsolationError) as exc:
        progress.clear()
        outputs.write()
        print(f"labkit-grade: {exc}", file=sys.stderr)
        return 3
    except BrokenPipeError:  # `labkit-grade ... | head`: stop quietly, like other tools
        outputs.write()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return 0 if all(s.error is None for s in submissions) else 1


if __name__ == "__main__":
    sys.exit(main())
