"""labkit.ewma at 1e6 samples against a Python loop and against scipy.signal.lfilter,
same data.

Targets (issue 2): at least 30x faster than the loop; within 1.2x of lfilter;
bias-corrected within 1.5x of lfilter.
"""

import numpy as np
from scipy.signal import lfilter

from labkit.ewma import ewma

from .timing import best_times, report


def python_loop(x, beta):
    """The recurrence as usually first written: a loop indexing numpy arrays."""
    out = np.empty_like(x)
    v = 0.0
    for i in range(len(x)):
        v = beta * v + (1 - beta) * x[i]
        out[i] = v
    return out


def main() -> None:
    x = np.random.default_rng(0).normal(size=1_000_000)
    beta = 0.9
    t_loop = best_times({"loop": lambda: python_loop(x, beta)}, repeat=2)["loop"]
    t = best_times(
        {
            "lfilter": lambda: lfilter([1.0 - beta], [1.0, -beta], x),
            "ewma": lambda: ewma(x, beta),
            "first": lambda: ewma(x, beta, start="first"),
            "corrected": lambda: ewma(x, beta, bias_correction=True),
        },
        repeat=15,
    )
    t_lfilter, t_ewma, t_first, t_corrected = (
        t["lfilter"],
        t["ewma"],
        t["first"],
        t["corrected"],
    )
    print(f"  1e6 samples, beta = {beta}")
    report(
        "speed-up of ewma over a Python loop",
        t_loop / t_ewma,
        ">= 30x",
        t_loop / t_ewma >= 30,
    )
    report(
        "ewma time / lfilter time",
        t_ewma / t_lfilter,
        "<= 1.2x",
        t_ewma / t_lfilter <= 1.2,
    )
    report(
        "ewma(start='first') time / lfilter time",
        t_first / t_lfilter,
        "<= 1.2x",
        t_first / t_lfilter <= 1.2,
    )
    report(
        "ewma(bias_correction=True) time / lfilter time",
        t_corrected / t_lfilter,
        "<= 1.5x",
        t_corrected / t_lfilter <= 1.5,
    )


if __name__ == "__main__":
    main()
