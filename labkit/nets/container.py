"""``Sequential``: modules applied in order, backward in reverse order."""

from __future__ import annotations

from .module import Module


class Sequential(Module):
    """Apply modules in order; backward applies their backward in reverse order.

    Children are named ``"0"``, ``"1"``, ... as in torch; index, slice, iterate, take
    ``len``.

    Shape:
        - input: what the first module takes
        - output: what the last module returns
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
