"""Gradescope: the ``results.json`` of one submission, and the autograder that makes it.

A Gradescope programming assignment runs an instructor's autograder, uploaded as a zip
whose root holds ``setup.sh`` (run once, as root, when Gradescope builds the image) and
``run_autograder`` (run once per submission, in ``/autograder``, with the learner's
files in ``/autograder/submission``). It must leave
``/autograder/results/results.json``: a ``score``, an ``output`` shown to the learner,
and ``tests``, each with ``name``, ``number``, ``score``, ``max_score``, ``status``
("passed" or "failed"), ``output`` and ``visibility`` ("visible", "hidden",
"after_due_date" or "after_published").

``bundle`` writes that zip: the two scripts and this labkit's source (``pyproject.toml``
and the ``labkit`` package, so Gradescope grades with the instructor's copy and its
pinned versions). ``setup.sh`` installs Python 3.11, bubblewrap and labkit with the CPU
build of PyTorch; ``run_autograder`` grades every notebook handed in as one submission:
``labkit-grade /autograder/submission --gradescope /autograder/results/results.json``.
"""

from __future__ import annotations

import json
import os
import stat
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from .report import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from .grader import Submission

__all__ = ["RUN_AUTOGRADER", "SETUP_SH", "VISIBILITY", "bundle", "results_json"]

VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

SETUP_SH = f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs Python 3.11, bubblewrap (the grader's sandbox) and this labkit, with the
# exact versions its pyproject.toml pins and the CPU build of PyTorch.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q bubblewrap ca-certificates
if ! command -v python3.11 >/dev/null; then
    apt-get install -y -q software-properties-common
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update -q
    apt-get install -y -q python3.11 python3.11-venv
fi
python3.11 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --quiet --upgrade pip
/autograder/venv/bin/python -m pip install --quiet \\
    --extra-index-url {TORCH_INDEX} /autograder/source/labkit-src
# Build the exercises' cases once, now, so that no submission pays for it.
/autograder/venv/bin/labkit-grade prepare
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission, in /autograder. Every notebook the learner
# handed in (in /autograder/submission) is graded as one submission, by the instructor's
# labkit installed by setup.sh; the learner's files never replace it.
set -uo pipefail
mkdir -p /autograder/results
cd /autograder
/autograder/venv/bin/labkit-grade /autograder/submission --no-cache {options}\\
    --gradescope /autograder/results/results.json
status=$?
# 0: graded; 1: some file could not be read (results.json says which). Anything else
# means the grader itself failed, which Gradescope shows the instructor.
[ "$status" -le 1 ] || exit "$status"
"""


def results_json(
    submission: Submission,
    seconds: float | None = None,
    visibility: str = "visible",
) -> str:
    """The ``results.json`` of one graded submission: one test per exercise."""
    if visibility not in VISIBILITY:
        raise ValueError(f"visibility must be one of {VISIBILITY}, got {visibility!r}")
    result: dict = {"score": 0.0 if submission.error else float(submission.score)}
    if seconds is not None:
        result["execution_time"] = max(0, round(seconds))
    lines = []
    if submission.error is not None:
        lines.append(f"This submission could not be graded: {submission.error}")
    else:
        lines.append(
            f"{submission.score:g} of {submission.max_score:g} points, from the "
            "exercise cells of: "
            + ", ".join(map(os.path.basename, submission.files or [submission.path]))
        )
    lines += [f"Note: {w}" for w in submission.warnings]
    result["output"] = "\n".join(lines)
    result["output_format"] = "text"
    result["visibility"] = visibility
    result["stdout_visibility"] = "hidden"
    result["tests"] = [
        {
            "name": f"{r.id} {r.title}",
            "number": r.id,
            "score": float(r.score),
            "max_score": float(r.max_score),
            "status": "passed" if r.status == "passed" else "failed",
            "output": _test_output(r),
            "output_format": "text",
            "visibility": visibility,
        }
        for r in submission.exercises
    ]
    return json.dumps(result, indent=2, allow_nan=False) + "\n"


def _test_output(result) -> str:
    lines = [result.feedback]
    failing = [(label, why) for label, why in result.cases if why is not None]
    lines += [f"  failed on {label}: {why}" for label, why in failing[:5]]
    return "\n".join(lines)


def bundle(
    out: str | os.PathLike,
    source: str | os.PathLike | None = None,
    grade_options: str = "",
) -> list[str]:
    """Write the autograder zip to ``out``; returns the names it holds.

    ``source`` is the labkit checkout to ship (default: the one this labkit runs from);
    ``grade_options`` are extra ``labkit-grade`` options for ``run_autograder``, such as
    ``--timeout 30``.
    """
    root = Path(source) if source is not None else Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "labkit").is_dir():
        raise ValueError(
            f"{root} is not a labkit source checkout (pyproject.toml and labkit/); "
            "run from the course repository or pass --source"
        )
    files: dict[str, tuple[bytes, int]] = {
        "setup.sh": (SETUP_SH.encode(), 0o755),
        "run_autograder": (
            RUN_AUTOGRADER.format(
                options=f"{grade_options} " if grade_options.strip() else ""
            ).encode(),
            0o755,
        ),
    }
    for path in [root / "pyproject.toml", root / "README.md", *_package_files(root)]:
        if path.is_file():
            name = "labkit-src/" + path.relative_to(root).as_posix()
            files[name] = (path.read_bytes(), 0o644)
    data = _zip_bytes(files)
    atomic_write(out, data)
    return list(files)


def _package_files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in (root / "labkit").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def _zip_bytes(files: dict[str, tuple[bytes, int]]) -> bytes:
    import io

    buffer = io.BytesIO()
    stamp = time.localtime()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (content, mode) in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()
