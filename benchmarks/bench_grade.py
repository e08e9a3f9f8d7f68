"""The grader's throughput on a class: 60 copies of the solution notebooks.

Target (issue: the grader): on the 2-core CI machine, a batch of 60 solution notebooks grades at
5 submissions per second or better. Measured end to end, as an instructor runs it: a fresh
``python -m labkit.grade`` process (interpreter start, imports, warm workers, every core), with
verdicts not cached (``--no-cache``) and the exercises' cases cached, as on any machine that has
graded once. Also shown: the first run on a machine (the cases built by their oracles), and
re-grading the unchanged class (every verdict cached).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .timing import report

ROOT = Path(__file__).resolve().parents[1]
CLASS_SIZE = 60
TARGET = 5.0  # submissions per second


def _grade(
    notebooks: list[str], cache: Path, *options: str
) -> tuple[float, list[dict]]:
    """Seconds of wall-clock time for one run of the command line, and its JSON gradebook."""
    out = cache.parent / "grades.json"
    env = dict(os.environ, LABKIT_GRADE_CACHE=str(cache))
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "labkit.grade",
            *notebooks,
            "--quiet",
            "--json",
            str(out),
            *options,
        ],
        check=True,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start, json.loads(out.read_text())


def main() -> None:
    solutions = sorted((ROOT / "solutions").glob("*.ipynb"))
    if not solutions:
        print("  no solution notebooks yet: nothing to grade")
        return
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        folder, cache = Path(tmp) / "class", Path(tmp) / "cache"
        folder.mkdir()
        notebooks = []
        for k in range(CLASS_SIZE):  # chapter prefix kept: NN_name_sKK.ipynb
            source = solutions[k % len(solutions)]
            notebooks.append(str(folder / f"{source.stem}_s{k:02d}.ipynb"))
            shutil.copy(source, notebooks[-1])
        first, _ = _grade(notebooks, cache, "--no-cache")
        runs = [_grade(notebooks, cache, "--no-cache") for _ in range(3)]
        fresh, grades = min(runs, key=lambda run: run[0])
        _grade(notebooks, cache)
        again, _ = _grade(notebooks, cache)
    full = sum(g["error"] is None and g["score"] == g["max_score"] for g in grades)
    rate = CLASS_SIZE / fresh
    print(
        f"  {CLASS_SIZE} solution notebooks ({len(solutions)} chapters), "
        f"{os.cpu_count()} cores, {full}/{CLASS_SIZE} graded full marks"
    )
    for label, seconds in (
        ("first run on this machine (cases built)", first),
        (f"fresh verdicts (best of {len(runs)})", fresh),
        ("re-grading the unchanged class", again),
    ):
        print(
            f"  {label:<42} {seconds:6.2f} s  {CLASS_SIZE / seconds:7.1f} submissions/s"
        )
    report(
        f"grading rate / target ({TARGET:g} submissions per second)",
        rate / TARGET,
        ">= 1x",
        rate >= TARGET,
    )


if __name__ == "__main__":
    main()
