"""Run every benchmark module (``benchmarks/bench_*.py``) or the ones named on the
command line."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> None:
    found = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if m.name.startswith("bench_")
    )
    unknown = set(names) - set(found)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; known: {found}")
    for name in names or found:
        print(f"== {name}")
        importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    main(sys.argv[1:])
