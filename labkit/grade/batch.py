"""Grading a class: collect the submissions (``inputs``), keep this machine's shard,
grade every notebook with ``grade_notebooks``, and join each learner's notebooks into
one ``Submission``.

A learner who handed in several notebooks gets one grade: the exercises of all of them,
each counted once. When two notebooks hold the same exercise the better result counts
and a note says so. A notebook that cannot be read, and a file that is not a notebook,
become notes on the learner's submission; a learner with nothing gradable gets an error
saying what was handed in.

Sharding splits a class across machines: ``Shard(k, n)`` keeps the learners whose key
hashes to shard ``k`` of ``n`` (``inputs.shard_of``), the same share whatever the order
of the inputs, so ``n`` machines given the same command with ``k = 1..n`` grade every
learner exactly once. ``ShardInfo`` records what ``labkit-grade merge`` needs to check
that.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

from labkit.exercises.scoring import Result

from .grader import Submission, grade_notebooks
from .sandbox import default_isolation
from .inputs import Bounds, Learner, Submitted, collect, shard_of

__all__ = ["ClassBatch", "Shard", "ShardInfo", "combine", "grade_class", "keys_digest"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not (1 <= self.index <= self.count):
            raise ValueError(
                f"shard must be K/N with 1 <= K <= N, got {self.index}/{self.count}"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``Shard.parse("2/8")``; a clear ValueError for anything else."""
        match = _SHARD.match(text)
        if not match:
            raise ValueError(f"shard must look like K/N (e.g. 2/8), got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))


@dataclass(frozen=True)
class ShardInfo:
    """What a shard's gradebook records about the whole class and its own share."""

    index: int
    count: int
    learners: int  # in the whole class
    digest: str  # of every learner key in the class (``keys_digest``)
    keys: tuple[str, ...]  # this shard's learners, in gradebook order
    positions: tuple[int, ...]  # their places in the class, in input order

    def as_dict(self) -> dict:
        return {
            "index": self.index,
            "count": self.count,
            "learners": self.learners,
            "digest": self.digest,
            "keys": list(self.keys),
            "positions": list(self.positions),
        }


def keys_digest(keys: list[str]) -> str:
    """A digest of a set of learner keys, independent of their order."""
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(key.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


class ClassBatch:
    """The learners of ``paths`` in this machine's shard, ready to grade; a context
    manager (it owns the folder archives are extracted to).

    ``total`` is the number of learners to grade here; ``info`` the ShardInfo (None
    without a shard); ``grade`` returns one ``Submission`` per learner, in input order.
    ``single`` grades every input as the files of one learner.
    """

    def __init__(
        self,
        paths: list[str],
        shard: Shard | None = None,
        bounds: Bounds | None = None,
        single: bool = False,
    ):
        mine = None
        if shard is not None:

            def mine(learner: Learner) -> bool:
                return shard_of(learner.key, shard.count) == shard.index

        self._found = collect(paths, bounds, mine)
        if single:  # every input is one learner's, as on Gradescope
            self._found.join_all()
        everyone = self._found.learners
        self._mine = [
            (position, s)
            for position, s in enumerate(everyone)
            if shard is None or shard_of(s.learner.key, shard.count) == shard.index
        ]
        self.total = len(self._mine)
        self.info = None
        if shard is not None:
            self.info = ShardInfo(
                shard.index,
                shard.count,
                len(everyone),
                keys_digest([s.learner.key for s in everyone]),
                tuple(s.learner.key for _, s in self._mine),
                tuple(position for position, _ in self._mine),
            )

    def __enter__(self) -> ClassBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self._found.close()

    @property
    def problems(self) -> list[tuple[str, str]]:
        return self._found.problems

    def grade(
        self,
        *,
        jobs: int | None = None,
        limits=None,
        cache=None,
        on_graded: Callable[[int, Submission], None] | None = None,
        isolation: str | None = None,
    ) -> list[Submission]:
        """Grade every learner here; ``on_graded(index, submission)`` is called as each
        learner's last notebook is graded (``index`` counts learners in input order);
        ``isolation`` as in ``grade_notebooks``."""
        mine = [s for _, s in self._mine]
        notebooks = [
            (number, entry.path)
            for number, s in enumerate(mine)
            for entry in s.files
            if entry.path is not None
        ]
        waiting = [sum(e.path is not None for e in s.files) for s in mine]
        graded: dict[str, Submission] = {}
        done: list[Submission | None] = [None] * len(mine)

        isolation = isolation or default_isolation()

        def finished(number: int) -> None:
            done[number] = combine(mine[number], graded)
            done[number].isolation = isolation
            if on_graded is not None:
                on_graded(number, done[number])

        def notebook_done(index: int, submission: Submission) -> None:
            number, path = notebooks[index]
            graded[path] = submission
            waiting[number] -= 1
            if waiting[number] == 0:
                finished(number)

        for number, count in enumerate(waiting):
            if count == 0:
                finished(number)
        if notebooks:
            grade_notebooks(
                [path for _, path in notebooks],
                jobs=jobs,
                limits=limits,
                cache=cache,
                on_graded=notebook_done,
                isolation=isolation,
            )
        return [s for s in done if s is not None]


def grade_class(
    paths: list[str],
    *,
    shard: Shard | None = None,
    bounds: Bounds | None = None,
    **options,
) -> tuple[list[Submission], ShardInfo | None]:
    """One ``Submission`` per learner of ``paths`` (in ``shard``), in input order, and
    the shard's ShardInfo; ``options`` go to ``ClassBatch.grade``."""
    with ClassBatch(paths, shard, bounds) as batch:
        return batch.grade(**options), batch.info


def combine(submitted: Submitted, graded: dict[str, Submission]) -> Submission:
    """One learner's files as one submission (``graded``: notebook path -> grade)."""
    learner, entries = submitted.learner, submitted.files
    several = len(entries) > 1
    notebooks = [e for e in entries if e.path is not None]
    label = ", ".join(e.label for e in (notebooks or entries))
    who = {
        "learner_id": learner.id,
        "learner_name": learner.name,
        "files": [e.label for e in notebooks],
    }
    if learner.id is None and len(notebooks) == 1 and not several:
        single = graded[notebooks[0].path]
        single.path, single.files = notebooks[0].label, [notebooks[0].label]
        return single
    notes = _other_files(entries)
    best: dict[str, tuple[Result, str]] = {}
    for entry in entries:
        if entry.path is None:
            continue
        submission = graded[entry.path]
        prefix = f"{entry.label}: " if several else ""
        if submission.error is not None:
            notes.append(f"{prefix}could not be graded: {submission.error}")
            continue
        notes += [prefix + w for w in submission.warnings]
        for result in submission.exercises:
            known = best.get(result.id)
            if known is not None:
                keep = (
                    known if known[0].score >= result.score else (result, entry.label)
                )
                notes.append(
                    f"exercise {result.id} is in {known[1]} and in {entry.label}; "
                    f"the better result ({keep[0].score:g} points, {keep[1]}) counts"
                )
                best[result.id] = keep
            else:
                best[result.id] = (result, entry.label)
    if not best and not notebooks:
        problems = "; ".join(f"{e.label}: {e.problem}" for e in entries)
        return Submission(label, error=f"no notebook was handed in ({problems})", **who)
    if not best:
        reason = "none of the notebooks handed in could be graded"
        return Submission(label, error=reason, warnings=notes, **who)
    results = [best[i][0] for i in sorted(best, key=_exercise_order)]
    return Submission(
        label,
        round(sum(r.score for r in results), 2),
        sum(r.max_score for r in results),
        results,
        None,
        notes,
        **who,
    )


def _other_files(entries: list) -> list[str]:
    """Notes on the files that were not graded: each one, or, past a few plain
    non-notebooks (a cloned repository's README, its code), one note naming some."""
    skipped = [e for e in entries if e.path is None]
    plain = [e for e in skipped if e.problem.startswith("not a notebook")]
    notes = [f"{e.label}: {e.problem}" for e in skipped if e not in plain]
    if len(plain) <= _LISTED:
        return [f"{e.label}: {e.problem}" for e in plain] + notes
    names = ", ".join(e.label for e in plain[:_LISTED])
    more = len(plain) - _LISTED
    return [
        f"{len(plain)} files are not notebooks and were not graded: {names} and "
        f"{more} more",
        *notes,
    ]


_LISTED = 5


def _exercise_order(exercise_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in exercise_id.split("."))
