"""Seeding and device choice, so a notebook runs the same on a laptop CPU and on a GPU."""

from __future__ import annotations

import random

import numpy as np


def seed(value: int = 0) -> np.random.Generator:
    """Seed Python, numpy's legacy global state and torch (if installed); return a fresh Generator.

    Prefer passing the returned ``np.random.Generator`` around over relying on global state.
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
    ):  # pragma: no cover - torch is a dependency, but seed() does not need it
        pass
    else:
        torch.manual_seed(value)
    return np.random.default_rng(value)


def device():
    """``torch.device("cuda")`` when a GPU is usable, else ``torch.device("cpu")``."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
