"""The grader's throughput on a class: 60 distinct submissions, each notebook sandboxed.

Target (issue 9, grader isolation): on the 2-core CI machine, a batch of 60 distinct
submissions grades at 10 submissions per second or better with bubblewrap isolation,
every verdict fresh (``--no-cache``). Measured end to end, as an instructor runs it: a
fresh ``python -m labkit.grade`` process (interpreter start, imports, the sandboxed
worker, every core), with the exercises' cases cached, as on any machine that has graded
once. The class is the solution notebooks, each copy made distinct (a comment with the
learner's number in every exercise cell), so nothing is shared between submissions but
the cases.

Also shown: the same batch without isolation (``--isolation none``), interleaved with
the isolated runs (the ratio is the price of the sandbox), the first run on a machine
(cases built by their oracles) and re-grading the unchanged class (every verdict
cached).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labkit.grade.sandbox import problem

from .timing import report

ROOT = Path(__file__).resolve().parents[1]
CLASS_SIZE = 60
TARGET = 10.0  # submissions per second, isolated
REPEAT = 3


def _grade(
    notebooks: list[str], cache: Path, *options: str
) -> tuple[float, list[dict], float]:
    """Seconds of wall-clock time for one run of the command line, its JSON gradebook,
    and the CPU seconds it used (the grader, bubblewrap and every worker process)."""
    out = cache.parent / "grades.json"
    env = dict(os.environ, LABKIT_GRADE_CACHE=str(cache))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, json.loads(out.read_text()), cpu


def _distinct_class(solutions: list[Path], folder: Path) -> list[str]:
    """CLASS_SIZE notebooks, chapter prefix kept (NN_name_sKK.ipynb), every exercise
    cell of copy K ending with a comment that names learner K."""
    notebooks = []
    for k in range(CLASS_SIZE):
        source = solutions[k % len(solutions)]
        notebook = json.loads(source.read_text())
        for cell in notebook["cells"]:
            if "exercise" in cell.get("metadata", {}).get("tags", []):
                lines = cell["source"]
                if isinstance(lines, str):
                    lines = lines.splitlines(keepends=True)
                if lines and not lines[-1].endswith("\n"):
                    lines[-1] += "\n"
                cell["source"] = [*lines, f"# learner {k}\n"]
        path = folder / f"{source.stem}_s{k:02d}.ipynb"
        path.write_text(json.dumps(notebook, indent=1))
        notebooks.append(str(path))
    return notebooks


def main() -> None:
    solutions = sorted((ROOT / "solutions").glob("*.ipynb"))
    if not solutions:
        print("  no solution notebooks yet: nothing to grade")
        return
    why = problem()
    if why is not None:
        print(
            f"  bubblewrap cannot run here ({why}): no isolated throughput to measure"
        )
        return
    with tempfile.TemporaryDirectory(prefix="bench-grade-") as tmp:
        folder, cache = Path(tmp) / "class", Path(tmp) / "cache"
        folder.mkdir()
        notebooks = _distinct_class(solutions, folder)
        first = _grade(notebooks, cache, "--no-cache")[0]
        isolated, plain = [], []
        for _ in range(REPEAT):  # interleaved, so load from elsewhere hits both alike
            isolated.append(_grade(notebooks, cache, "--no-cache"))
            plain.append(_grade(notebooks, cache, "--no-cache", "--isolation", "none"))
        fresh, grades, _ = min(isolated, key=lambda run: run[0])
        bare = min(run[0] for run in plain)
        cpu = min(run[2] for run in isolated)
        cpu_bare = min(run[2] for run in plain)
        _grade(notebooks, cache)
        again = _grade(notebooks, cache)[0]
    full = sum(g["error"] is None and g["score"] == g["max_score"] for g in grades)
    sandboxed = sum(g.get("isolation") == "bwrap" for g in grades)
    rate = CLASS_SIZE / fresh
    print(
        f"  {CLASS_SIZE} distinct solution notebooks ({len(solutions)} chapters), "
        f"{os.cpu_count()} cores, {full}/{CLASS_SIZE} graded full marks, "
        f"{sandboxed}/{CLASS_SIZE} in bubblewrap"
    )
    for label, seconds in (
        ("first run on this machine (cases built)", first),
        (f"isolated, fresh verdicts (best of {REPEAT})", fresh),
        (f"no isolation, fresh verdicts (best of {REPEAT})", bare),
        ("re-grading the unchanged class", again),
    ):
        print(
            f"  {label:<46} {seconds:6.2f} s  {CLASS_SIZE / seconds:7.1f} submissions/s"
        )
    cores = len(os.sched_getaffinity(0))
    print(
        f"  CPU per submission, as the kernel accounts it to the run: "
        f"{cpu / CLASS_SIZE * 1000:.0f} ms isolated, "
        f"{cpu_bare / CLASS_SIZE * 1000:.0f} ms without (load average now "
        f"{os.getloadavg()[0]:.1f}; {cores} idle cores would give that CPU time "
        f"{cores * CLASS_SIZE / cpu:.1f} submissions/s isolated)"
    )
    report("isolated time / time without isolation", fresh / bare, "(cost)", True)
    report(
        f"isolated rate / target ({TARGET:g} submissions per second)",
        rate / TARGET,
        ">= 1x",
        rate >= TARGET,
    )


if __name__ == "__main__":
    main()
