"""The commands of ``labkit-grade`` besides grading: ``merge``, ``gradescope-bundle``
and ``prepare``.

``labkit-grade merge SHARD.json ... --json OUT.json --csv OUT.csv`` joins the gradebooks
of a sharded run (see ``labkit.grade.merge``) and writes every gradebook format the
grading command writes; it exits with status 1, saying why, when the shards do not add
up to the whole class.

``labkit-grade prepare`` builds the exercises' cases into the cache ahead of grading.

``labkit-grade gradescope-bundle autograder.zip`` writes the zip to upload as a
Gradescope programming assignment's autograder (see ``labkit.grade.gradescope``).
"""

from __future__ import annotations

import argparse
import os
import sys

from labkit.exercises import all_exercises

from . import canvas, gradescope
from .cache import Cache, default_directory
from .merge import MergeError, merge_shards
from .report import atomic_write, format_summary, gradebook_csv, gradebook_json

__all__ = ["bundle_main", "merge_main", "prepare_main"]


def prepare_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="labkit-grade prepare",
        description="Build the test cases of every exercise (or of the chapters named) "
        "into the grader's cache, once, so that no submission waits for them: what the "
        "grader image and the Gradescope set-up run.",
    )
    parser.add_argument("chapters", nargs="*", type=int, metavar="CHAPTER")
    parser.add_argument(
        "--cache-dir", metavar="DIR", help="default: $LABKIT_GRADE_CACHE or ~/.cache"
    )
    args = parser.parse_args(argv)
    exercises = [
        e for e in all_exercises() if not args.chapters or e.chapter in args.chapters
    ]
    if not exercises:
        parser.error(f"no exercises in chapters {args.chapters}")
    cache = Cache(args.cache_dir or default_directory())
    for exercise in exercises:
        cache.cases(exercise)
    print(f"The cases of {len(exercises)} exercises are in {cache.directory}.")
    return 0


def merge_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="labkit-grade merge",
        description="Join the shard gradebooks of a sharded run into one, checking "
        "that every learner was graded exactly once.",
    )
    parser.add_argument("shards", nargs="+", metavar="SHARD.json")
    parser.add_argument("--json", metavar="OUT.json", help="the merged JSON gradebook")
    parser.add_argument("--csv", metavar="OUT.csv", help="the merged CSV gradebook")
    parser.add_argument(
        "--canvas", metavar="OUT.csv", help="a Canvas gradebook to import"
    )
    parser.add_argument("--roster", metavar="ROSTER.csv", help="the Canvas export")
    parser.add_argument("--canvas-column", metavar="NAME")
    args = parser.parse_args(argv)
    if bool(args.canvas) != bool(args.roster):
        parser.error("--canvas and --roster go together")
    for option in ("json", "csv", "canvas"):
        path = getattr(args, option)
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            parser.error(f"--{option}: the folder of {path!r} does not exist")
    try:
        submissions = merge_shards(args.shards)
        outputs = [(args.json, gradebook_json(submissions))]
        outputs.append((args.csv, gradebook_csv(submissions)))
        if args.roster:
            roster = canvas.read_roster(args.roster)
            outputs.append(
                (
                    args.canvas,
                    canvas.canvas_csv(roster, submissions, args.canvas_column),
                )
            )
            if roster.unmatched:
                print(
                    f"labkit-grade merge: {len(roster.unmatched)} graded learner(s) "
                    "are not in the roster",
                    file=sys.stderr,
                )
    except MergeError as exc:
        print(f"labkit-grade merge: {exc}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    for path, content in outputs:
        if path:
            atomic_write(path, content)
    graded = [s for s in submissions if s.error is None]
    print(
        f"Merged {len(args.shards)} shards: {len(submissions)} learners, "
        f"{len(graded)} graded."
    )
    if graded:
        print(format_summary(submissions, float("inf")).split("\n", 1)[-1])
    return 0


def bundle_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="labkit-grade gradescope-bundle",
        description="Write the autograder zip of a Gradescope programming assignment: "
        "setup.sh, run_autograder and this labkit's source.",
    )
    parser.add_argument("out", metavar="OUT.zip")
    parser.add_argument(
        "--source",
        metavar="DIR",
        help="the labkit checkout to ship (default: this one)",
    )
    parser.add_argument(
        "--grade-options",
        default="",
        metavar="OPTIONS",
        help="extra labkit-grade options for run_autograder, e.g. '--timeout 30'",
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        parser.error(f"the folder of {args.out!r} does not exist")
    try:
        names = gradescope.bundle(args.out, args.source, args.grade_options)
    except ValueError as exc:
        parser.error(str(exc))
    print(
        f"Wrote {args.out}: setup.sh, run_autograder and {len(names) - 2} files of "
        "labkit. Upload it as the autograder of a Gradescope programming assignment."
    )
    return 0
