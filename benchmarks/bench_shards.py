"""Grading a class on one machine and in shards, and what 20,000 submissions would take.

A class of 36 learners (the solution notebooks of every chapter, in turn) in a Canvas
download is graded end to end as an instructor runs it: ``python -m labkit.grade`` on
the archive, every core of this machine, verdicts not cached (the exercises' cases are,
as in the grader image). Then a class of one learner, and the 36 in 4 shards, each a
separate process run as a pod runs it (``--shard K/4``, two workers), and their merge.

Each run is one point (learners graded, seconds); a least-squares line through them
splits a run's time into a fixed part (interpreter, imports, workers starting, reading
the archive) and a part per submission. The projection for 20,000 submissions on P pods
of 2 cores is the fixed part plus the per-submission part times the largest shard:
shards are picked by a hash, so the largest holds about n + sqrt(2 n ln P) learners for
n = 20,000/P. On a machine shared with other work the points scatter; all are printed,
so that the fit can be judged.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLASS_SIZE = 36
SHARDS = 4
PROJECTED = 20_000
PODS = (1, 10, 50, 100, 200)


def _run(args: list[str], env: dict) -> float:
    """Seconds of wall-clock time for one run of the command line."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "labkit.grade", *args],
        check=True,
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def _fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Intercept and slope of the least-squares line t = a + b n."""
    n_mean = sum(n for n, _ in points) / len(points)
    t_mean = sum(t for _, t in points) / len(points)
    spread = sum((n - n_mean) ** 2 for n, _ in points)
    slope = sum((n - n_mean) * (t - t_mean) for n, t in points) / spread
    return t_mean - slope * n_mean, slope


def _largest_shard(total: int, pods: int) -> float:
    """The expected size of the largest of ``pods`` hashed shares of ``total``."""
    n = total / pods
    return n if pods == 1 else n + math.sqrt(2 * n * math.log(pods))


def _archive(path: Path, notebooks: list[Path], size: int) -> Path:
    """A Canvas download of ``size`` learners handing in ``notebooks`` in turn."""
    with zipfile.ZipFile(path, "w") as out:
        for k in range(size):
            source = notebooks[k % len(notebooks)]
            name = f"learner{k}_{1000 + k}_{k}_{source.name}"
            out.writestr(name, source.read_bytes())
    return path


def main() -> None:
    solutions = sorted((ROOT / "solutions").glob("*.ipynb"))
    if not solutions:
        print("  no solution notebooks yet: nothing to grade")
        return
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        folder = Path(tmp)
        archive = _archive(folder / "class.zip", solutions, CLASS_SIZE)
        one = _archive(folder / "one.zip", solutions, 1)
        env = dict(os.environ, LABKIT_GRADE_CACHE=str(folder / "cache"))
        common = ["--quiet", "--no-cache"]
        single_json = str(folder / "single.json")
        _run([str(archive), *common], env)  # builds the cases, as the image does
        single = min(
            _run([str(archive), *common, "--json", single_json], env) for _ in range(2)
        )
        alone = min(_run([str(one), *common, "--jobs", "2"], env) for _ in range(2))
        shards = []
        for k in range(1, SHARDS + 1):
            out = str(folder / f"shard-{k}.json")
            options = ["--jobs", "2", "--shard", f"{k}/{SHARDS}", "--json", out]
            seconds = _run([str(archive), *common, *options], env)
            size = len(json.loads(Path(out).read_text())["submissions"])
            shards.append((out, size, seconds))
        merged_json = str(folder / "merged.json")
        merge = _run(["merge", *(s[0] for s in shards), "--json", merged_json], env)
        same = Path(merged_json).read_text() == Path(single_json).read_text()
    points = [(CLASS_SIZE, single), (1, alone), *((n, t) for _, n, t in shards)]
    fixed, per = _fit(points)
    print(
        f"  a Canvas download of {CLASS_SIZE} learners ({len(solutions)} chapters), "
        f"{os.cpu_count()} cores"
    )
    print(
        f"  one machine, every core: {single:6.2f} s  "
        f"{CLASS_SIZE / single:5.1f} submissions/s"
    )
    print(f"  one learner, 2 workers:  {alone:6.2f} s")
    for k, (_, size, seconds) in enumerate(shards, start=1):
        print(f"  shard {k}/{SHARDS}, 2 workers:  {seconds:6.2f} s  {size:3d} learners")
    print(f"  merge of {SHARDS} shards:     {merge:6.2f} s")
    print(f"  the merged gradebook equals one machine's: {same}")
    if per <= 0:
        print("  the runs scatter too much to split fixed and per-submission time")
        return
    print(
        f"  fitted: {fixed:.1f} s fixed per run + {per:.3f} s per submission "
        f"({1 / per:.1f} submissions/s once started)"
    )
    print(f"  projected for {PROJECTED} submissions on pods of 2 cores:")
    for pods in PODS:
        largest = _largest_shard(PROJECTED, pods)
        minutes = (fixed + per * largest) / 60
        print(
            f"    {pods:4d} pods: largest shard ~{largest:6.0f} learners, "
            f"{minutes:6.1f} min, plus scheduling and the merge"
        )


if __name__ == "__main__":
    main()
