"""Collecting a class's submissions: notebooks, folders and ``.zip`` archives, each
file mapped to the learner who handed it in.

What an instructor passes on the command line, in that order:

- a notebook: one submission of its own, unless its name follows an LMS convention
  below;
- a folder: every file under it; a notebook directly in it is a submission of its own,
  and the files under a sub-folder ``ada/...`` all belong to the learner ``ada`` (a
  folder of cloned repositories, one per learner, grades as one submission per
  repository);
- a ``.zip`` archive: its members, read the same way as a folder (a single folder
  wrapping every member is looked through), and a learner's own ``.zip`` inside it
  opened once more.

LMS bulk downloads are recognised by their file names:

- Canvas ("Download Submissions"): ``{name}_{LATE_}{user_id}_{file_id}_{original}``,
  where ``name`` is the learner's sortable name lower-cased with every non-word
  character removed (``lovelaceada``), ``LATE`` marks a late submission, ``user_id`` is
  the Canvas user id (the ``ID`` column of a Canvas gradebook export) and ``file_id``
  the uploaded file's id. With anonymous grading there is no name and the id is
  ``anon_{anonymous_id}``.
- Moodle ("Download all submissions"): ``{Full
  Name}_{participant_id}_assignsubmission_file_`` as a folder holding the learner's
  files (the default since Moodle 3.1), or as the prefix of each file name (the older
  flat layout). Underscores in a name are turned into spaces by Moodle, so the name
  never contains one; blind marking names every learner ``Participant``.

Every file is reported: a notebook is graded, anything else (a PDF, Canvas's
``_text.html`` for a text entry, Moodle's ``onlinetext`` folder) is listed as not graded
with the reason, and never stops the batch. Hidden files and folders (``.git``,
``.ipynb_checkpoints``) and what operating systems add to archives (``__MACOSX``) are no
one's work and are passed over. Archives come from learners, so reading one
is bounded: at most ``Bounds.members`` members and ``Bounds.total`` uncompressed bytes
in all, each notebook at most ``MAX_NOTEBOOK_BYTES``, counted while reading (a member
that lies about its size is cut off); members with absolute paths, ``..``, drive
letters, links or encryption are refused and reported. Extracted notebooks are written
under a private temporary folder with names the grader chooses, never with a member's
path.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

from .notebook import MAX_NOTEBOOK_BYTES

__all__ = [
    "Bounds",
    "Collection",
    "FileEntry",
    "Learner",
    "Submitted",
    "collect",
    "shard_of",
]

_CANVAS = re.compile(
    r"^(?:(?:LATE_)?(?P<anon>anon_[A-Za-z0-9]+)|(?P<name>\w+?)_(?:LATE_)?(?P<id>\d+))"
    r"_(?P<file>\d+)_(?P<original>.+)$",
    re.DOTALL,
)
_CANVAS_ONLINE = re.compile(  # a text entry or a URL: no file id, and not a notebook
    r"^(?:(?:LATE_)?(?P<anon>anon_[A-Za-z0-9]+)|(?P<name>\w+?)_(?:LATE_)?(?P<id>\d+))"
    r"_(?P<original>text\.html|link\.html)$"
)
_MOODLE = re.compile(
    r"^(?P<name>[^_/]+)_(?P<id>\d+)_(?P<plugin>assign(?:submission|feedback)_[a-z]+)_"
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_JUNK = {"__MACOSX", "Thumbs.db", "desktop.ini"}  # and every hidden name (``_skipped``)
_ARCHIVE_DEPTH = 2  # an archive, and a learner's archive inside it


@dataclass(frozen=True)
class Bounds:
    """Limits on reading archives: members, uncompressed bytes in all, and per member (a
    notebook, or a learner's own archive)."""

    members: int = 50_000
    total: int = 8 * 2**30
    notebook: int = MAX_NOTEBOOK_BYTES


@dataclass(frozen=True)
class Learner:
    """Who handed a file in: ``source`` is "canvas", "moodle", "folder" or "file".

    ``key`` tells submissions apart in a class (and decides a shard): the LMS and the id
    when the id is known, else the path of the single file.
    """

    source: str
    id: str | None
    name: str | None
    path: str = ""

    @property
    def key(self) -> str:
        return f"{self.source}:{self.id}" if self.id is not None else self.path


@dataclass
class FileEntry:
    """One file of a submission: where it came from, the notebook on disk to grade
    (None when it is not graded), and why it is not graded."""

    label: str
    path: str | None = None
    problem: str | None = None


@dataclass
class Submitted:
    """What one learner handed in, in the order found."""

    learner: Learner
    files: list[FileEntry] = field(default_factory=list)


class Collection:
    """The learners of a class and their files; owns the folder of extracted notebooks.

    Use as a context manager (or call ``close``) to delete that folder. ``problems``
    lists inputs that belong to no learner (an archive that cannot be opened, a missing
    path).
    """

    def __init__(self) -> None:
        self.submitted: dict[str, Submitted] = {}
        self.problems: list[tuple[str, str]] = []
        self._scratch: str | None = None
        self._count = 0
        self.keep: Callable[[Learner], bool] | None = None

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    @property
    def learners(self) -> list[Submitted]:
        return list(self.submitted.values())

    def add(self, learner: Learner, entry: FileEntry) -> None:
        known = self.submitted.setdefault(learner.key, Submitted(learner))
        if known.learner.name is None and learner.name is not None:
            known.learner = learner
        known.files.append(entry)

    def join_all(self) -> None:
        """Make every file one learner's (a platform handing in one submission)."""
        files = [entry for s in self.submitted.values() for entry in s.files]
        one = Submitted(Learner("one", None, None, "submission"), files)
        self.submitted = {one.learner.key: one}

    def scratch_file(self, name: str) -> str:
        """A fresh path for an extracted file, keeping its base name (the grader
        reads the chapter from it)."""
        if self._scratch is None:
            self._scratch = tempfile.mkdtemp(prefix="labkit-inputs-")
        self._count += 1
        folder = os.path.join(self._scratch, str(self._count))
        os.mkdir(folder, 0o700)
        return os.path.join(folder, _safe_name(name))


def collect(
    paths: list[str | os.PathLike],
    bounds: Bounds | None = None,
    keep: Callable[[Learner], bool] | None = None,
) -> Collection:
    """The submissions in ``paths`` (notebooks, folders, archives), by learner.

    ``keep(learner)`` False leaves that learner's archive members unread (another
    machine grades them); the learner is still listed.
    """
    bounds = bounds or Bounds()
    found = Collection()
    found.keep = keep
    try:
        for path in map(os.fspath, paths):
            if os.path.isdir(path):
                _collect_folder(found, path, bounds)
            elif path.lower().endswith(".zip") and os.path.isfile(path):
                _collect_archive(found, path, path, bounds, _Budget(bounds), 1, None)
            else:  # named on the command line: graded as a notebook, whatever its name
                learner, _ = _learner_of(os.path.basename(path), path)
                found.add(learner, FileEntry(path, path))
    except BaseException:
        found.close()
        raise
    return found


def shard_of(key: str, count: int) -> int:
    """The shard (1..count) of a learner: a hash of its key, the same anywhere."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


# ----------------------------------------------------------------------------- names


def _learner_of(name: str, path: str) -> tuple[Learner, str]:
    """The learner a file (or top folder) name belongs to, and the original name."""
    moodle = _MOODLE.match(name)
    if moodle:
        rest = moodle.group("rest").lstrip("/") or name
        who = moodle.group("name")
        who = None if who == "Participant" else who  # blind marking hides the name
        return Learner("moodle", moodle.group("id"), who), rest
    canvas = _CANVAS.match(name) or _CANVAS_ONLINE.match(name)
    if canvas:
        learner_id = canvas.group("id") or canvas.group("anon")
        return Learner("canvas", learner_id, canvas.group("name")), canvas.group(
            "original"
        )
    return Learner("file", None, None, path), name


def _safe_name(name: str) -> str:
    """A base name safe to create: no separators or control characters, not long."""
    cleaned = "".join(
        c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in name
    )
    cleaned = cleaned.lstrip(".") or "file"
    if len(cleaned.encode("utf-8", "surrogateescape")) > 200:
        stem, dot, suffix = cleaned.rpartition(".")
        cleaned = (stem or cleaned)[:100] + (dot + suffix[:20] if dot else "")
    return cleaned


def _skipped(name: str) -> bool:
    """Names that are no one's work: hidden ones (``.git``, ``.ipynb_checkpoints``,
    macOS's ``._`` files) and what operating systems add to archives."""
    return name.startswith(".") or name in _JUNK


def _is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def _not_notebook(name: str) -> str:
    suffix = PurePosixPath(name).suffix
    kind = f"a {suffix} file" if suffix else "a file without an extension"
    return f"not a notebook ({kind}); not graded"


def _add_file(
    found: Collection, learner: Learner, label: str, path: str, name: str
) -> None:
    if os.path.islink(path):
        found.add(learner, FileEntry(label, problem="a symbolic link; not followed"))
    elif _is_notebook(name):
        found.add(learner, FileEntry(label, path))
    else:
        found.add(learner, FileEntry(label, problem=_not_notebook(name)))


# ----------------------------------------------------------------------------- folders


def _collect_folder(found: Collection, root: str, bounds: Bounds) -> None:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for name in sorted(files):
            if _skipped(name):
                continue
            path = os.path.join(folder, name)
            relative = PurePosixPath(*Path(os.path.relpath(path, root)).parts)
            learner, original = _owner(relative.parts, path)
            if original.lower().endswith(".zip") and not os.path.islink(path):
                owner = None if learner.source == "file" else learner
                _collect_archive(found, path, path, bounds, _Budget(bounds), 1, owner)
                continue
            _add_file(found, learner, path, path, original)
        for name in dirs:  # a linked folder is reported, never walked
            if os.path.islink(os.path.join(folder, name)):
                path = os.path.join(folder, name)
                relative = PurePosixPath(*Path(os.path.relpath(path, root)).parts)
                learner, _ = _owner(relative.parts, path)
                found.add(
                    learner, FileEntry(path, problem="a symbolic link; not followed")
                )


def _owner(parts: tuple[str, ...], label: str) -> tuple[Learner, str]:
    """The learner of a file at ``parts`` inside a folder or an archive, and the file's
    original name: the first part named in an LMS's convention says who (a download
    unpacked into a folder of its own is still read right); else the top folder, one
    per learner; else the file is a submission of its own."""
    for depth, part in enumerate(parts, start=1):
        learner, original = _learner_of(part, label)
        if learner.source != "file":
            return learner, original if depth == len(parts) else parts[-1]
    if len(parts) > 1:
        return Learner("folder", parts[0], None), parts[-1]
    return Learner("file", None, None, label), parts[0]


# ----------------------------------------------------------------------------- archives


class _Budget:
    """What is left of the bounds while reading one archive given as an input."""

    def __init__(self, bounds: Bounds):
        self.members = bounds.members
        self.bytes = bounds.total


def _collect_archive(
    found: Collection,
    path: str,
    label: str,
    bounds: Bounds,
    budget: _Budget,
    depth: int,
    owner: Learner | None,
    handle=None,
) -> None:
    """Every member of the archive at ``path`` (or open ``handle``), mapped to learners;
    ``owner`` is the learner a nested archive belongs to."""
    fallback = owner or Learner("file", None, None, label)
    try:
        archive = zipfile.ZipFile(handle if handle is not None else path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        found.add(
            fallback, FileEntry(label, problem=f"not a readable zip archive ({exc})")
        )
        return
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > budget.members:
            found.add(
                fallback,
                FileEntry(
                    label,
                    problem=f"the archive has {len(members)} members, more than the "
                    f"limit of {bounds.members}; not read",
                ),
            )
            return
        budget.members -= len(members)
        names = [_member_parts(m.filename) for m in members]
        strip = _common_top(names) if owner is None else 0
        for member, parts in sorted(zip(members, names), key=lambda p: p[0].filename):
            _collect_member(
                found,
                archive,
                member,
                parts,
                strip,
                label,
                bounds,
                budget,
                depth,
                owner,
            )


def _member_parts(name: str) -> tuple[str, ...] | None:
    """The parts of a member's path, or None when the path is unsafe to interpret."""
    if (
        "\0" in name
        or "\\" in name
        or name.startswith("/")
        or re.match(r"^[A-Za-z]:", name)
    ):
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if not parts or ".." in parts:
        return None
    return parts


def _common_top(names: list[tuple[str, ...] | None]) -> int:
    """1 when every member lies under one folder that names no learner, else 0."""
    tops = {parts[0] for parts in names if parts is not None and len(parts) > 1}
    flat = any(parts is not None and len(parts) == 1 for parts in names)
    if len(tops) != 1 or flat:
        return 0
    top = next(iter(tops))
    return 0 if _learner_of(top, top)[0].source != "file" else 1


def _collect_member(
    found: Collection,
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    parts: tuple[str, ...] | None,
    strip: int,
    label: str,
    bounds: Bounds,
    budget: _Budget,
    depth: int,
    owner: Learner | None,
) -> None:
    where = f"{label}/{member.filename}"
    if parts is None:
        found.add(
            owner or Learner("file", None, None, where),
            FileEntry(
                where, problem="an unsafe path (absolute, or with '..'); refused"
            ),
        )
        return
    parts = parts[strip:] if len(parts) > strip else parts
    if any(map(_skipped, parts)):
        return
    learner, original = (owner, parts[-1]) if owner else _owner(parts, where)
    if found.keep is not None and not found.keep(learner):
        found.add(learner, FileEntry(where, problem="graded by another shard"))
        return
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        found.add(learner, FileEntry(where, problem="a symbolic link; refused"))
        return
    if member.flag_bits & 0x1:
        found.add(learner, FileEntry(where, problem="an encrypted member; not read"))
        return
    nested = original.lower().endswith(".zip")
    if not (_is_notebook(original) or nested):
        found.add(learner, FileEntry(where, problem=_not_notebook(original)))
        return
    if nested and depth >= _ARCHIVE_DEPTH:
        found.add(
            learner,
            FileEntry(
                where,
                problem="an archive inside an archive inside an archive; not read",
            ),
        )
        return
    data, problem = _read_member(archive, member, min(bounds.notebook, budget.bytes))
    if problem is not None and budget.bytes < bounds.notebook:
        problem = (
            f"the archive's members add up to more than {bounds.total} bytes "
            "uncompressed; not read"
        )
    if problem is not None:
        found.add(learner, FileEntry(where, problem=problem))
        return
    budget.bytes -= len(data)
    if nested:
        _collect_archive(
            found, where, where, bounds, budget, depth + 1, learner, io.BytesIO(data)
        )
        return
    target = found.scratch_file(original)
    with open(target, "xb") as f:
        f.write(data)
    found.add(learner, FileEntry(where, target))


def _read_member(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int
) -> tuple[bytes, str | None]:
    """At most ``limit`` bytes of a member, counted as they are decompressed."""
    if member.file_size > limit:
        return b"", (
            f"{member.file_size} bytes uncompressed, more than the limit of {limit}; "
            "not read"
        )
    try:
        with archive.open(member) as stream:
            data = stream.read(limit + 1)
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        NotImplementedError,
        RuntimeError,
    ) as exc:
        return b"", f"could not be read from the archive ({exc})"
    if len(data) > limit:
        return b"", f"more than the limit of {limit} bytes uncompressed; not read"
    return data, None
