"""``python -m labkit.grade`` / ``labkit-grade``: grade notebooks from the command line.

Prints a report per submission (in the order given) and, for a batch, a progress bar on a
terminal and a summary. ``--json``, ``--csv`` and ``--classroom`` files are rewritten atomically
as submissions finish, so an interrupted batch leaves a complete gradebook of what was graded.
Exit status: 0 when every submission was graded (whatever the scores), 1 when some could not be
read, 2 for a usage error, 3 when the grading workers cannot start, 130 when interrupted (141,
quietly, when the reader of its output goes away, as in ``labkit-grade ... | head``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, TextIO

from .cache import Cache, default_directory
from .grader import Limits, Submission, grade_notebooks, parse_size
from .pool import WorkerStartError, default_jobs
from .report import (
    atomic_write,
    classroom_json,
    format_submission,
    format_summary,
    gradebook_csv,
    gradebook_json,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit-grade",
        description="Grade course notebooks: only their exercise cells, in "
        "sandboxed worker processes, against the cases held by labkit.",
    )
    parser.add_argument(
        "notebooks", nargs="+", metavar="NOTEBOOK", help="submitted notebooks"
    )
    parser.add_argument("--json", metavar="OUT.json", help="write the grades as JSON")
    parser.add_argument(
        "--csv",
        metavar="OUT.csv",
        help="write a gradebook: one row per "
        "submission, one column per exercise, total last",
    )
    parser.add_argument(
        "--classroom",
        metavar="OUT.json",
        help="write the result for GitHub Classroom's autograding reporter",
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
        help="grade every exercise cell "
        "afresh (the cases of the exercises stay cached)",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="print only the summary, not a report per submission",
    )
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    return parser


class _Outputs:
    """The gradebook files, rewritten atomically at most once a second and at the end."""

    def __init__(self, args: argparse.Namespace, total: int):
        self.writers: list[tuple[str, Callable[[list[Submission]], str]]] = [
            (path, render)
            for path, render in (
                (args.json, gradebook_json),
                (args.csv, gradebook_csv),
                (args.classroom, classroom_json),
            )
            if path
        ]
        self.done: list[Submission | None] = [None] * total
        self.written = 0.0

    def add(self, index: int, submission: Submission) -> None:
        self.done[index] = submission
        if time.monotonic() - self.written > 1.0:
            self.write()

    def write(self) -> None:
        finished = [s for s in self.done if s is not None]
        for path, render in self.writers:
            atomic_write(path, render(finished))
        self.written = time.monotonic()


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
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        limits = Limits(timeout=args.timeout, memory=parse_size(args.memory))
        if args.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
        for option in ("json", "csv", "classroom"):
            path = getattr(args, option)
            if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
                raise ValueError(f"--{option}: the folder of {path!r} does not exist")
    except ValueError as exc:
        parser.error(str(exc))
    cache = Cache(args.cache_dir or default_directory(), verdicts=not args.no_cache)
    color = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and "NO_COLOR" not in os.environ
    )
    total = len(args.notebooks)
    outputs = _Outputs(args, total)
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
        submissions = grade_notebooks(
            args.notebooks,
            jobs=args.jobs,
            limits=limits,
            cache=cache,
            on_graded=on_graded,
        )
        progress.clear()
        outputs.write()
        if total > 1:
            print(
                ("" if args.quiet else "\n")
                + format_summary(submissions, time.monotonic() - start)
            )
    except KeyboardInterrupt:
        progress.clear()
        outputs.write()
        print(
            f"interrupted: {sum(s is not None for s in outputs.done)} of {total} submissions "
            "were graded and written",
            file=sys.stderr,
        )
        return 130
    except WorkerStartError as exc:
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
