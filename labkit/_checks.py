"""Argument checks shared by labkit's modules: each returns the checked value,
converted, or raises a ValueError that names the argument."""

from __future__ import annotations

import numpy as np


def integer(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int, or a ValueError unless it is an integer >= ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < minimum
    ):
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}"
        )
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def probability(value, name: str = "p") -> float:
    """``value`` as a float, or a ValueError unless it is a real number in [0, 1]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def float_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array, or a ValueError naming ``name``."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a numeric array, got {type(x).__name__}"
        ) from err


def check_input(x, name: str = "x", ndim=None, layout: str = "") -> np.ndarray:
    """``x`` as a finite, non-empty float64 array whose ndim is ``ndim`` (an int or a
    tuple)."""
    a = float_array(x, name)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and a.ndim not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        layout = f" {layout}" if layout else ""
        raise ValueError(f"{name} must be a {dims} array{layout}, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(
            f"{name} is empty (shape {a.shape}), expected a non-empty array"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def check_size(x: np.ndarray, axis: int, expected: int, name: str, what: str) -> None:
    if x.shape[axis] != expected:
        raise ValueError(
            f"{name} has {x.shape[axis]} {what} (shape {x.shape}), expected {expected}"
        )


def check_grad(grad, shape: tuple[int, ...], name: str = "grad_out") -> np.ndarray:
    """``grad`` as a finite float64 array of exactly ``shape`` (the shape of the forward
    output)."""
    g = float_array(grad, name)
    if g.shape != tuple(shape):
        raise ValueError(
            f"{name} has shape {g.shape}, expected {tuple(shape)} (the forward output)"
        )
    if not np.isfinite(g).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return g


def pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a pair (the torch
    convention)."""
    pair = (
        (value, value)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        else value
    )
    if not (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(
            isinstance(v, (int, np.integer))
            and not isinstance(v, bool)
            and v >= minimum
            for v in pair
        )
    ):
        raise ValueError(
            f"{name} must be an int >= {minimum} or a pair of them, got {value!r}"
        )
    return int(pair[0]), int(pair[1])
