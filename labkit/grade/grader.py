"""Grading notebooks: which exercises a notebook owes, which verdicts are cached, the
rest run by the workers, and every output judged here, by the same scoring as the
learner's ``check``.

A notebook owes every registered exercise of its chapter: the chapter its file name
starts with (``05_optimizers.ipynb``), or else the chapters of the exercise cells it
contains. An exercise without a cell scores zero as ``not_attempted``. A notebook with
no exercise cell and no chapter in its name, or a file that is not a notebook, is
reported as unreadable with the reason.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from labkit.exercises import Case, Exercise, chapter_exercises, get
from labkit.exercises.scoring import Outcome, Result, failure, summarise

from . import channel
from .cache import Cache, default_directory
from .notebook import (
    ExerciseCell,
    NotebookError,
    chapter_from_name,
    read_exercise_cells,
)
from .pool import WorkerLost, WorkerPool, default_jobs
from .report import printable
from .sandbox import ISOLATIONS, default_isolation

__all__ = ["Limits", "Submission", "grade_notebooks", "grade_source", "parse_size"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)
_MEMORY_WORDS = (
    "memoryerror",
    "bad_alloc",
    "cannot allocate memory",
    "out of memory",
    "can't allocate memory",
)


def parse_size(size: int | str) -> int:
    """Bytes from ``2147483648``, ``"2G"``, ``"512M"``, ``"1.5GiB"`` (powers of
    1024)."""
    if isinstance(size, int) and not isinstance(size, bool):
        value = size
    else:
        match = _SIZE.match(str(size))
        if not match:
            raise ValueError(f"memory must be a size like '2G' or '512M', got {size!r}")
        value = int(
            float(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " ")
        )
    if value <= 0:
        raise ValueError(f"memory must be positive, got {size!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """What one exercise may use: wall-clock seconds, memory and output bytes, reply
    bytes."""

    timeout: float = 10.0
    memory: int = 2 * 2**30
    output: int = 2**20
    reply: int = 4 * 2**20  # 200 times what the largest exercise needs (20 KiB)

    def __post_init__(self) -> None:
        if not (
            isinstance(self.timeout, (int, float))
            and not isinstance(self.timeout, bool)
            and 0 < self.timeout < 86400
        ):
            raise ValueError(
                f"timeout must be a number of seconds in (0, 86400), got "
                f"{self.timeout!r}"
            )
        for name in ("memory", "output", "reply"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(
                    f"{name} must be a positive number of bytes, got {value!r}"
                )

    def request(self) -> dict:
        return {
            "timeout": float(self.timeout),
            "memory": self.memory,
            "output": self.output,
            "reply": self.reply,
        }


@dataclass
class Submission:
    """The grade of one submission; ``error`` says why it could not be graded.

    A submission is one notebook, or every notebook of one learner (see
    ``labkit.grade.batch``): then ``learner_id`` and ``learner_name`` say who, when the
    LMS said so, and ``files`` lists the notebooks graded.
    """

    path: str
    score: float = 0.0
    max_score: int = 0
    exercises: list[Result] = field(default_factory=list)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    learner_id: str | None = None
    learner_name: str | None = None
    files: list[str] = field(default_factory=list)
    isolation: str = ""  # how its code ran: "bwrap" or "none"

    def as_dict(self) -> dict:
        learner = (
            {}
            if self.learner_id is None
            else {
                "learner_id": self.learner_id,
                "learner_name": self.learner_name,
                "files": list(self.files),
            }
        )
        return {
            "submission": self.path,
            **learner,
            "score": self.score,
            "max_score": self.max_score,
            "exercises": [r.as_dict() for r in self.exercises],
            "error": self.error,
            "warnings": list(self.warnings),
            "isolation": self.isolation,
        }

    def __repr__(self) -> str:
        if self.error is not None:
            return f"Submission({self.path!r}, error={self.error!r})"
        return (
            f"Submission({self.path!r}, score={self.score:g}, "
            f"max_score={self.max_score})"
        )


@dataclass
class _Plan:
    """A submission on its way: its cells, the exercises it owes, the verdicts found so
    far."""

    path: str
    cells: dict[str, ExerciseCell] = field(default_factory=dict)
    exercises: list[Exercise] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    pending: list[tuple[Exercise, ExerciseCell, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    key: str | None = None  # of the whole notebook's verdict in the cache
    cached: Submission | None = None
    lasting: bool = True  # would a re-run give the same verdicts?
    isolation: str = ""

    def submission(self) -> Submission:
        if self.cached is not None:
            return self.cached
        if self.error is not None:
            return Submission(
                self.path,
                error=self.error,
                warnings=self.warnings,
                isolation=self.isolation,
            )
        results = [self.results[e.id] for e in self.exercises]
        return Submission(
            self.path,
            round(sum(r.score for r in results), 2),
            sum(e.points for e in self.exercises),
            results,
            None,
            self.warnings,
            isolation=self.isolation,
        )


def grade_notebooks(
    paths: Iterable[str | os.PathLike],
    *,
    jobs: int | None = None,
    limits: Limits | None = None,
    cache: Any = None,
    on_graded: Callable[[int, Submission], None] | None = None,
    isolation: str | None = None,
) -> list[Submission]:
    """Grade each notebook; one ``Submission`` per path, in the order given.

    ``jobs`` worker slots (default: every core); ``cache`` is a ``Cache``, a
    directory, True for the default one, or None/False for none;
    ``on_graded(index, submission)`` is called as each submission is finished (in
    completion order) from the calling thread. ``isolation`` is "bwrap" (the default
    on Linux: ``sandbox``) or "none".
    """
    limits = limits or Limits()
    jobs = default_jobs() if jobs is None else jobs
    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    isolation = isolation or default_isolation()
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    store = _cache(cache)
    plans = [_read(os.fsdecode(path)) for path in paths]
    for plan in plans:
        plan.isolation = isolation
    for plan in (
        plans
    ):  # a notebook graded before, unchanged, needs neither exercises nor workers
        if plan.error is None:
            plan.key = store.notebook_key(
                plan.path, _cell_sources(plan), plan.warnings, (limits, isolation)
            )
            known = store.get_notebook(plan.key)
            if known is not None:
                plan.cached = Submission(
                    plan.path,
                    known["score"],
                    known["max_score"],
                    known["exercises"],
                    None,
                    known["warnings"],
                    isolation=isolation,
                )
    for index, plan in enumerate(plans):
        if (
            plan.cached is not None or plan.error is not None
        ) and on_graded is not None:
            on_graded(index, plan.submission())
    todo = [p for p in plans if p.cached is None and p.error is None]
    to_resolve = {id(p) for p in todo}
    pools = _Pools(min(jobs, max(1, sum(bool(p.cells) for p in todo))), isolation)
    try:
        if any(p.cells for p in todo):  # start now: the worker's imports overlap ...
            pools.get(Exercise.modules)  # ... with loading the exercises here
        for plan in todo:
            _resolve(plan, store, (limits, isolation))
        pools.keep({e.modules for p in todo for e, _, _ in p.pending})
        for index, plan in enumerate(plans):
            if id(plan) in to_resolve and not plan.pending:
                _finished(plan, store)
                if on_graded is not None:
                    on_graded(index, plan.submission())
        waiting = [i for i, p in enumerate(plans) if p.pending]
        if waiting:
            _run_all(pools, plans, waiting, limits, store, on_graded)
    finally:
        pools.close()
    return [plan.submission() for plan in plans]


class _Pools:
    """One pool of worker slots per set of allowed modules (each sandbox shows only
    those), started on first use."""

    def __init__(self, size: int, isolation: str):
        self.size, self.isolation = size, isolation
        self._pools: dict[tuple[str, ...], WorkerPool] = {}
        self._lock = threading.Lock()

    def get(self, modules: tuple[str, ...]) -> WorkerPool:
        with self._lock:
            if modules not in self._pools:
                self._pools[modules] = WorkerPool(self.size, modules, self.isolation)
            return self._pools[modules]

    def keep(self, needed: set[tuple[str, ...]]) -> None:
        """Close the pools no pending exercise needs."""
        with self._lock:
            for modules in [m for m in self._pools if m not in needed]:
                self._pools.pop(modules).close()

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


_WARM: dict[tuple[tuple[str, ...], str], WorkerPool] = {}
_WARM_LOCK = threading.Lock()


def grade_source(
    exercise: Exercise,
    source: str,
    *,
    limits: Limits | None = None,
    isolation: str | None = None,
) -> Result:
    """The grader's verdict on ``source`` as the cell of ``exercise``: the same sandbox,
    limits, allowed modules and scoring as ``grade_notebooks``, for one cell.

    The worker is kept warm between calls (one per set of allowed modules and
    isolation), so that ``check`` after each exercise costs a fraction of a second; it
    ends with this process.
    """
    limits = limits or Limits()
    isolation = isolation or default_isolation()
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}, got {isolation!r}")
    key = (exercise.modules, isolation)
    with _WARM_LOCK:
        pool = _WARM.get(key)
        if pool is None:
            if not _WARM:
                atexit.register(_close_warm)
            pool = _WARM[key] = WorkerPool(1, exercise.modules, isolation)
    results = _run_job(pool, [(exercise, source)], limits, Cache(None))
    return results[0][0]


def _close_warm() -> None:
    with _WARM_LOCK:
        for pool in _WARM.values():
            pool.close()
        _WARM.clear()


def _cell_sources(plan: _Plan) -> list[tuple[str, str]]:
    return [(cell.id, cell.source) for cell in plan.cells.values()]


def _finished(plan: _Plan, store: Cache) -> None:
    """Keep a finished notebook's verdict, unless part of it might differ on a
    re-run."""
    if plan.key is not None and plan.lasting and plan.error is None:
        done = plan.submission()
        store.put_notebook(
            plan.key, done.score, done.max_score, done.exercises, done.warnings
        )


def _cache(cache: Any) -> Cache:
    if isinstance(cache, Cache):
        return cache
    if cache is None or cache is False:
        return Cache(None)
    return Cache(default_directory() if cache is True else cache)


def _read(path: str) -> _Plan:
    plan = _Plan(path)
    try:
        cells, plan.warnings = read_exercise_cells(path)
    except NotebookError as exc:
        plan.error = str(exc)
        return plan
    for cell in cells:
        if cell.id in plan.cells:
            plan.warnings.append(
                f"exercise {cell.id} appears in cells {plan.cells[cell.id].number}"
                f" and {cell.number}; the later one was graded"
            )
        plan.cells[cell.id] = cell
    return plan


def _resolve(plan: _Plan, store: Cache, limits: Limits) -> None:
    """Decide which exercises the plan owes; take missing and cached verdicts; queue the
    rest."""
    if plan.error is not None:
        return
    known: dict[str, Exercise] = {}
    for exercise_id in list(plan.cells):
        try:
            known[exercise_id] = get(exercise_id)
        except ValueError:
            plan.warnings.append(
                f"exercise cell {plan.cells.pop(exercise_id).number} has the "
                f"unknown exercise id {exercise_id!r}; ignored"
            )
    chapter = chapter_from_name(plan.path)
    if chapter is not None and chapter_exercises(chapter):
        chapters = {chapter}
        for exercise_id, exercise in known.items():
            if exercise.chapter != chapter:
                plan.warnings.append(
                    f"exercise {exercise_id} belongs to chapter "
                    f"{exercise.chapter}, not to chapter {chapter} as the file "
                    "name says; ignored"
                )
                del plan.cells[exercise_id]
    else:
        chapters = {e.chapter for e in known.values()}
    if not chapters:
        plan.error = (
            "no exercise cells found (code cells tagged 'exercise' with an exercise id "
            "in their metadata) and no chapter number in the file name"
        )
        return
    plan.exercises = [e for c in sorted(chapters) for e in chapter_exercises(c)]
    for exercise in plan.exercises:
        cell = plan.cells.get(exercise.id)
        if cell is None:
            plan.results[exercise.id] = failure(
                exercise,
                "not_attempted",
                f"not attempted: the notebook has no exercise cell "
                f"for {exercise.id} (a code cell tagged 'exercise' with id "
                f"{exercise.id!r})",
            )
            continue
        key = store.key(exercise, cell.source, (limits, plan.isolation))
        cached = store.get(key)
        if cached is not None:
            plan.results[exercise.id] = cached
        else:
            plan.pending.append((exercise, cell, key))


def _run_all(
    pools: _Pools,
    plans: list[_Plan],
    waiting: list[int],
    limits: Limits,
    store: Cache,
    on_graded: Callable[[int, Submission], None] | None,
) -> None:
    """Grade the waiting plans on the pool, most exercises first, reporting each as it
    ends."""
    order = sorted(waiting, key=lambda i: -len(plans[i].pending))
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(pools.size) as executor:
        futures = {
            executor.submit(_run_plan, pools, plans[i], limits, store, stop): i
            for i in order
        }
        try:
            for future in concurrent.futures.as_completed(futures):
                future.result()
                plan = plans[futures[future]]
                _finished(plan, store)
                if on_graded is not None:
                    on_graded(futures[future], plan.submission())
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            pools.close()
            raise


def _run_plan(
    pools: _Pools, plan: _Plan, limits: Limits, store: Cache, stop: threading.Event
) -> None:
    """Grade the plan's pending exercises: one job per set of allowed modules."""
    groups: dict[tuple[str, ...], list] = {}
    for exercise, cell, key in plan.pending:
        groups.setdefault(exercise.modules, []).append((exercise, cell.source, key))
    for modules, group in groups.items():
        if stop.is_set():
            return
        pairs = [(exercise, source) for exercise, source, _ in group]
        results = _run_job(pools.get(modules), pairs, limits, store, stop)
        if results is None:
            return
        for (exercise, _, key), (result, keep) in zip(group, results):
            plan.results[exercise.id] = result
            plan.lasting &= keep
            if keep:
                store.put(key, result)
    plan.pending = []


def _run_job(
    pool: WorkerPool,
    pairs: list[tuple[Exercise, str]],
    limits: Limits,
    store: Cache,
    stop: threading.Event | None = None,
) -> list[tuple[Result, bool]] | None:
    """``(Result, lasting)`` per ``(exercise, cell source)``, run as one notebook on the
    pool; None if the batch was stopped meanwhile."""
    request = {
        "limits": limits.request(),
        "exercises": [
            {
                "id": e.id,
                "function": e.function,
                "source": source,
                "modules": list(e.modules),
                "cases": _cases_message(store, e),
            }
            for e, source in pairs
        ],
    }
    seconds = len(pairs) * (limits.timeout + 5) + 30
    entries, lost = None, None
    for _ in range(2):  # one retry on a fresh worker if a worker is lost
        try:
            entries = pool.run(request, seconds)["entries"]
            break
        except WorkerLost as exc:
            lost = exc
            if stop is not None and stop.is_set():
                return None
    if not isinstance(entries, list) or len(entries) != len(pairs):
        why = lost or "malformed reply"
        return [
            (
                failure(
                    e,
                    "error",
                    f"the grader's worker failed on this notebook ({why}); grade it "
                    "again",
                ),
                False,
            )
            for e, _ in pairs
        ]
    return [
        verdict(e, entry, limits, store.cases(e))
        for (e, _), entry in zip(pairs, entries)
    ]


_CASE_MESSAGES: dict[int, tuple[Exercise, bytes]] = {}
_CASE_LOCK = threading.Lock()


def _cases_message(store: Cache, exercise: Exercise) -> bytes:
    """The inputs of every case (never the expected values), encoded once per
    exercise."""
    with _CASE_LOCK:
        known = _CASE_MESSAGES.get(id(exercise))
        if known is None or known[0] is not exercise:
            message = channel.encode(
                [(c.args, c.kwargs) for c in store.cases(exercise)]
            )
            known = _CASE_MESSAGES[id(exercise)] = (exercise, message)
    return known[1]


def verdict(
    exercise: Exercise, entry: Any, limits: Limits, cases: list[Case] | None = None
) -> tuple[Result, bool]:
    """The Result for one worker entry, and whether a re-run would give the same one."""
    if not isinstance(entry, dict):
        return _malformed(exercise)
    state = entry.get("state")
    output = entry.get("output") if isinstance(entry.get("output"), str) else ""
    if state == "done" and isinstance(entry.get("payload"), bytes):
        try:
            reply = channel.decode(entry["payload"], max_bytes=limits.reply)
        except channel.ChannelError as exc:
            return _unreadable(exercise, exc)
        if isinstance(reply, dict) and isinstance(reply.get("died"), str):
            state = "timeout" if reply.get("timeout") is True else "died"
            entry = dict(entry, detail=reply["died"])
        else:
            try:
                return _judge(
                    exercise,
                    reply,
                    _count(entry.get("output_bytes")),
                    limits,
                    exercise.cases() if cases is None else cases,
                )
            except (ValueError, TypeError, KeyError) as exc:
                return _unreadable(exercise, exc)
    if state == "timeout":
        return failure(
            exercise,
            "timeout",
            f"stopped: {exercise.function} (with its cell) ran longer than "
            f"{limits.timeout:g} s, the limit per exercise. Look for a loop that "
            "never ends or work that grows too fast.",
        ), False
    if state == "output":
        return _printed_too_much(exercise, limits), False
    if state == "channel":
        return failure(
            exercise,
            "error",
            "the worker's reply could not be read: an exercise "
            "cell must not write to the grader's channel",
        ), False
    if state == "died":
        detail = str(entry.get("detail", "the worker stopped"))
        if any(word in output.lower() for word in _MEMORY_WORDS):
            return failure(
                exercise,
                "memory",
                f"ran out of memory ({detail}); the limit is "
                f"{_size(limits.memory)} per exercise",
            ), False
        return failure(
            exercise,
            "error",
            f"{detail} while running exercise {exercise.id}"
            f"{_crash_line(exercise, output)}; an exercise must return its result, "
            "not exit or crash the interpreter",
        ), False
    return _malformed(exercise)


def _malformed(exercise: Exercise) -> tuple[Result, bool]:
    return failure(
        exercise, "error", "the grader's worker sent a malformed entry"
    ), False


def _unreadable(exercise: Exercise, exc: Exception) -> tuple[Result, bool]:
    return failure(
        exercise,
        "error",
        f"the worker's reply could not be read ({exc}); an "
        "exercise cell must not write to the grader's channel",
    ), False


def _printed_too_much(exercise: Exercise, limits: Limits) -> Result:
    return failure(
        exercise,
        "error",
        f"the exercise printed more than {_size(limits.output)} of output; remove "
        "prints from loops",
    )


def allowed_modules(exercise: Exercise) -> str:
    """The modules an exercise allows, in words: "numpy", "numpy and torch" ..."""
    names = list(exercise.modules)
    if not names:
        return "Python's standard library"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _judge(
    exercise: Exercise,
    reply: Any,
    output_bytes: int,
    limits: Limits,
    cases: list[Case],
) -> tuple[Result, bool]:
    if not isinstance(reply, dict):
        raise ValueError("the reply is not a dictionary")
    name = exercise.function
    if output_bytes > limits.output:
        return _printed_too_much(exercise, limits), True
    if isinstance(reply.get("forbidden"), str):
        return failure(
            exercise,
            "error",
            f"exercise {exercise.id} may use only {allowed_modules(exercise)}; your "
            f"code imports {reply['forbidden']}",
        ), True
    if reply.get("memory") is True:
        return failure(
            exercise,
            "memory",
            f"{name} ran out of memory; the limit is "
            f"{_size(limits.memory)} per exercise",
        ), False
    if "cell_error" in reply:
        return failure(
            exercise, "error", f"the exercise cell raised {_str(reply['cell_error'])}"
        ), True
    if reply.get("missing") is True:
        return failure(
            exercise,
            "error",
            f"the exercise cell does not define a function named {name}",
        ), True
    if reply.get("not_callable") is True:
        return failure(exercise, "error", f"{name} is not a function"), True
    if "exit" in reply:
        return failure(
            exercise,
            "error",
            f"{name} tried to exit the interpreter: "
            f"{_str(reply['exit'])}. Return a value instead",
        ), True
    if "too_large" in reply:
        return failure(
            exercise,
            "error",
            f"{name} returned more than {_size(limits.reply)} of data",
        ), True
    if "encode_error" in reply:
        return failure(
            exercise,
            "error",
            f"{name} returned a value that cannot be checked "
            f"({_str(reply['encode_error'])})",
        ), True
    outcomes = reply.get("outcomes")
    if not isinstance(outcomes, list) or len(outcomes) != len(cases):
        raise ValueError("wrong number of outcomes")
    return summarise(exercise, [_outcome(item) for item in outcomes], cases), True


def _outcome(item: Any) -> Outcome:
    if not (
        isinstance(item, list)
        and len(item) == 3
        and isinstance(item[2], str)
        and item[0] in ("value", "raised", "not_implemented")
    ):
        raise ValueError("malformed outcome")
    kind, value, error = item  # the error is the submission's text: one printable line
    return Outcome(kind, value if kind == "value" else None, printable(error))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    """Text a submission sent (an exception's message), on one printable line."""
    return printable(value) if isinstance(value, str) else "an error"


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def _crash_line(exercise: Exercise, output: str) -> str:
    """Where in the cell a crashed worker was, from the traceback Python dumped as it
    died."""
    lines = re.findall(
        rf'File "<exercise {re.escape(exercise.id)}>", line (\d+)', output
    )
    return f" (at line {lines[-1]} of the cell)" if lines else ""
