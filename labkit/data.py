"""Seeded data generators: every data set of the course is made here, nothing is
downloaded.

Every generator takes ``rng`` (labkit's convention, see ``labkit.runtime``), by default
the seed 0, and returns float64 features and int64 labels, batch first: ``X`` is
``(n, 2)`` for the 2-D toy problems and ``(n, 1, size, size)`` for images.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ._checks import integer
from .runtime import as_generator

SHAPE_NAMES = ("vertical bar", "horizontal bar", "diagonal", "cross")


def _check_noise(noise: float, name: str = "noise") -> float:
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {noise!r}")
    return float(noise)


def two_moons(n: int = 200, noise: float = 0.1, rng=0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles, ``n // 2`` points each (class 0 on top), plus
    Gaussian noise."""
    n, noise, g = integer(n, "n", 2), _check_noise(noise), as_generator(rng)
    n0 = n // 2
    t0 = g.uniform(0, np.pi, n0)
    t1 = g.uniform(0, np.pi, n - n0)
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1 - np.cos(t1), 0.5 - np.sin(t1)])
    X = np.vstack([upper, lower]) + noise * g.normal(size=(n, 2))
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n - n0, np.int64)])
    return _shuffled(X, y, g)


def spirals(
    n: int = 300, classes: int = 3, noise: float = 0.2, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """``classes`` interleaved spiral arms of about ``n / classes`` points each, radius
    0 to 1."""
    n, classes = integer(n, "n"), integer(classes, "classes", 2)
    noise, g = _check_noise(noise), as_generator(rng)
    y = np.arange(n, dtype=np.int64) % classes
    r = g.uniform(0.05, 1.0, n)
    theta = 4.0 * r + 2 * np.pi * y / classes + noise * g.normal(size=n)
    X = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    return _shuffled(X, y, g)


def xor(n: int = 200, noise: float = 0.1, rng=0) -> tuple[np.ndarray, np.ndarray]:
    """Four clusters at (+-1, +-1); the label is 1 where the two signs differ (exclusive
    or)."""
    n, noise, g = integer(n, "n"), _check_noise(noise), as_generator(rng)
    corners = np.array([[-1, -1], [-1, 1], [1, -1], [1, 1]], dtype=np.float64)
    which = np.arange(n) % 4
    X = corners[which] + noise * g.normal(size=(n, 2))
    y = np.array([0, 1, 1, 0], dtype=np.int64)[which]
    return _shuffled(X, y, g)


def blobs(
    n: int = 200, centers: int = 3, std: float = 0.5, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs with standard deviation ``std`` around centres evenly spaced on a
    circle of radius 2."""
    n, centers = integer(n, "n"), integer(centers, "centers", 1)
    std, g = _check_noise(std, "std"), as_generator(rng)
    angles = 2 * np.pi * np.arange(centers) / centers
    means = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)])
    y = np.arange(n, dtype=np.int64) % centers
    X = means[y] + std * g.normal(size=(n, 2))
    return _shuffled(X, y, g)


def _draw_shape(kind: int, size: int, g: np.random.Generator) -> np.ndarray:
    """One ``(size, size)`` image of shape ``kind`` (see SHAPE_NAMES) at a random place
    and length."""
    img = np.zeros((size, size))
    length = g.integers(size // 2, size - 1)
    r, c = g.integers(0, size - length + 1, 2)
    line = np.arange(length)
    if kind == 0:  # vertical bar
        img[r + line, c + length // 2] = 1
    elif kind == 1:  # horizontal bar
        img[r + length // 2, c + line] = 1
    elif kind == 2:  # diagonal, top-left to bottom-right
        img[r + line, c + line] = 1
    else:  # cross: both bars through the centre
        img[r + line, c + length // 2] = 1
        img[r + length // 2, c + line] = 1
    return img


def shapes(
    n: int = 600, size: int = 12, noise: float = 0.1, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """Small grayscale images of four line shapes (``SHAPE_NAMES``) at random places,
    plus noise.

    Returns ``X`` of shape ``(n, 1, size, size)`` in float64 and labels ``y`` of shape
    ``(n,)``, classes balanced (``y = i % 4`` before shuffling).
    """
    n, size = integer(n, "n"), integer(size, "size", 6)
    noise, g = _check_noise(noise), as_generator(rng)
    y = np.arange(n, dtype=np.int64) % len(SHAPE_NAMES)
    X = np.stack([_draw_shape(int(k), size, g) for k in y])[
        :, None
    ]  # (n, 1, size, size)
    X += noise * g.normal(size=X.shape)
    return _shuffled(X, y, g)


def _shuffled(
    X: np.ndarray, y: np.ndarray, g: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    order = g.permutation(len(y))
    return np.ascontiguousarray(X[order]), y[order]


def split(
    X: np.ndarray, y: np.ndarray, fractions=(0.6, 0.2, 0.2), rng=0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffle and cut ``(X, y)`` into parts of the given fractions (e.g.
    train/dev/test).

    Fractions must be positive and sum to 1; returns one ``(X_part, y_part)`` per
    fraction.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same length, got {len(X)} and {len(y)}"
        )
    fractions = np.asarray(fractions, dtype=np.float64)
    if (
        fractions.ndim != 1
        or len(fractions) == 0
        or (fractions <= 0).any()
        or not np.isclose(fractions.sum(), 1.0)
    ):
        raise ValueError(
            f"fractions must be positive and sum to 1, got {fractions.tolist()}"
        )
    order = as_generator(rng).permutation(len(y))
    cuts = np.round(np.cumsum(fractions)[:-1] * len(y)).astype(int)
    return [(X[idx], y[idx]) for idx in np.split(order, cuts)]


def batches(
    X: np.ndarray, y: np.ndarray, batch_size: int, rng=0, shuffle: bool = True
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Mini-batches ``(X_b, y_b)`` covering the data once (one epoch); the last may be
    smaller."""
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(
            f"X and y must have the same length, got {len(X)} and {len(y)}"
        )
    batch_size = integer(batch_size, "batch_size")
    order = as_generator(rng).permutation(len(y)) if shuffle else np.arange(len(y))
    for start in range(0, len(y), batch_size):
        idx = order[start : start + batch_size]
        yield X[idx], y[idx]


# --- sequence tasks (chapter 3): time-first (T, N, F) inputs, where memory matters ----


def delayed_recall(
    n: int = 256,
    length: int = 20,
    delay: int | None = None,
    num_symbols: int = 4,
    rng=0,
) -> tuple[np.ndarray, np.ndarray]:
    """Random symbols, one per step; the target is the symbol seen ``delay`` steps
    before the end.

    Returns ``(inputs, targets)``: ``inputs`` one-hot float64 of shape
    ``(length, n, num_symbols)`` (time first, like ``torch.nn.RNN``), ``targets`` int64
    of shape ``(n,)`` with ``targets[j] = symbol[length - 1 - delay, j]``. ``delay``
    defaults to ``length - 1`` (recall the first symbol); ``delay = 0`` asks for the
    last one, which needs no memory at all.
    """
    n, length = integer(n, "n"), integer(length, "length")
    num_symbols, g = integer(num_symbols, "num_symbols", 2), as_generator(rng)
    delay = length - 1 if delay is None else delay
    if (
        not isinstance(delay, (int, np.integer))
        or isinstance(delay, bool)
        or not 0 <= delay < length
    ):
        raise ValueError(
            f"delay must be an integer in [0, length - 1] = [0, {length - 1}], got "
            f"{delay!r}"
        )
    symbols = g.integers(0, num_symbols, size=(length, n))  # (T, N)
    inputs = np.eye(num_symbols)[symbols]  # (T, N, num_symbols)
    return inputs, symbols[length - 1 - delay].astype(np.int64)


def adding_problem(
    n: int = 256, length: int = 50, rng=0
) -> tuple[np.ndarray, np.ndarray]:
    """The adding problem: add the two numbers that a marker channel points at.

    Returns ``(inputs, targets)``: ``inputs`` float64 of shape ``(length, n, 2)``,
    channel 0 uniform on [0, 1], channel 1 zero except for two ones, one in each half of
    the sequence; ``targets`` float64 of shape ``(n,)``, the sum of the two marked
    values. Always predicting 1 gives a mean squared error of 1/6, the baseline a model
    must beat.
    """
    n, length, g = integer(n, "n"), integer(length, "length", 2), as_generator(rng)
    values = g.uniform(0.0, 1.0, size=(length, n))  # (T, N)
    half = length // 2
    first = g.integers(0, half, size=n)
    second = g.integers(half, length, size=n)
    markers = np.zeros((length, n))
    markers[first, np.arange(n)] = 1.0
    markers[second, np.arange(n)] = 1.0
    inputs = np.stack([values, markers], axis=-1)  # (T, N, 2)
    targets = values[first, np.arange(n)] + values[second, np.arange(n)]
    return inputs, targets
