"""Best-of-n wall-clock timing, shared by the benchmarks.

Runs are interleaved (a, b, c, a, b, c, ...) so that a burst of load from another
process on a shared machine hits every contender alike, and the fastest run of each is
kept.
"""

import time


def best_times(fns: dict, repeat: int = 7) -> dict:
    """Seconds of the fastest of ``repeat`` interleaved calls of each function in
    ``fns``."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def report(name: str, ratio: float, target: str, ok: bool) -> None:
    """One line: what was measured, the ratio, the target and whether it is met."""
    print(
        f"  {name:<52} {ratio:8.2f}x   target {target:<10} {'ok' if ok else 'MISSED'}"
    )
