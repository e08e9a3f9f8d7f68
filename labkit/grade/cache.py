"""Caches that make grading fast: the cases of each exercise, and the verdicts on
exercise cells.

Cases. Building an exercise's cases runs its oracle (torch autograd, torch.optim ...),
which can take seconds the first time in a process. The grader keeps each exercise's
cases (inputs *and* expected values, as channel data: nothing is ever unpickled) keyed
on everything they are built from: labkit's files (but not the grader's own), and the
versions of Python, numpy, torch, scipy and pandas. The cached cases are exactly the
ones ``exercise.cases()`` returns.

Verdicts. The key of one exercise verdict hashes the exercise cell's source, the
exercise's definition and cases, the grading machinery itself (scoring, worker, sandbox,
channel) and the limits. The key of a whole notebook's verdict hashes its exercise
cells, the chapter in its file name, labkit's files, the machinery and the limits: it is
computed without loading an exercise, so re-grading an unchanged class imports nothing
heavy and starts no worker. Only verdicts a re-run would reproduce are stored: not
timeouts, memory failures or worker crashes.

All live under one directory (``cases/``, ``verdicts/``, ``notebooks/``):
``$LABKIT_GRADE_CACHE``, else ``$XDG_CACHE_HOME/labkit/grade``, else
``~/.cache/labkit/grade``.

Trust. Only this process (the grader) writes the cache, each file atomically (a
temporary file, then a rename), in folders only its user may enter; the sandboxed
workers have no view of it at all. Every entry carries the key it was stored under and a
SHA-256 of the key and its content; an entry that does not verify (damaged, truncated,
copied under another key, edited without its hash) is a miss: ignored, rebuilt and
written again, never trusted. The hash detects damage and mix-ups, not a forger with
write access to the folder: keeping submitted code away from the folder is the sandbox's
work. ``Cache(..., write=False)`` (the command line's ``--no-cache``) writes nothing at
all.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import labkit
from labkit.exercises import Case, Exercise
from labkit.exercises.scoring import Result

from . import channel
from .notebook import chapter_from_name
from .report import atomic_write

__all__ = ["Cache", "default_directory"]

_MEMO: dict[
    int, tuple[Exercise, list[Case], str]
] = {}  # per process: cases, fingerprint
_HASHES: dict[str, str] = {}


def default_directory() -> Path:
    """Where the cache lives unless told otherwise."""
    if os.environ.get("LABKIT_GRADE_CACHE"):
        return Path(os.environ["LABKIT_GRADE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
        os.path.expanduser("~"), ".cache"
    )
    return Path(base) / "labkit" / "grade"


def _hash_once(name: str, compute) -> str:
    if name not in _HASHES:
        _HASHES[name] = compute()
    return _HASHES[name]


def _sources() -> str:
    """A hash of what cases are built from: labkit's files (not the grader's) and
    versions."""
    root = Path(labkit.__file__).parent
    digest = hashlib.sha256(sys.version.encode())
    for package in ("numpy", "torch", "scipy", "pandas"):
        try:
            digest.update(f"{package}={metadata.version(package)};".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{package}=none;".encode())
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if (
            path.is_file()
            and not relative.startswith("grade/")
            and "__pycache__" not in relative
        ):
            digest.update(relative.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _machinery() -> str:
    """A hash of the code that turns outputs into verdicts."""
    from labkit.exercises import scoring

    from . import confine, runner, sandbox, worker

    digest = hashlib.sha256(labkit.__version__.encode())
    for module in (scoring, worker, runner, confine, sandbox, channel):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


_CASES_MAGIC = b"LKCASES1"  # then the key (64 hex), the SHA-256 (64 hex), the message


class Cache:
    """Cases and verdicts on disk; ``None`` as the directory keeps nothing on disk,
    ``verdicts=False`` grades every exercise cell afresh (cases may still be read), and
    ``write=False`` writes nothing to the directory."""

    def __init__(
        self,
        directory: str | os.PathLike | None,
        verdicts: bool = True,
        write: bool = True,
    ):
        self.directory = None if directory is None else Path(directory)
        self.verdicts = verdicts and self.directory is not None
        self.write = write and self.directory is not None

    # ------------------------------------------------------------------ cases

    def cases(self, exercise: Exercise) -> list[Case]:
        """``exercise.cases()``, from memory, from disk, or built (and then stored)."""
        return self._known(exercise)[1]

    def _known(self, exercise: Exercise) -> tuple[Exercise, list[Case], str]:
        known = _MEMO.get(id(exercise))
        if known is not None and known[0] is exercise:
            return known
        cases = self._load_cases(exercise)
        if cases is None:
            cases = exercise.cases()
            self._store_cases(exercise, cases)
        known = _MEMO[id(exercise)] = (exercise, cases, _fingerprint(exercise, cases))
        return known

    def _case_file(self, exercise: Exercise) -> Path:
        return (
            self.directory
            / "cases"
            / f"{exercise.id}-{self._case_key(exercise)[:32]}.cases"
        )

    def _case_key(self, exercise: Exercise) -> str:
        key = hashlib.sha256(
            f"{_hash_once('sources', _sources)}:{exercise.id}".encode()
        )
        module = sys.modules.get(exercise.build_cases.__module__)
        origin = getattr(
            module, "__file__", None
        )  # exercises registered outside labkit too
        if origin:
            key.update(
                _hash_once(
                    origin,
                    lambda: hashlib.sha256(Path(origin).read_bytes()).hexdigest(),
                ).encode()
            )
        return key.hexdigest()

    def _load_cases(self, exercise: Exercise) -> list[Case] | None:
        if self.directory is None:
            return None
        try:
            message = _verified_cases(
                self._case_file(exercise).read_bytes(), self._case_key(exercise)
            )
            if message is None:
                return None
            data = channel.decode(message)
            cases = [
                Case(label, args, expected, kwargs, mistakes)
                for label, args, kwargs, expected, mistakes in data
            ]
        except (OSError, ValueError, TypeError):
            return None
        if (
            all(
                isinstance(c.label, str)
                and isinstance(c.args, tuple)
                and isinstance(c.kwargs, dict)
                and isinstance(c.mistakes, dict)
                for c in cases
            )
            and cases
        ):
            return cases
        return None

    def _store_cases(self, exercise: Exercise, cases: list[Case]) -> None:
        if not self.write:
            return
        try:
            message = channel.encode(
                [(c.label, c.args, c.kwargs, c.expected, c.mistakes) for c in cases]
            )
            key = self._case_key(exercise).encode()
            digest = hashlib.sha256(key + message).hexdigest().encode()
            path = self._case_file(exercise)
            _private_folder(path.parent)
            atomic_write(path, _CASES_MAGIC + key + digest + message)
        except (OSError, TypeError):
            pass  # cases that cannot be stored are rebuilt next time

    # ------------------------------------------------------------------ verdicts

    def key(self, exercise: Exercise, source: str, limits: Any) -> str:
        """The verdict key of ``source`` as exercise ``exercise`` under ``limits``."""
        parts = [
            _hash_once("machinery", _machinery),
            self._known(exercise)[2],
            source,
            repr(limits),
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def get(self, key: str) -> Result | None:
        """The cached verdict on one exercise cell, or None."""
        data = self._read("verdicts", key)
        try:
            return None if data is None else _result(data)
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, key: str, result: Result) -> None:
        self._write("verdicts", key, _result_data(result))

    def notebook_key(
        self, path: str, cells: list[tuple[str, str]], warnings: list[str], limits: Any
    ) -> str | None:
        """The key of a whole notebook's verdict: computed without loading any exercise,
        from its exercise cells, its file name's chapter, labkit's files and the
        grader's code."""
        if not self.verdicts:
            return None
        parts = [
            _hash_once("sources", _sources),
            _hash_once("machinery", _machinery),
            chapter_from_name(path),
            cells,
            warnings,
            repr(limits),
        ]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()

    def get_notebook(self, key: str | None) -> dict | None:
        """``{"score", "max_score", "exercises": [Result], "warnings"}``, or None."""
        data = None if key is None else self._read("notebooks", key)
        try:
            return (
                None
                if data is None
                else {
                    "score": float(data["score"]),
                    "max_score": int(data["max_score"]),
                    "exercises": [_result(r) for r in data["exercises"]],
                    "warnings": [str(w) for w in data["warnings"]],
                }
            )
        except (KeyError, TypeError, ValueError):
            return None

    def put_notebook(
        self,
        key: str,
        score: float,
        max_score: int,
        results: list[Result],
        warnings: list[str],
    ) -> None:
        self._write(
            "notebooks",
            key,
            {
                "score": score,
                "max_score": max_score,
                "exercises": [_result_data(r) for r in results],
                "warnings": warnings,
            },
        )

    def _read(self, kind: str, key: str) -> Any:
        """The body stored under ``key``, if its entry verifies; else None."""
        if not self.verdicts:
            return None
        try:
            entry = json.loads(
                (self.directory / kind / key[:2] / f"{key}.json").read_bytes()
            )
            if (
                isinstance(entry, dict)
                and entry.get("key") == key
                and entry.get("sha256") == _entry_hash(key, entry["body"])
            ):
                return entry["body"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
            pass
        return None

    def _write(self, kind: str, key: str, body: Any) -> None:
        if not (self.verdicts and self.write):
            return
        folder = self.directory / kind / key[:2]
        entry = {"key": key, "sha256": _entry_hash(key, body), "body": body}
        try:
            _private_folder(folder)
            atomic_write(folder / f"{key}.json", json.dumps(entry))
        except (OSError, ValueError):
            pass  # a read-only or full cache disk slows re-grading down, nothing more


def _entry_hash(key: str, body: Any) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((key + text).encode()).hexdigest()


def _verified_cases(data: bytes, key: str) -> bytes | None:
    """The channel message of a case file, if the file is for ``key`` and unchanged."""
    head = len(_CASES_MAGIC)
    if data[:head] != _CASES_MAGIC or data[head : head + 64] != key.encode():
        return None
    message = data[head + 128 :]
    digest = hashlib.sha256(key.encode() + message).hexdigest().encode()
    return message if data[head + 64 : head + 128] == digest else None


def _private_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents so that only this user may enter
    them."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700, exist_ok=True)


def _result_data(result: Result) -> dict:
    return dict(result.as_dict(), cases=[list(case) for case in result.cases])


def _result(data: dict) -> Result:
    return Result(
        str(data["id"]),
        str(data["title"]),
        float(data["score"]),
        int(data["max_score"]),
        str(data["status"]),
        str(data["feedback"]),
        [(str(label), reason) for label, reason in data["cases"]],
        None if data.get("mistake") is None else str(data["mistake"]),
    )


def _fingerprint(exercise: Exercise, cases: list[Case]) -> str:
    """A hash of an exercise's definition and its cases."""
    digest = hashlib.sha256(
        channel.encode(
            [
                exercise.id,
                exercise.title,
                exercise.points,
                exercise.function,
                list(exercise.hints),
                [[m.id, m.description, m.section] for m in exercise.mistakes],
                exercise.rtol,
                exercise.atol,
                list(exercise.modules),
                [(c.label, c.args, c.kwargs, c.expected, c.mistakes) for c in cases],
            ]
        )
    )
    compare = exercise.compare
    if compare is not None:
        code = getattr(compare, "__code__", None)
        digest.update(getattr(compare, "__qualname__", repr(compare)).encode())
        if code is not None:
            digest.update(code.co_code + repr(code.co_consts).encode())
    return digest.hexdigest()
