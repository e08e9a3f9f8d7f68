"""From-scratch neural-network layers in numpy that mirror ``torch.nn``.

Conventions
-----------
- Batch first: ``X`` is ``(N, in_features)``; images are ``(N, C, H, W)``; ``RNN`` and ``LSTM``
  take sequences ``(T, N, F)`` like torch's default ``batch_first=False``.
- Parameter names and shapes equal torch's (``Linear.weight`` is ``(out_features, in_features)``),
  so ``load_state_dict`` can take a torch model's ``state_dict()`` and outputs and gradients can be
  compared entry by entry.
- Float64 throughout.
- ``forward(x)`` caches what ``backward`` needs; ``backward(grad_out)`` returns dLoss/dInput and
  *accumulates* dLoss/dParameter into each ``Parameter.grad`` (call ``zero_grad()`` between steps,
  as in torch).
- Random initialisation takes ``rng``: an int seed, a ``np.random.Generator``, or ``None`` (a seed
  is drawn from numpy's global state, so ``labkit.seed(n)`` makes the model reproducible).
  Layers are initialised with torch's distributions, not torch's random numbers: copy weights
  with ``load_state_dict`` to compare with torch.
- Losses are modules too: ``loss = loss_fn(input, target)`` returns a float and
  ``loss_fn.backward()`` returns dLoss/dInput.

Contents
--------
``Parameter``, ``Module``; ``Linear``, ``Identity``, ``ReLU``, ``Tanh``, ``Sigmoid``, ``Flatten``,
``Sequential``, ``Dropout``, ``BatchNorm1d``; ``Conv2d``, ``MaxPool2d`` and the ``im2col`` /
``col2im`` helpers behind them; ``RNNCell``, ``LSTMCell``, ``RNN``, ``LSTM``; ``MSELoss``,
``CrossEntropyLoss``; ``softmax``, ``log_softmax``; initialisers with ``torch.nn.init`` names
(``xavier_uniform_`` ..., also reachable as ``nets.init.xavier_uniform_``).
"""

from __future__ import annotations

import math
from collections import namedtuple
from types import SimpleNamespace

import numpy as np


class Parameter:
    """A trainable float64 array ``data`` with its gradient ``grad`` (``None`` until backward).

    Optimizers update ``data`` in place, so every module holding this parameter sees the change.
    """

    def __init__(self, data):
        self.data = np.array(data, dtype=np.float64)
        self.grad: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def accumulate(self, grad: np.ndarray) -> None:
        """Add ``grad`` to ``self.grad`` (created as zeros on first use)."""
        if grad.shape != self.data.shape:
            raise ValueError(
                f"gradient shape {grad.shape} does not match parameter {self.data.shape}"
            )
        if self.grad is None:
            self.grad = np.zeros_like(self.data)
        self.grad += grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape})"


# ---------------------------------------------------------------------------------------------
# Argument checks shared by every layer
# ---------------------------------------------------------------------------------------------


def _generator(rng) -> np.random.Generator:
    """A numpy Generator from ``rng``: a Generator, a non-negative int seed, or None (global state)."""
    if rng is None:
        return np.random.default_rng(np.random.randint(0, 2**63 - 1, dtype=np.int64))
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise ValueError(
        f"rng must be None, a non-negative int seed or a np.random.Generator, got {rng!r}"
    )


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _probability(value, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not 0.0 <= value <= 1.0
    ):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a float64 array, or a ValueError naming ``name``."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{name} must be a numeric array, got {type(x).__name__}"
        ) from err


def _check_input(x, name: str = "x", ndim=None, layout: str = "") -> np.ndarray:
    """``x`` as a finite, non-empty float64 array whose ndim is ``ndim`` (an int or a tuple)."""
    a = _as_float_array(x, name)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if allowed is not None and a.ndim not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        layout = f" {layout}" if layout else ""
        raise ValueError(f"{name} must be a {dims} array{layout}, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape})")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return a


def _check_size(x: np.ndarray, axis: int, expected: int, name: str, what: str) -> None:
    if x.shape[axis] != expected:
        raise ValueError(
            f"{name} has {x.shape[axis]} {what} (shape {x.shape}), expected {expected}"
        )


def _check_grad(grad, shape: tuple[int, ...], name: str = "grad_out") -> np.ndarray:
    """``grad`` as a finite float64 array of exactly ``shape`` (the shape of the forward output)."""
    g = _as_float_array(grad, name)
    if g.shape != tuple(shape):
        raise ValueError(
            f"{name} has shape {g.shape}, expected {tuple(shape)} (the forward output)"
        )
    if not np.isfinite(g).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return g


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow: exp(-|x|) never exceeds 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


# ---------------------------------------------------------------------------------------------
# Module
# ---------------------------------------------------------------------------------------------

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class: parameters, buffers and child modules are found among the attributes.

    As in torch, an attribute holding a ``Parameter`` is a parameter, one holding a ``Module`` is a
    child, and arrays registered with ``register_buffer`` are buffers (state that is saved but not
    trained, like BatchNorm's running mean). Discovery follows assignment order, so dotted names
    (``0.weight``, ``encoder.1.bias``) and ``state_dict`` keys equal torch's.
    """

    training = True
    _buffer_names: tuple[str, ...] | list[str] = ()
    _cache = None

    def __init__(self):
        self.training = True
        self._buffer_names = []

    # -- computation ---------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _saved(self):
        """What forward cached for backward, or a ValueError if forward has not run."""
        if self._cache is None:
            raise ValueError(
                f"grad_out: {type(self).__name__}.backward() called before forward()"
            )
        return self._cache

    # -- discovery -----------------------------------------------------------------------------
    def register_buffer(self, name: str, value) -> None:
        """Store ``value`` (an array, or None for "absent") as a buffer saved in ``state_dict``."""
        setattr(self, name, None if value is None else np.asarray(value))
        if name not in self._buffer_names:
            self._buffer_names = [*self._buffer_names, name]

    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = ""):
        """(dotted name, module) for this module and all descendants, depth first, like torch."""
        seen: set[int] = set()

        def walk(module, name):
            if id(module) in seen:
                return
            seen.add(id(module))
            yield name, module
            for child_name, child in module.named_children():
                yield from walk(child, f"{name}.{child_name}" if name else child_name)

        yield from walk(self, prefix)

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) pairs in torch's order; a shared parameter appears once."""
        seen: set[int] = set()
        for module_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{module_name}.{name}" if module_name else name), value

    def parameters(self):
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = ""):
        for module_name, module in self.named_modules(prefix):
            for name in module._buffer_names:
                value = getattr(module, name)
                if value is not None:
                    yield (f"{module_name}.{name}" if module_name else name), value

    def buffers(self):
        for _, b in self.named_buffers():
            yield b

    # -- state ---------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``grad = None`` (torch's default) or zeros."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0.0

    def train(self, mode: bool = True):
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) on all modules."""
        if not isinstance(mode, bool):
            raise ValueError(f"mode must be a bool, got {mode!r}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Live arrays of every parameter and buffer by torch's state_dict key, in torch's order."""
        state = {}
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    state[prefix + name] = value.data
            for name in module._buffer_names:
                if getattr(module, name) is not None:
                    state[prefix + name] = getattr(module, name)
        return state

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed like torch's ``state_dict()``."""
        return {name: value.copy() for name, value in self._state_arrays().items()}

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy arrays (numpy or torch tensors) into the parameters and buffers, in place.

        Keys and shapes must match (``strict=False`` loads the common keys and reports the rest);
        nothing is changed unless every array fits.
        """
        own = self._state_arrays()
        incoming = dict(state_dict)
        missing = [k for k in own if k not in incoming]
        unexpected = [k for k in incoming if k not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"state_dict does not match {type(self).__name__}: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        arrays = {}
        for key in own.keys() & incoming.keys():
            value = incoming[key]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.shape != own[key].shape:
                raise ValueError(
                    f"state_dict[{key!r}] has shape {value.shape}, "
                    f"expected {own[key].shape}"
                )
            arrays[key] = value
        for key, value in arrays.items():
            own[key][...] = value
        return IncompatibleKeys(missing, unexpected)

    # -- display -------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [
            f"({name}): " + repr(child).replace("\n", "\n  ")
            for name, child in self.named_children()
        ]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        head = [self.extra_repr()] if self.extra_repr() else []
        return f"{type(self).__name__}(\n  " + "\n  ".join(head + lines) + "\n)"


# ---------------------------------------------------------------------------------------------
# Dense layers and activations
# ---------------------------------------------------------------------------------------------


class Linear(Module):
    """y = x W^T + b for x of shape ``(*, in_features)``; W is ``(out_features, in_features)``.

    Initialised like torch: W and b ~ U(-1/sqrt(in_features), 1/sqrt(in_features)).
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *, rng=None
    ):
        super().__init__()
        self.in_features = _positive_int(in_features, "in_features")
        self.out_features = _positive_int(out_features, "out_features")
        rng = _generator(rng)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(
            rng.uniform(-bound, bound, (self.out_features, self.in_features))
        )
        self.bias = (
            Parameter(rng.uniform(-bound, bound, self.out_features)) if bias else None
        )

    def forward(self, x):
        x = _check_input(x, "x", ndim=None)
        if x.ndim == 0:
            raise ValueError(
                "x must have at least 1 dimension (*, in_features), got a scalar"
            )
        _check_size(x, -1, self.in_features, "x", "features in its last dimension")
        self._cache = x
        y = x @ self.weight.data.T  # (*, out_features)
        return y + self.bias.data if self.bias is not None else y

    def backward(self, grad_out):
        x = self._saved()
        g = _check_grad(grad_out, x.shape[:-1] + (self.out_features,))
        g2 = g.reshape(-1, self.out_features)  # (M, out) with M = prod(*)
        self.weight.accumulate(g2.T @ x.reshape(-1, self.in_features))
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0))
        return g @ self.weight.data  # (*, in_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """y = x; backward passes the gradient through."""

    def forward(self, x):
        x = _check_input(x, "x")
        self._cache = x.shape
        return x

    def backward(self, grad_out):
        return _check_grad(grad_out, self._saved())


class ReLU(Module):
    """y = max(x, 0); dy/dx = 1 where x > 0, else 0 (0 at the kink, as torch)."""

    def forward(self, x):
        x = _check_input(x, "x")
        self._cache = x > 0
        return np.where(self._cache, x, 0.0)

    def backward(self, grad_out):
        positive = self._saved()
        return _check_grad(grad_out, positive.shape) * positive


class Tanh(Module):
    """y = tanh(x); dy/dx = 1 - y^2."""

    def forward(self, x):
        y = np.tanh(_check_input(x, "x"))
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._saved()
        return _check_grad(grad_out, y.shape) * (1.0 - y**2)


class Sigmoid(Module):
    """y = 1 / (1 + exp(-x)), computed without overflow; dy/dx = y (1 - y)."""

    def forward(self, x):
        y = _sigmoid(_check_input(x, "x"))
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._saved()
        return _check_grad(grad_out, y.shape) * y * (1.0 - y)


class Flatten(Module):
    """Merge dimensions ``start_dim`` .. ``end_dim`` into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x):
        x = _check_input(x, "x")
        start = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < x.ndim:
            raise ValueError(
                f"x of shape {x.shape} cannot be flattened from start_dim={self.start_dim} "
                f"to end_dim={self.end_dim}"
            )
        self._cache = x.shape
        return x.reshape(x.shape[:start] + (-1,) + x.shape[end + 1 :])

    def backward(self, grad_out):
        shape = self._saved()
        g = _as_float_array(grad_out, "grad_out")
        if g.size != math.prod(shape):
            raise ValueError(
                f"grad_out has shape {g.shape}, which does not flatten the input {shape}"
            )
        return g.reshape(shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Sequential(Module):
    """Apply modules in order; backward applies their backward in reverse order.

    Children are named ``"0"``, ``"1"``, ... as in torch; index, slice, iterate, take ``len``.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise ValueError(
                    f"modules[{i}] must be a Module, got {type(module).__name__}"
                )
            setattr(self, str(i), module)

    def _layers(self) -> list[Module]:
        return list(self.children())

    def __len__(self) -> int:
        return len(self._layers())

    def __iter__(self):
        return iter(self._layers())

    def __getitem__(self, index):
        layers = self._layers()
        if isinstance(index, slice):
            return Sequential(*layers[index])
        return layers[index]

    def append(self, module: Module) -> "Sequential":
        if not isinstance(module, Module):
            raise ValueError(f"module must be a Module, got {type(module).__name__}")
        setattr(self, str(len(self)), module)
        return self

    def forward(self, x):
        for layer in self:
            x = layer(x)
        return x

    def backward(self, grad_out):
        for layer in reversed(self._layers()):
            grad_out = layer.backward(grad_out)
        return grad_out


class Dropout(Module):
    """Inverted dropout: in training y = x * m / (1 - p) with m ~ Bernoulli(1 - p); identity in eval.

    The scaled mask ``m / (1 - p)`` of the last forward is kept in ``self.mask`` and reused by
    backward. ``p = 1`` zeros everything (as torch); ``p = 0`` is the identity.
    """

    def __init__(self, p: float = 0.5, *, rng=None):
        super().__init__()
        self.p = _probability(p, "p")
        self._rng = _generator(rng)
        self.mask: np.ndarray | None = None

    def forward(self, x):
        x = _check_input(x, "x")
        if not self.training or self.p == 0.0:
            self.mask = None
        elif self.p == 1.0:
            self.mask = np.zeros_like(x)
        else:
            keep = self._rng.random(x.shape) >= self.p  # True with probability 1 - p
            self.mask = keep / (1.0 - self.p)
        self._cache = x.shape
        return x if self.mask is None else x * self.mask

    def backward(self, grad_out):
        g = _check_grad(grad_out, self._saved())
        return g if self.mask is None else g * self.mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


# ---------------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------------

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    """A loss: ``forward(input, target)`` returns the loss, ``backward()`` returns dLoss/dinput."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {_REDUCTIONS}, got {reduction!r}"
            )
        self.reduction = reduction

    def _reduce(self, losses: np.ndarray):
        """Mean or sum as a Python float, or the per-element losses for ``reduction='none'``."""
        if self.reduction == "none":
            return losses
        return float(losses.mean() if self.reduction == "mean" else losses.sum())

    def _upstream(self, grad_out, shape: tuple[int, ...]):
        """dLoss/d(per-element loss): 1/numel (mean), 1 (sum), or ``grad_out`` itself (none)."""
        if self.reduction == "none":
            return np.ones(shape) if grad_out is None else _check_grad(grad_out, shape)
        scale = 1.0 if grad_out is None else float(grad_out)
        return scale / math.prod(shape) if self.reduction == "mean" else scale

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """L = mean((input - target)^2) (or sum, or elementwise); dL/dinput = 2 (input - target) / numel."""

    def forward(self, input, target):
        x = _check_input(input, "input")
        t = _check_input(target, "target")
        if t.shape != x.shape:
            raise ValueError(
                f"target has shape {t.shape}, expected the input's shape {x.shape}"
            )
        diff = x - t
        self._cache = diff
        return self._reduce(diff**2)

    def backward(self, grad_out=None):
        diff = self._saved()
        return 2.0 * diff * self._upstream(grad_out, diff.shape)


class CrossEntropyLoss(_Loss):
    """L_n = -sum_c q_nc log softmax(z_n)_c for logits z (N, C); mean over n by default.

    ``target`` is either class indices (N,) of an integer dtype (q = one-hot) or class
    probabilities (N, C) of a float dtype (q = target), as in torch. With ``label_smoothing``
    eps, q becomes (1 - eps) q + eps / C. Gradient: dL_n/dz_n = softmax(z_n) sum_c q_nc - q_n.
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.label_smoothing = _probability(label_smoothing, "label_smoothing")

    def _target_distribution(self, target, n: int, c: int) -> np.ndarray:
        """q (N, C) from class indices or probabilities, label smoothing applied."""
        if hasattr(target, "detach"):
            target = target.detach().cpu().numpy()
        t = np.asarray(target)
        if t.ndim == 1 and np.issubdtype(t.dtype, np.integer):
            if t.shape != (n,):
                raise ValueError(
                    f"target has shape {t.shape}, expected ({n},) class indices"
                )
            if t.min() < 0 or t.max() >= c:
                raise ValueError(
                    f"target holds class indices outside [0, {c}): min {t.min()}, max {t.max()}"
                )
            q = np.zeros((n, c))
            q[np.arange(n), t] = 1.0
        elif t.ndim == 2 and np.issubdtype(t.dtype, np.floating):
            q = _check_input(t, "target", ndim=2)
            if q.shape != (n, c):
                raise ValueError(
                    f"target has shape {q.shape}, expected ({n}, {c}) class probabilities"
                )
        else:
            raise ValueError(
                f"target must be integer class indices of shape ({n},) or float class "
                f"probabilities of shape ({n}, {c}); got dtype {t.dtype}, shape {t.shape}"
            )
        eps = self.label_smoothing
        return (1.0 - eps) * q + eps / c if eps else q

    def forward(self, input, target):
        z = _check_input(input, "input", ndim=2, layout="(N, C) of logits")
        n, c = z.shape
        q = self._target_distribution(target, n, c)
        logp = log_softmax(z, axis=1)  # (N, C)
        self._cache = (np.exp(logp), q)
        return self._reduce(-(q * logp).sum(axis=1))

    def backward(self, grad_out=None):
        p, q = self._saved()
        upstream = self._upstream(grad_out, (p.shape[0],))
        if self.reduction == "none":
            upstream = upstream[:, None]  # (N, 1)
        return (p * q.sum(axis=1, keepdims=True) - q) * upstream

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"


def log_softmax(x, axis: int = -1) -> np.ndarray:
    """log softmax(x) = (x - max x) - log sum exp(x - max x) along ``axis``, never overflowing."""
    x = _as_float_array(x, "x")
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x, axis: int = -1) -> np.ndarray:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``axis``."""
    x = _as_float_array(x, "x")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# ---------------------------------------------------------------------------------------------
# Initialisers (torch.nn.init names; in place on a Parameter or a float64 array; return it)
# ---------------------------------------------------------------------------------------------


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
    """The float array an initialiser fills: ``tensor.data`` for a Parameter, else ``tensor``."""
    array = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"tensor must be a Parameter or a float numpy array, got {type(tensor).__name__}"
        )
    return array


def _calculate_fan_in_and_fan_out(array: np.ndarray) -> tuple[int, int]:
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field (as torch)."""
    if array.ndim < 2:
        raise ValueError(
            f"tensor needs at least 2 dimensions to have a fan in and out, got shape {array.shape}"
        )
    receptive = math.prod(array.shape[2:])
    return array.shape[1] * receptive, array.shape[0] * receptive


def uniform_(tensor, a: float = 0.0, b: float = 1.0, *, rng=None):
    """Fill with U(a, b)."""
    array = _init_target(tensor)
    if not a < b:
        raise ValueError(f"a must be smaller than b, got a={a}, b={b}")
    array[...] = _generator(rng).uniform(a, b, array.shape)
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0, *, rng=None):
    """Fill with N(mean, std^2)."""
    array = _init_target(tensor)
    if not std >= 0:
        raise ValueError(f"std must be non-negative, got {std}")
    array[...] = _generator(rng).normal(mean, std, array.shape)
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
    """Glorot: U(-a, a) with a = gain sqrt(6 / (fan_in + fan_out)), variance gain^2 2/(fan_in+fan_out)."""
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
    """He: U(-b, b) with b = sqrt(3) gain / sqrt(fan); the defaults give gain sqrt(2) (ReLU)."""
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
    """He: N(0, std^2) with std = gain / sqrt(fan); the defaults give std = sqrt(2 / fan_in)."""
    std = _kaiming_std(_init_target(tensor), a, mode, nonlinearity)
    return normal_(tensor, 0.0, std, rng=rng)


init = SimpleNamespace(
    calculate_gain=calculate_gain,
    uniform_=uniform_,
    normal_=normal_,
    constant_=constant_,
    zeros_=zeros_,
    ones_=ones_,
    xavier_uniform_=xavier_uniform_,
    xavier_normal_=xavier_normal_,
    kaiming_uniform_=kaiming_uniform_,
    kaiming_normal_=kaiming_normal_,
)
init.__doc__ = (
    "torch.nn.init look-alike: ``nets.init.kaiming_normal_(layer.weight, rng=0)``."
)


# ---------------------------------------------------------------------------------------------
# Batch normalisation
# ---------------------------------------------------------------------------------------------


class BatchNorm1d(Module):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per feature, for x (N, C) or (N, C, L).

    Training: mu and the biased var are the batch statistics over N (and L); the running
    estimates become (1 - momentum) * running + momentum * batch, using the *unbiased* batch
    variance for ``running_var`` (as torch); ``momentum=None`` gives the cumulative average.
    Eval: the running estimates replace the batch statistics. ``weight`` is gamma, ``bias`` beta.
    Backward in training, with xhat = (x - mu) / sqrt(var + eps) and dxhat = gamma * dy:
    dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"eps must be a positive number, got {eps!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else _probability(momentum, "momentum")
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        c = self.num_features
        self.weight = Parameter(np.ones(c)) if self.affine else None
        self.bias = Parameter(np.zeros(c)) if self.affine else None
        tracked = self.track_running_stats
        self.register_buffer("running_mean", np.zeros(c) if tracked else None)
        self.register_buffer("running_var", np.ones(c) if tracked else None)
        self.register_buffer(
            "num_batches_tracked", np.array(0, dtype=np.int64) if tracked else None
        )

    def _update_running_stats(self, mean: np.ndarray, var: np.ndarray, m: int) -> None:
        """running <- (1 - factor) running + factor batch, with the unbiased variance var m/(m-1)."""
        self.num_batches_tracked += 1
        factor = (
            1.0 / float(self.num_batches_tracked)
            if self.momentum is None
            else self.momentum
        )
        self.running_mean[...] = (1.0 - factor) * self.running_mean + factor * mean
        self.running_var[...] = (1.0 - factor) * self.running_var + factor * var * m / (
            m - 1
        )

    def forward(self, x):
        x = _check_input(x, "x", ndim=(2, 3), layout="(N, C) or (N, C, L)")
        _check_size(x, 1, self.num_features, "x", "features (dimension 1)")
        axes = (0,) if x.ndim == 2 else (0, 2)
        shape = (1, self.num_features) + (1,) * (
            x.ndim - 2
        )  # broadcasts over N (and L)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            m = x.size // self.num_features
            if m < 2:
                raise ValueError(
                    f"x: batch statistics need more than 1 value per feature, got shape {x.shape}"
                )
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var, m)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)  # (C,)
        xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        self._cache = (xhat, inv_std.reshape(shape), axes, use_batch_stats)
        if not self.affine:
            return xhat
        return xhat * self.weight.data.reshape(shape) + self.bias.data.reshape(shape)

    def backward(self, grad_out):
        xhat, inv_std, axes, used_batch_stats = self._saved()
        g = _check_grad(grad_out, xhat.shape)
        if self.affine:
            self.weight.accumulate((g * xhat).sum(axis=axes))
            self.bias.accumulate(g.sum(axis=axes))
            dxhat = g * self.weight.data.reshape(inv_std.shape)
        else:
            dxhat = g
        if not used_batch_stats:  # the running statistics are constants
            return dxhat * inv_std
        return inv_std * (
            dxhat
            - dxhat.mean(axis=axes, keepdims=True)
            - xhat * (dxhat * xhat).mean(axis=axes, keepdims=True)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


# ---------------------------------------------------------------------------------------------
# Convolution and pooling
# ---------------------------------------------------------------------------------------------


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``minimum``, as a pair (the torch convention)."""
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


def _output_hw(
    h: int, w: int, kernel_size, stride, padding, name: str = "x"
) -> tuple[int, int]:
    """Output height and width: floor((size + 2 padding - kernel) / stride) + 1, at least 1."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise ValueError(
            f"{name}: padded input {h + 2 * ph}x{w + 2 * pw} is smaller than the kernel {kh}x{kw}"
        )
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def im2col(x, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Unfold every kernel-sized patch of x (N, C, H, W) into one row: (N*H_out*W_out, C*kh*kw).

    Rows run over (n, i, j) with j fastest, the output position; columns over (c, u, v), the
    position inside the patch, in the order of ``weight.reshape(out_channels, -1)``. So a
    convolution is one matrix product, ``im2col(x) @ weight.reshape(out_channels, -1).T``.
    Zero padding is applied first. (torch's ``F.unfold`` holds the same numbers, laid out as
    (N, C*kh*kw, H_out*W_out).)
    """
    x = _check_input(x, "x", ndim=4, layout="(N, C, H, W)")
    k, s, p = (
        _pair(kernel_size, "kernel_size", 1),
        _pair(stride, "stride", 1),
        _pair(padding, "padding", 0),
    )
    _output_hw(*x.shape[2:], k, s, p)
    return _unfold(np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))), k, s)


def _unfold(
    xp: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int]
) -> np.ndarray:
    """``im2col`` of an already padded (N, C, Hp, Wp) array, without checks."""
    (kh, kw), (sh, sw) = kernel_size, stride
    n, c = xp.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(
        xp, (kh, kw), axis=(2, 3)
    )  # (N, C, Hp-kh+1, Wp-kw+1, kh, kw)
    windows = windows[:, :, ::sh, ::sw]  # (N, C, H_out, W_out, kh, kw), still a view
    h_out, w_out = windows.shape[2:4]
    return windows.transpose(0, 2, 3, 1, 4, 5).reshape(n * h_out * w_out, c * kh * kw)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0) -> np.ndarray:
    """The adjoint of ``im2col``: add each row of cols back onto the patch it came from.

    cols (N*H_out*W_out, C*kh*kw) -> (N, C, H, W); where patches overlap the values add up, so
    ``col2im(dcols)`` is the gradient wrt x of anything computed from ``im2col(x)``. The loop runs
    over the kh*kw kernel offsets, each adding a strided slice (no index collides within one).
    """
    if len(x_shape) != 4:
        raise ValueError(f"x_shape must be (N, C, H, W), got {x_shape}")
    n, c, h, w = (int(v) for v in x_shape)
    k, s, p = (
        _pair(kernel_size, "kernel_size", 1),
        _pair(stride, "stride", 1),
        _pair(padding, "padding", 0),
    )
    h_out, w_out = _output_hw(h, w, k, s, p, name="x_shape")
    cols = _as_float_array(cols, "cols")
    expected = (n * h_out * w_out, c * k[0] * k[1])
    if cols.shape != expected:
        raise ValueError(
            f"cols has shape {cols.shape}, expected {expected} for x_shape {tuple(x_shape)}"
        )
    patches = cols.reshape(n, h_out, w_out, c, k[0], k[1]).transpose(
        0, 3, 4, 5, 1, 2
    )  # (N, C, kh, kw, H_out, W_out)
    xp = np.zeros((n, c, h + 2 * p[0], w + 2 * p[1]))
    for u in range(k[0]):
        for v in range(k[1]):
            xp[:, :, u : u + s[0] * h_out : s[0], v : v + s[1] * w_out : s[1]] += (
                patches[:, :, u, v]
            )
    return xp[:, :, p[0] : p[0] + h, p[1] : p[1] + w]


class Conv2d(Module):
    """Cross-correlation (no kernel flip, as torch): for x (N, C_in, H, W),

    y[n, o, i, j] = b[o] + sum_{c, u, v} W[o, c, u, v] * xpad[n, c, i*sh + u, j*sw + v],
    computed as ``im2col(x) @ W.reshape(C_out, -1).T``; backward uses ``col2im``. weight is
    (out_channels, in_channels, kh, kw); init U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
    fan_in = in_channels * kh * kw, as torch.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        bias: bool = True,
        *,
        rng=None,
    ):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        rng = _generator(rng)
        bound = 1.0 / math.sqrt(
            self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        )
        self.weight = Parameter(
            rng.uniform(
                -bound, bound, (self.out_channels, self.in_channels) + self.kernel_size
            )
        )
        self.bias = (
            Parameter(rng.uniform(-bound, bound, self.out_channels)) if bias else None
        )

    def forward(self, x):
        x = _check_input(x, "x", ndim=4, layout="(N, C, H, W)")
        _check_size(x, 1, self.in_channels, "x", "channels (dimension 1)")
        n, _, h, w = x.shape
        h_out, w_out = _output_hw(h, w, self.kernel_size, self.stride, self.padding)
        cols = im2col(
            x, self.kernel_size, self.stride, self.padding
        )  # (N*H_out*W_out, C_in*kh*kw)
        y = (
            cols @ self.weight.data.reshape(self.out_channels, -1).T
        )  # (N*H_out*W_out, C_out)
        if self.bias is not None:
            y += self.bias.data
        self._cache = (cols, x.shape)
        return np.ascontiguousarray(
            y.reshape(n, h_out, w_out, self.out_channels).transpose(0, 3, 1, 2)
        )

    def backward(self, grad_out):
        cols, x_shape = self._saved()
        n, h_out, w_out = (
            x_shape[0],
            *_output_hw(*x_shape[2:], self.kernel_size, self.stride, self.padding),
        )
        g = _check_grad(grad_out, (n, self.out_channels, h_out, w_out))
        g2 = g.transpose(0, 2, 3, 1).reshape(
            -1, self.out_channels
        )  # (N*H_out*W_out, C_out)
        self.weight.accumulate((g2.T @ cols).reshape(self.weight.shape))
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0))
        dcols = g2 @ self.weight.data.reshape(
            self.out_channels, -1
        )  # (N*H_out*W_out, C_in*kh*kw)
        return col2im(dcols, x_shape, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"
        )


class MaxPool2d(Module):
    """y[n, c, i, j] = max of the (kh, kw) window at (i*sh, j*sw) of x padded with -inf.

    ``stride`` defaults to ``kernel_size``; padding is at most half the kernel (as torch).
    Backward sends each output's gradient to the position of its window's maximum, the first
    one in row-major order on ties (as torch), adding where windows overlap.
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"padding must be at most half of kernel_size {self.kernel_size}, got {self.padding}"
            )

    def forward(self, x):
        x = _check_input(x, "x", ndim=4, layout="(N, C, H, W)")
        n, c, h, w = x.shape
        ph, pw = self.padding
        h_out, w_out = _output_hw(h, w, self.kernel_size, self.stride, self.padding)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
        # each channel is pooled on its own: unfold it as a single-channel image
        images = xp.reshape(n * c, 1, h + 2 * ph, w + 2 * pw)
        cols = _unfold(
            images, self.kernel_size, self.stride
        )  # (N*C*H_out*W_out, kh*kw)
        argmax = cols.argmax(axis=1)  # the first maximum on ties
        self._cache = (argmax, x.shape)
        return cols[np.arange(cols.shape[0]), argmax].reshape(n, c, h_out, w_out)

    def backward(self, grad_out):
        argmax, (n, c, h, w) = self._saved()
        (ph, pw), (kh, kw) = self.padding, self.kernel_size
        h_out, w_out = _output_hw(h, w, self.kernel_size, self.stride, self.padding)
        g = _check_grad(grad_out, (n, c, h_out, w_out))
        dcols = np.zeros((argmax.size, kh * kw))
        dcols[np.arange(argmax.size), argmax] = g.ravel()
        dxp = col2im(
            dcols, (n * c, 1, h + 2 * ph, w + 2 * pw), self.kernel_size, self.stride
        )
        return dxp.reshape(n, c, h + 2 * ph, w + 2 * pw)[:, :, ph : ph + h, pw : pw + w]

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


# ---------------------------------------------------------------------------------------------
# Recurrent layers
# ---------------------------------------------------------------------------------------------


def _lstm_cell(z: np.ndarray, c_prev: np.ndarray):
    """One LSTM step from pre-activations z = x W_ih^T + h W_hh^T + b (N, 4H), gates (i, f, g, o):

    c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g),  h = sigmoid(o) * tanh(c).
    Returns h, c and what the backward step needs: the activated gates (N, 4H) and tanh(c).
    """
    hidden = c_prev.shape[-1]
    gates = _sigmoid(z)
    gates[:, 2 * hidden : 3 * hidden] = np.tanh(z[:, 2 * hidden : 3 * hidden])
    i, f, g, o = np.split(gates, 4, axis=1)
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    return o * tanh_c, c, gates, tanh_c


def _lstm_cell_backward(
    dh: np.ndarray,
    dc: np.ndarray,
    gates: np.ndarray,
    tanh_c: np.ndarray,
    c_prev: np.ndarray,
):
    """Gradients of one LSTM step: from dL/dh and dL/dc (N, H) to dL/dz (N, 4H) and dL/dc_prev."""
    i, f, g, o = np.split(gates, 4, axis=1)
    dc = dc + dh * o * (1.0 - tanh_c**2)
    dz = np.concatenate(
        [
            dc * g * i * (1.0 - i),  # input gate
            dc * c_prev * f * (1.0 - f),  # forget gate
            dc * i * (1.0 - g**2),  # cell candidate
            dh * tanh_c * o * (1.0 - o),
        ],  # output gate
        axis=1,
    )
    return dz, dc * f


class _RecurrentBase(Module):
    """Parameters shared by RNN, LSTM and their cells, named and initialised as torch does.

    weight_ih (gates*H, F), weight_hh (gates*H, H), bias_ih and bias_hh (gates*H,), each with the
    suffix ``_l0`` for the sequence layers; all ~ U(-1/sqrt(H), 1/sqrt(H)).
    """

    _suffix = ""
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, rng):
        super().__init__()
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = _positive_int(hidden_size, "hidden_size")
        self.bias = bool(bias)
        rng = _generator(rng)
        bound = 1.0 / math.sqrt(self.hidden_size)
        rows = self._gates * self.hidden_size
        shapes = {
            "weight_ih": (rows, self.input_size),
            "weight_hh": (rows, self.hidden_size),
        }
        if self.bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        for name, shape in shapes.items():
            setattr(
                self, name + self._suffix, Parameter(rng.uniform(-bound, bound, shape))
            )

    def _param(self, name: str) -> Parameter:
        return getattr(self, name + self._suffix)

    def _weights(self):
        """W_ih, W_hh and the summed bias b_ih + b_hh (0.0 without bias)."""
        b = (
            self._param("bias_ih").data + self._param("bias_hh").data
            if self.bias
            else 0.0
        )
        return self._param("weight_ih").data, self._param("weight_hh").data, b

    def _accumulate(self, dz: np.ndarray, x: np.ndarray, h_prev: np.ndarray) -> None:
        """Parameter gradients from dL/dz (..., gates*H) and the inputs x (..., F), h_prev (..., H)."""
        dz2 = dz.reshape(-1, dz.shape[-1])
        self._param("weight_ih").accumulate(dz2.T @ x.reshape(-1, self.input_size))
        self._param("weight_hh").accumulate(
            dz2.T @ h_prev.reshape(-1, self.hidden_size)
        )
        if self.bias:
            self._param("bias_ih").accumulate(dz2.sum(axis=0))
            self._param("bias_hh").accumulate(dz2.sum(axis=0))

    def _state(self, value, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """An initial state of exactly ``shape``; zeros when ``value`` is None."""
        if value is None:
            return np.zeros(shape)
        s = _check_input(value, name)
        if s.shape != shape:
            raise ValueError(f"{name} has shape {s.shape}, expected {shape}")
        return s

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias}"


def _check_nonlinearity(nonlinearity: str) -> str:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def _activate(a: np.ndarray, nonlinearity: str) -> np.ndarray:
    return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0.0)


def _activate_backward(dh: np.ndarray, h: np.ndarray, nonlinearity: str) -> np.ndarray:
    """dL/da from dL/dh and h = act(a): (1 - h^2) for tanh, [h > 0] for relu."""
    return dh * (1.0 - h**2) if nonlinearity == "tanh" else dh * (h > 0)


class RNNCell(_RecurrentBase):
    """One step h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh); x (N, input_size), h (N, hidden_size).

    backward(grad_h) returns dL/dx and leaves dL/dh in ``grad_hx``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        *,
        rng=None,
    ):
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, bias, rng)

    def forward(self, input, hx=None):
        x = _check_input(input, "input", ndim=2, layout="(N, input_size)")
        _check_size(x, 1, self.input_size, "input", "features (dimension 1)")
        h = self._state(hx, "hx", (x.shape[0], self.hidden_size))
        w_ih, w_hh, b = self._weights()
        h_new = _activate(x @ w_ih.T + h @ w_hh.T + b, self.nonlinearity)  # (N, H)
        self._cache = (x, h, h_new)
        return h_new

    def backward(self, grad_h):
        x, h, h_new = self._saved()
        da = _activate_backward(
            _check_grad(grad_h, h_new.shape, "grad_h"), h_new, self.nonlinearity
        )
        self._accumulate(da, x, h)
        w_ih, w_hh, _ = self._weights()
        self.grad_hx = da @ w_hh
        return da @ w_ih

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTMCell(_RecurrentBase):
    """One LSTM step (gates i, f, g, o in torch's order); x (N, input_size), h and c (N, hidden_size).

    forward(input, (h, c)) returns (h', c'); backward(grad_h, grad_c=None) returns dL/dx and
    leaves (dL/dh, dL/dc) in ``grad_hx``.
    """

    _gates = 4

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *, rng=None
    ):
        super().__init__(input_size, hidden_size, bias, rng)

    def forward(self, input, hx=None):
        x = _check_input(input, "input", ndim=2, layout="(N, input_size)")
        _check_size(x, 1, self.input_size, "input", "features (dimension 1)")
        shape = (x.shape[0], self.hidden_size)
        h0, c0 = (None, None) if hx is None else hx
        h, c = self._state(h0, "hx[0]", shape), self._state(c0, "hx[1]", shape)
        w_ih, w_hh, b = self._weights()
        h_new, c_new, gates, tanh_c = _lstm_cell(x @ w_ih.T + h @ w_hh.T + b, c)
        self._cache = (x, h, c, gates, tanh_c)
        return h_new, c_new

    def backward(self, grad_h=None, grad_c=None):
        x, h, c, gates, tanh_c = self._saved()
        if grad_h is None and grad_c is None:
            raise ValueError("grad_h: give grad_h, grad_c or both")
        dh = (
            np.zeros(h.shape)
            if grad_h is None
            else _check_grad(grad_h, h.shape, "grad_h")
        )
        dc = (
            np.zeros(c.shape)
            if grad_c is None
            else _check_grad(grad_c, c.shape, "grad_c")
        )
        dz, dc_prev = _lstm_cell_backward(dh, dc, gates, tanh_c, c)
        self._accumulate(dz, x, h)
        w_ih, w_hh, _ = self._weights()
        self.grad_hx = (dz @ w_hh, dc_prev)
        return dz @ w_ih


class _RecurrentLayer(_RecurrentBase):
    """Sequence handling shared by RNN and LSTM: (T, N, F) input, or (N, T, F) with batch_first."""

    _suffix = "_l0"

    def __init__(self, input_size, hidden_size, num_layers, bias, batch_first, rng):
        if num_layers != 1:
            raise ValueError(
                f"num_layers must be 1 (stack layers yourself), got {num_layers!r}"
            )
        self.num_layers = 1
        self.batch_first = bool(batch_first)
        super().__init__(input_size, hidden_size, bias, rng)

    def _sequence(self, input) -> np.ndarray:
        """The input as (T, N, F)."""
        layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
        x = _check_input(input, "input", ndim=3, layout=layout)
        _check_size(x, 2, self.input_size, "input", "features (dimension 2)")
        return x.transpose(1, 0, 2) if self.batch_first else x

    def _time_major(self, grad_output, shape: tuple[int, ...]) -> np.ndarray:
        """grad_output as (T, N, H) (zeros when None), checked against the forward output's layout."""
        if grad_output is None:
            return np.zeros(shape)
        t, n, h = shape
        g = _check_grad(
            grad_output, (n, t, h) if self.batch_first else shape, "grad_output"
        )
        return g.transpose(1, 0, 2) if self.batch_first else g

    def _batch_layout(self, seq: np.ndarray) -> np.ndarray:
        """A (T, N, *) array in the layout of the input: (N, T, *) when batch_first."""
        return np.ascontiguousarray(seq.transpose(1, 0, 2)) if self.batch_first else seq

    def extra_repr(self) -> str:
        return super().extra_repr() + (", batch_first=True" if self.batch_first else "")


class RNN(_RecurrentLayer):
    """Elman RNN, one layer: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act tanh or relu.

    forward(input (T, N, F), hx (1, N, H) or None) -> (output (T, N, H), h_n (1, N, H)).
    backward(grad_output, grad_h_n=None) runs backpropagation through time and returns
    dL/dinput; dL/dhx is left in ``grad_hx``. ``batch_first=True`` uses ``(N, T, *)`` for input and
    output, as torch. Only ``num_layers=1``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        *,
        rng=None,
    ):
        self.nonlinearity = _check_nonlinearity(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, rng)

    def forward(self, input, hx=None):
        x = self._sequence(input)  # (T, N, F)
        t_len, n, _ = x.shape
        w_ih, w_hh, b = self._weights()
        hs = np.empty((t_len + 1, n, self.hidden_size))  # hs[t + 1] = h_t, hs[0] = h_0
        hs[0] = self._state(hx, "hx", (1, n, self.hidden_size))[0]
        xw = x @ w_ih.T + b  # (T, N, H): the input's share, for all steps at once
        for t in range(t_len):
            hs[t + 1] = _activate(xw[t] + hs[t] @ w_hh.T, self.nonlinearity)
        self._cache = (x, hs)
        return self._batch_layout(hs[1:].copy()), hs[-1:].copy()

    def backward(self, grad_output=None, grad_h_n=None):
        x, hs = self._saved()
        if grad_output is None and grad_h_n is None:
            raise ValueError("grad_output: give grad_output, grad_h_n or both")
        g_out = self._time_major(grad_output, hs[1:].shape)  # (T, N, H)
        dh = self._state(grad_h_n, "grad_h_n", hs[-1:].shape)[0]  # dL/dh_T from h_n
        _, w_hh, _ = self._weights()
        da = np.empty_like(g_out)  # dL/da_t for the pre-activations
        for t in reversed(range(len(g_out))):
            da[t] = _activate_backward(dh + g_out[t], hs[t + 1], self.nonlinearity)
            dh = da[t] @ w_hh  # dL/dh_{t-1}
        self.grad_hx = dh[None]
        self._accumulate(da, x, hs[:-1])
        return self._batch_layout(da @ self._weights()[0])

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTM(_RecurrentLayer):
    """LSTM, one layer, gates (i, f, g, o) stacked in torch's order in the rows of the weights:

    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh (N, 4H); i, f, o = sigmoid, g = tanh;
    c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t).
    forward(input (T, N, F), hx=(h_0, c_0) each (1, N, H), or None)
    -> (output (T, N, H), (h_n, c_n)). backward(grad_output, grad_h_n=None, grad_c_n=None) runs
    backpropagation through time and returns dL/dinput; (dL/dh_0, dL/dc_0) is left in ``grad_hx``.
    """

    _gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        *,
        rng=None,
    ):
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, rng)

    def forward(self, input, hx=None):
        x = self._sequence(input)  # (T, N, F)
        t_len, n, _ = x.shape
        shape = (1, n, self.hidden_size)
        h0, c0 = (None, None) if hx is None else hx
        w_ih, w_hh, b = self._weights()
        hs, cs = (
            np.empty((t_len + 1, n, self.hidden_size)),
            np.empty((t_len + 1, n, self.hidden_size)),
        )
        hs[0], cs[0] = (
            self._state(h0, "hx[0]", shape)[0],
            self._state(c0, "hx[1]", shape)[0],
        )
        gates = np.empty((t_len, n, 4 * self.hidden_size))
        tanh_cs = np.empty((t_len, n, self.hidden_size))
        xw = x @ w_ih.T + b  # (T, N, 4H)
        for t in range(t_len):
            hs[t + 1], cs[t + 1], gates[t], tanh_cs[t] = _lstm_cell(
                xw[t] + hs[t] @ w_hh.T, cs[t]
            )
        self._cache = (x, hs, cs, gates, tanh_cs)
        return self._batch_layout(hs[1:].copy()), (hs[-1:].copy(), cs[-1:].copy())

    def backward(self, grad_output=None, grad_h_n=None, grad_c_n=None):
        x, hs, cs, gates, tanh_cs = self._saved()
        if grad_output is None and grad_h_n is None and grad_c_n is None:
            raise ValueError(
                "grad_output: give grad_output, grad_h_n, grad_c_n or some of them"
            )
        g_out = self._time_major(grad_output, hs[1:].shape)  # (T, N, H)
        dh = self._state(grad_h_n, "grad_h_n", hs[-1:].shape)[0]
        dc = self._state(grad_c_n, "grad_c_n", cs[-1:].shape)[0]
        _, w_hh, _ = self._weights()
        dz = np.empty_like(gates)  # (T, N, 4H)
        for t in reversed(range(len(g_out))):
            dz[t], dc = _lstm_cell_backward(
                dh + g_out[t], dc, gates[t], tanh_cs[t], cs[t]
            )
            dh = dz[t] @ w_hh  # dL/dh_{t-1}
        self.grad_hx = (dh[None], dc[None])
        self._accumulate(dz, x, hs[:-1])
        return self._batch_layout(dz @ self._weights()[0])
