"""``labkit-grade merge``: join the gradebooks of a sharded run into one, checking
that every learner of the class was graded exactly once.

Each machine of a sharded run (``labkit-grade ... --shard K/N --json shard-K.json``)
writes a JSON gradebook that says which shard it is, how many learners the whole class
has, a digest of all their keys, and its own learners' keys and places in the class.
``merge`` refuses, naming what is wrong, unless the shards are the ``N`` shards of one
run (same ``N``, class size and digest; each ``K`` once), every learner sits in the
shard its key hashes to, no learner appears twice, every shard graded all of its
learners, and together they are the whole class. The merged gradebook lists the learners
in the order of the inputs, so it equals the gradebook of the same command run on one
machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from labkit.exercises.scoring import Result

from .batch import keys_digest
from .grader import Submission
from .inputs import shard_of

__all__ = ["MergeError", "merge_shards", "read_shard", "submission_from_dict"]

MAX_GRADEBOOK_BYTES = 1 * 2**30


class MergeError(ValueError):
    """The shard gradebooks do not add up to one whole class; the message says why."""


def read_shard(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """The shard record and the submissions (as dictionaries) of a shard gradebook."""
    name = os.fspath(path)
    try:
        if os.path.getsize(name) > MAX_GRADEBOOK_BYTES:
            raise MergeError(f"{name}: larger than {MAX_GRADEBOOK_BYTES} bytes")
        with open(name, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as exc:
        raise MergeError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MergeError(f"{name}: not a JSON gradebook ({exc})") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("shard"), dict)
        and isinstance(data.get("submissions"), list)
    ):
        raise MergeError(
            f"{name}: not a shard gradebook "
            "(labkit-grade --shard K/N --json writes one)"
        )
    shard = data["shard"]
    try:
        record = {
            "index": int(shard["index"]),
            "count": int(shard["count"]),
            "learners": int(shard["learners"]),
            "digest": str(shard["digest"]),
            "keys": [str(k) for k in shard["keys"]],
            "positions": [int(p) for p in shard["positions"]],
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise MergeError(f"{name}: damaged shard record ({exc})") from None
    if len(record["keys"]) != len(record["positions"]):
        raise MergeError(f"{name}: damaged shard record (keys and positions differ)")
    return record, data["submissions"]


def merge_shards(paths: list[str | os.PathLike]) -> list[Submission]:
    """The submissions of every shard, in class order; MergeError unless complete."""
    if not paths:
        raise MergeError("no shard gradebooks given")
    shards = [(os.fspath(p), *read_shard(p)) for p in paths]
    first_name, first, _ = shards[0]
    seen: dict[int, str] = {}
    for name, record, _ in shards:
        for field in ("count", "learners", "digest"):
            if record[field] != first[field]:
                raise MergeError(
                    f"{name} and {first_name} come from different runs (their {field} "
                    "differs): merge the shards of one run"
                )
        if record["index"] in seen:
            raise MergeError(
                f"shard {record['index']}/{record['count']} is given twice: "
                f"{seen[record['index']]} and {name}"
            )
        seen[record["index"]] = name
    count = first["count"]
    missing = sorted(set(range(1, count + 1)) - set(seen))
    if missing:
        raise MergeError(
            f"shard{'s' if len(missing) > 1 else ''} "
            f"{', '.join(f'{k}/{count}' for k in missing)} missing: every learner must "
            "be graded exactly once"
        )
    placed: dict[int, Submission] = {}
    owner: dict[str, str] = {}
    for name, record, submissions in shards:
        if len(submissions) != len(record["keys"]):
            raise MergeError(
                f"{name}: graded {len(submissions)} of its {len(record['keys'])} "
                "learners (was the run interrupted?); grade this shard again"
            )
        for key, position, data in zip(
            record["keys"], record["positions"], submissions
        ):
            if shard_of(key, count) != record["index"]:
                raise MergeError(
                    f"{name}: learner {key!r} belongs to shard {shard_of(key, count)}, "
                    f"not {record['index']}"
                )
            if key in owner:
                raise MergeError(
                    f"learner {key!r} is graded twice: in {owner[key]} and {name}"
                )
            owner[key] = name
            if position in placed or not 0 <= position < first["learners"]:
                raise MergeError(f"{name}: damaged shard record (position {position})")
            placed[position] = submission_from_dict(data, name)
    if len(owner) != first["learners"] or keys_digest(list(owner)) != first["digest"]:
        raise MergeError(
            f"the shards hold {len(owner)} learners but the class has "
            f"{first['learners']}: some learner was not graded"
        )
    return [placed[p] for p in sorted(placed)]


def submission_from_dict(data: Any, where: str = "gradebook") -> Submission:
    """A Submission from its ``as_dict`` form (as the JSON gradebook holds it).

    Every other field of ``Submission`` the entry holds (``learner_id``, ``files`` ...)
    is taken as it is, so that the merged gradebook writes back what the shards wrote.
    """
    try:
        submission = Submission(
            str(data["submission"]),
            float(data["score"]),
            int(data["max_score"]),
            [_result(r) for r in data["exercises"]],
            None if data["error"] is None else str(data["error"]),
            [str(w) for w in data["warnings"]],
            isolation=str(data.get("isolation", "")),
        )
        for name in (f.name for f in dataclasses.fields(Submission)):
            if name in data and name not in _READ:
                setattr(submission, name, _plain(data[name]))
    except (KeyError, TypeError, ValueError) as exc:
        raise MergeError(f"{where}: a damaged submission entry ({exc})") from None
    return submission


_READ = {"path", "score", "max_score", "exercises", "error", "warnings"}


def _plain(value: Any) -> Any:
    """A string, a number, None, or a list of strings: what a gradebook field holds."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"unexpected value {value!r}")


def _result(data: dict) -> Result:
    result = Result(
        str(data["id"]),
        str(data["title"]),
        float(data["score"]),
        int(data["max_score"]),
        str(data["status"]),
        str(data["feedback"]),
    )
    if "mistake" in data and hasattr(result, "mistake"):
        result.mistake = _optional(data["mistake"])
    return result


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)
