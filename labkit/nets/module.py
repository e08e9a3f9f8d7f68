"""``Parameter`` and ``Module``, the base of every layer (``torch.nn.Module``'s rules
for finding parameters, buffers and children, ``state_dict`` and
``load_state_dict``)."""

from __future__ import annotations

from collections import namedtuple

import numpy as np


class Parameter:
    """A trainable float64 array ``data`` with its gradient ``grad`` (``None`` until
    backward).

    Optimizers update ``data`` in place, so every module holding this parameter sees the
    change.
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
                f"gradient shape {grad.shape} does not match parameter "
                f"{self.data.shape}"
            )
        if self.grad is None:
            self.grad = np.zeros_like(self.data)
        self.grad += grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape})"


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class: parameters, buffers and child modules are found among the attributes.

    As in torch, an attribute holding a ``Parameter`` is a parameter, one holding a
    ``Module`` is a child, and arrays registered with ``register_buffer`` are buffers
    (state that is saved but not trained, like BatchNorm's running mean). Discovery
    follows assignment order, so dotted names (``0.weight``, ``encoder.1.bias``) and
    ``state_dict`` keys equal torch's.
    """

    training = True
    _buffer_names: tuple[str, ...] | list[str] = ()
    _cache = None

    def __init__(self):
        self.training = True
        self._buffer_names = []

    # -- computation -------------------------------------------------------------------
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

    # -- discovery ---------------------------------------------------------------------
    def register_buffer(self, name: str, value) -> None:
        """Store ``value`` (an array, or None for "absent") as a buffer saved in
        ``state_dict``."""
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
        """(dotted name, module) for this module and all descendants, depth first, like
        torch."""
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
        """(dotted name, Parameter) pairs in torch's order; a shared parameter appears
        once."""
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

    # -- state -------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget accumulated gradients: ``grad = None`` (torch's default) or zeros."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0.0

    def train(self, mode: bool = True):
        """Set training mode (Dropout drops, BatchNorm uses batch statistics) on all
        modules."""
        if not isinstance(mode, bool):
            raise ValueError(f"mode must be a bool, got {mode!r}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self):
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Live arrays of every parameter and buffer by torch's state_dict key, in
        torch's order."""
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
        """Copy arrays (numpy or torch tensors) into the parameters and buffers, in
        place.

        Keys and shapes must match (``strict=False`` loads the common keys and reports
        the rest); nothing is changed unless every array fits.
        """
        own = self._state_arrays()
        incoming = dict(state_dict)
        missing = [k for k in own if k not in incoming]
        unexpected = [k for k in incoming if k not in own]
        if strict and (missing or unexpected):
            raise ValueError(
                f"state_dict does not match {type(self).__name__}: missing keys "
                f"{missing}, "
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

    # -- display -----------------------------------------------------------------------
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
