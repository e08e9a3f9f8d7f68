"""Gradient checking and gradient measurement: is a backward right, and how large are
the gradients?

Central differences
-------------------
For a scalar function ``f`` of an array ``x``, entry by entry::

    df/dx_i  ~=  (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)

By Taylor's theorem the truncation error is ``eps**2 f'''/6``; the one-sided difference
``(f(x + eps e_i) - f(x)) / eps`` is worse, ``eps f''/2``. Round-off adds about
``u |f| / eps``, where ``u`` is the unit round-off (1.1e-16 in float64, 6.0e-8 in
float32). The two errors balance near ``eps = u**(1/3)``: about 5e-6 in float64, hence
the default ``eps=1e-6``, and about 4e-3 in float32, where no step gives more than three
or four correct digits.

Relative error
--------------
::

    rel_error(a, b) = ||a - b|| / max(||a|| + ||b||, tiny)

with Euclidean norms of the flattened arrays. It is 0 for equal arrays, never above 1,
and does not change when both arrays are scaled. In float64, a correct backward checked
at ``eps=1e-6`` away from kinks gives about 1e-7 or less (usually far less); 1e-4
deserves a look, 1e-2 or more is a bug.

Checking a module or a function
-------------------------------
``gradcheck(module, inputs)`` reduces the output ``Y`` to the scalar ``L = sum(G * Y)``
with a fixed random ``G`` of the output's shape, so ``dL/dY = G`` is what enters
``backward`` and every entry of the Jacobian takes part. A module's ``backward(G)``
returns ``dL/dX`` and accumulates ``dL/dParameter`` (``labkit.nets`` conventions); both
are compared with central differences. A module whose forward returns a scalar (a loss)
is checked with ``L`` equal to that scalar and ``backward()`` called with no argument.
When ``backward`` returns one array it is ``dL/dX`` for the first floating-point input;
the others (a regression target, say) are held constant and not reported. A plain
function ``fn(*inputs) -> Y`` is checked against ``grad_fn(G, *inputs)``, which must
return ``dL/dX`` for every floating-point input (a tuple when there are several).
Integer inputs (class labels) are passed through unchanged and not checked.

Measuring
---------
``grad_norms(model)`` gives the Euclidean norm of every parameter's gradient, for a
labkit or a torch module, to watch gradients vanish or explode layer by layer;
``layer_outputs(model, X)`` gives every layer's output of a Sequential, for activation
statistics. ``clip_grad_norm_`` rescales gradients in place exactly as
``torch.nn.utils.clip_grad_norm_`` does.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np

__all__ = [
    "numerical_gradient",
    "rel_error",
    "gradcheck",
    "grad_norms",
    "clip_grad_norm_",
    "layer_outputs",
]

TINY = np.finfo(np.float64).tiny


def _check_eps(eps: float) -> float:
    if (
        isinstance(eps, bool)
        or not isinstance(eps, (int, float, np.floating))
        or not math.isfinite(eps)
        or eps <= 0
    ):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return float(eps)


def _scalar(value, where: str) -> float:
    """``value`` as a Python float; a ValueError if it is not one finite real number."""
    array = np.asarray(value)
    if array.size != 1 or array.dtype.kind not in "biuf":
        raise ValueError(
            f"{where} must return one real number, got an array of shape {array.shape}"
        )
    number = float(array.reshape(()))
    if not math.isfinite(number):
        raise ValueError(f"{where} returned {number}, expected a finite number")
    return number


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """Central differences ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)`` for every
    entry ``i`` of ``x``.

    ``x`` is perturbed in place, one entry at a time, and restored exactly, so ``f`` may
    ignore its argument and read ``x`` through a closure (a parameter's ``data``, say).
    The result has the dtype of ``x``: pass float32 to see float32 arithmetic.
    """
    eps = _check_eps(eps)
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise ValueError(
            f"x must be a numpy array of floats, got {type(x).__name__} "
            f"{getattr(x, 'dtype', '')}".rstrip()
        )
    if x.size == 0:
        raise ValueError("x must have at least one entry, got an empty array")
    if not np.isfinite(x).all():
        raise ValueError("x must be finite, got NaN or inf entries")
    if not x.flags.writeable:
        raise ValueError("x must be writeable: it is perturbed in place and restored")
    grad = np.zeros_like(x)
    step = x.dtype.type(eps)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + step
        f_plus = _scalar(f(x), "f")
        x[i] = old - step
        f_minus = _scalar(f(x), "f")
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def rel_error(a, b, tiny: float = TINY) -> float:
    """``||a - b|| / max(||a|| + ||b||, tiny)`` for arrays (or torch tensors) of one
    shape."""
    a, b = _as_array(a, "a"), _as_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape, got {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite, got NaN or inf entries")
    if not tiny > 0:
        raise ValueError(f"tiny must be > 0, got {tiny!r}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(
        np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), tiny)
    )


def _as_array(value, name: str) -> np.ndarray:
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


def _is_module(obj) -> bool:
    return hasattr(obj, "backward") and hasattr(obj, "named_parameters")


def _prepare_inputs(inputs) -> tuple[list, list[int]]:
    """Inputs as a list (floats copied to float64 arrays) and the positions of the float
    ones."""
    items = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    if not items:
        raise ValueError("inputs must hold at least one array, got none")
    prepared, float_positions = [], []
    for k, item in enumerate(items):
        array = np.asarray(item)
        if array.dtype.kind == "f":
            array = np.array(array, dtype=np.float64)  # a private copy we may perturb
            if not np.isfinite(array).all():
                raise ValueError(f"inputs[{k}] must be finite, got NaN or inf entries")
            float_positions.append(k)
        elif array.dtype.kind not in "biu":
            raise ValueError(
                f"inputs[{k}] must be an array of numbers, got dtype {array.dtype}"
            )
        prepared.append(array)
    if not float_positions:
        raise ValueError(
            "inputs must include at least one floating-point array to check"
        )
    return prepared, float_positions


def _input_names(float_positions: list[int]) -> list[str]:
    if len(float_positions) == 1:
        return ["input"]
    return [f"input{k}" for k in float_positions]


def gradcheck(
    module_or_fn,
    inputs,
    *,
    grad_fn: Callable | None = None,
    eps: float = 1e-6,
    seed: int = 0,
) -> dict[str, float]:
    """Relative error between analytic and central-difference gradients, per input and
    parameter.

    Returns ``{name: rel_error}``: ``"input"`` (``"input0"``, ``"input1"``, ... when
    several floating-point inputs get a gradient) and, for a module, each name of
    ``named_parameters()``. The worst entry, ``max(report.values())``, is the verdict.
    Parameters, their gradients and the inputs are left as they were (batch-norm running
    statistics do see the extra forward passes). Put stochastic modules (dropout) in
    ``eval()`` mode first: the check needs a deterministic function.
    """
    eps = _check_eps(eps)
    is_module = _is_module(module_or_fn)
    if not is_module and not callable(module_or_fn):
        raise ValueError(
            "module_or_fn must be a module with forward/backward or a function"
        )
    if not is_module and grad_fn is None:
        raise ValueError(
            "grad_fn is required to check a plain function: grad_fn(G, *inputs) -> "
            "dL/dX"
        )
    if is_module and grad_fn is not None:
        raise ValueError(
            "grad_fn is only for plain functions; a module brings its own backward"
        )
    inputs, float_positions = _prepare_inputs(inputs)
    forward = module_or_fn.forward if is_module else module_or_fn

    y = np.asarray(_first(forward(*inputs)), dtype=np.float64)
    scalar_output = y.ndim == 0
    G = (
        np.ones(())
        if scalar_output
        else np.random.default_rng(seed).normal(size=y.shape)
    )

    def loss(_=None) -> float:
        out = np.asarray(_first(forward(*inputs)), dtype=np.float64)
        return float(np.sum(G * out))

    if is_module:
        input_grads, param_grads = _module_gradients(
            module_or_fn, inputs, G, scalar_output
        )
    else:
        input_grads, param_grads = _as_list(grad_fn(G, *inputs)), {}
    if len(input_grads) > len(float_positions):
        raise ValueError(
            f"got {len(input_grads)} input gradients for {len(float_positions)} "
            "floating-point input(s)"
        )
    checked = float_positions[: len(input_grads)]
    report = {}
    for name, k, grad in zip(_input_names(checked), checked, input_grads):
        report[name] = rel_error(grad, numerical_gradient(loss, inputs[k], eps))
    for name, p in module_or_fn.named_parameters() if is_module else []:
        report[name] = rel_error(
            param_grads[name], numerical_gradient(loss, p.data, eps)
        )
    return report


def _first(out):
    """The main output of a forward that returns ``(output, state)``, as recurrent
    layers do."""
    return out[0] if isinstance(out, tuple) else out


def _as_list(grads) -> list[np.ndarray]:
    grads = grads if isinstance(grads, (tuple, list)) else [grads]
    return [np.asarray(g, dtype=np.float64) for g in grads]


def _module_gradients(module, inputs, G, scalar_output) -> tuple[list, dict]:
    """What the module's own backward computes: input gradients and
    ``{name: parameter grad}``.

    A ``backward`` returning one array gives ``dL/dX`` of the first floating-point input
    only; the other inputs (a regression target, say) are then held constant.
    """
    params = list(module.named_parameters())
    saved = {name: (None if p.grad is None else p.grad.copy()) for name, p in params}
    for _, p in params:
        p.grad = None
    module.forward(*inputs)
    input_grads = _as_list(module.backward() if scalar_output else module.backward(G))
    param_grads = {}
    for name, p in params:
        param_grads[name] = np.zeros_like(p.data) if p.grad is None else p.grad.copy()
        p.grad = saved[name]  # leave the module as we found it
    return input_grads, param_grads


def grad_norms(model) -> dict[str, float]:
    """``{name: ||grad||}`` (Euclidean norm) for every parameter of a labkit or torch
    module."""
    if not hasattr(model, "named_parameters"):
        raise ValueError(
            f"model must have named_parameters(), got {type(model).__name__}"
        )
    norms = {}
    for name, p in model.named_parameters():
        if p.grad is None:
            raise ValueError(
                f"parameter {name!r} has no gradient yet; run backward first"
            )
        norms[name] = float(np.linalg.norm(_as_array(p.grad, name).astype(np.float64)))
    if not norms:
        raise ValueError("model has no parameters")
    return norms


def clip_grad_norm_(
    parameters: Iterable, max_norm: float, norm_type: float = 2.0
) -> float:
    """Scale every ``p.grad`` by ``min(1, max_norm / (total + 1e-6))``; return
    ``total``.

    ``total`` is the ``norm_type``-norm of all gradients taken together as one vector
    (``inf`` for the largest absolute entry), as in ``torch.nn.utils.clip_grad_norm_``,
    including its 1e-6 in the denominator. Unlike torch's default, a NaN or infinite
    gradient raises a ValueError (torch's ``error_if_nonfinite=True``). Parameters
    without a gradient are skipped.
    """
    if (
        isinstance(max_norm, bool)
        or not isinstance(max_norm, (int, float, np.floating))
        or not math.isfinite(max_norm)
        or max_norm < 0
    ):
        raise ValueError(f"max_norm must be a finite number >= 0, got {max_norm!r}")
    norm_type = float(norm_type)
    if not (norm_type == math.inf or norm_type > 0):
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type!r}")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    for g in grads:
        if not np.isfinite(g).all():
            raise ValueError("gradients must be finite to clip, got NaN or inf entries")
    if norm_type == math.inf:
        total = max(float(np.abs(g).max()) for g in grads)
    else:
        per_tensor = [np.linalg.norm(g.ravel(), ord=norm_type) for g in grads]
        total = float(np.linalg.norm(np.array(per_tensor), ord=norm_type))
    coef = min(1.0, max_norm / (total + 1e-6))
    for g in grads:
        g *= coef
    return total


def layer_outputs(model, x) -> list[tuple[str, np.ndarray]]:
    """``(name, output)`` after each child of a Sequential, running ``x`` through them
    in order.

    Works for a labkit or a torch ``Sequential`` (torch outputs come back as numpy
    arrays); for activation statistics layer by layer:
    ``[out.std() for _, out in layer_outputs(model, X)]``.
    """
    if not hasattr(model, "named_children"):
        raise ValueError(
            "model must be a Sequential with named_children(), got "
            f"{type(model).__name__}"
        )
    children = list(model.named_children())
    if not children:
        raise ValueError("model has no layers")
    outputs = []
    for name, layer in children:
        x = layer(x)
        outputs.append(
            (name, _as_array(x, f"the output of layer {name}").astype(np.float64))
        )
    return outputs
