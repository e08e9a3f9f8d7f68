"""Randomness, seeding and device choice, so that a notebook runs the same on a laptop
CPU and on a GPU.

The randomness convention
-------------------------
Every labkit function or class that draws random numbers takes an argument ``rng``, and
reads it with :func:`as_generator`:

- an int >= 0 is a seed: the same seed gives the same numbers;
- a ``np.random.Generator`` is drawn from, and advances: a chain of calls sharing one
  Generator is repeatable as a whole;
- ``None`` means numpy's global random state: a fresh Generator is seeded from it, so
  after ``labkit.seed(n)`` (or ``np.random.seed(n)``) every call is repeatable, and
  without it every run differs, as in torch without ``torch.manual_seed``.

Functions that make a data set or a sample a chapter shows (``labkit.data``,
``labkit.language``, ``labkit.training.fit``) default to ``rng=0``, a fixed seed, so
that their output is the same without any seeding; layers and augmentations default
to ``rng=None``, like torch's.
"""

from __future__ import annotations

import random

import numpy as np


def seed(value: int = 0) -> np.random.Generator:
    """Seed Python, numpy's global state and torch (if installed); a fresh Generator.

    After ``seed(n)`` every labkit call with ``rng=None`` is repeatable. Prefer passing
    the returned ``np.random.Generator`` around over relying on global state.
    """
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"seed value must be a non-negative integer, got {value!r}")
    value = int(value)
    random.seed(value)
    np.random.seed(value % 2**32)
    try:
        import torch
    except (
        ImportError
    ):  # pragma: no cover - torch is a dependency; seed() does not need it
        pass
    else:
        torch.manual_seed(value)
    return np.random.default_rng(value)


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A ``np.random.Generator`` from ``rng``: a seed (an int >= 0), a Generator
    (returned as is), or None (a Generator seeded from numpy's global state, which
    ``seed`` sets)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(np.random.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(
        "rng must be None, a non-negative int seed or a np.random.Generator, "
        f"got {rng!r}"
    )


def device():
    """``torch.device("cuda")`` when a GPU is usable, else ``torch.device("cpu")``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
