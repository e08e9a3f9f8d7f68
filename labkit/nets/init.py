"""Initialisers with ``torch.nn.init``'s names and formulas, in place on a ``Parameter``
or a float numpy array (each returns its argument): ``init.kaiming_normal_(layer.weight,
rng=0)``. They draw from torch's distributions, not torch's random numbers."""

from __future__ import annotations

import math

import numpy as np

from ..runtime import as_generator
from .module import Parameter


def calculate_gain(nonlinearity: str, param=None) -> float:
    """torch's recommended gain: 1 (linear, conv, sigmoid), 5/3 (tanh), sqrt(2) (relu),
    sqrt(2 / (1 + slope^2)) (leaky_relu, slope ``param`` default 0.01), 3/4 (selu)."""
    linear = (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
        "sigmoid",
    )
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(
            param, (int, float, np.integer, np.floating)
        ) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(
                f"param must be a number (the negative slope), got {param!r}"
            )
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(f"nonlinearity {nonlinearity!r} is not supported")


def _init_target(tensor) -> np.ndarray:
    """The float array an initialiser fills: ``tensor.data`` for a Parameter, else
    ``tensor``."""
    array = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            "tensor must be a Parameter or a float numpy array, got "
            f"{type(tensor).__name__}"
        )
    return array


def _calculate_fan_in_and_fan_out(array: np.ndarray) -> tuple[int, int]:
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (as
    torch)."""
    if array.ndim < 2:
        raise ValueError(
            "tensor needs at least 2 dimensions to have a fan in and out, got shape "
            f"{array.shape}"
        )
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def uniform_(tensor, a: float = 0.0, b: float = 1.0, *, rng=None):
    """Fill with U(a, b)."""
    array = _init_target(tensor)
    if not a < b:
        raise ValueError(f"a must be smaller than b, got a={a}, b={b}")
    array[...] = as_generator(rng).uniform(a, b, array.shape)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, *, rng=None):
    """Fill with N(mean, std^2)."""
    array = _init_target(tensor)
    if not std >= 0:
        raise ValueError(f"std must be non-negative, got {std}")
    array[...] = as_generator(rng).normal(mean, std, array.shape)
    return tensor


def constant_(tensor, val: float):
    """Fill with ``val``."""
    _init_target(tensor)[...] = val
    return tensor


def zeros_(tensor):
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with 1."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain: float = 1.0, *, rng=None):
    """Glorot: U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)), variance gain^2
    2/(fan_in+fan_out)."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_init_target(tensor))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, rng=rng)


def xavier_normal_(tensor, gain: float = 1.0, *, rng=None):
    """Glorot: N(0, std^2) with std = gain sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(_init_target(tensor))
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), rng=rng)


def _kaiming_std(array: np.ndarray, a, mode: str, nonlinearity: str) -> float:
    """std = gain / sqrt(fan) with fan = fan_in or fan_out (``mode``)."""
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(array)
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng=None,
):
    """He: U(-b, b) with b = sqrt(3) gain / sqrt(fan); the defaults give gain sqrt(2)
    (ReLU)."""
    std = _kaiming_std(_init_target(tensor), a, mode, nonlinearity)
    return uniform_(tensor, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, rng=rng)


def kaiming_normal_(
    tensor,
    a: float = 0.0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    *,
    rng=None,
):
    """He: N(0, std^2) with std = gain / sqrt(fan); the defaults give std = sqrt(2 /
    fan_in)."""
    std = _kaiming_std(_init_target(tensor), a, mode, nonlinearity)
    return normal_(tensor, 0.0, std, rng=rng)
