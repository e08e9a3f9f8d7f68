"""Recurrent layers: ``RNNCell`` and ``LSTMCell`` (one step), ``RNN`` and ``LSTM`` (a
sequence, one layer), with torch's parameter names, gate order and initialisation. The
GRU, built on the same bases, is in ``gru.py``."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_grad, check_input, check_size, integer
from ..runtime import as_generator
from .activation import sigmoid
from .module import Module, Parameter


def _lstm_cell(z: np.ndarray, c_prev: np.ndarray):
    """One LSTM step from pre-activations z = x W_ih^T + h W_hh^T + b (N, 4H), gates (i,
    f, g, o):

    c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g),  h = sigmoid(o) * tanh(c). Returns
    h, c and what the backward step needs: the activated gates (N, 4H) and tanh(c).
    """
    hidden = c_prev.shape[-1]
    gates = sigmoid(z)
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
    """Gradients of one LSTM step: from dL/dh and dL/dc (N, H) to dL/dz (N, 4H) and
    dL/dc_prev."""
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
    """Parameters shared by RNN, LSTM and their cells, named and initialised as torch
    does.

    weight_ih (gates*H, F), weight_hh (gates*H, H), bias_ih and bias_hh (gates*H,), each
    with the suffix ``_l0`` for the sequence layers; all ~ U(-1/sqrt(H), 1/sqrt(H)).
    """

    _suffix = ""
    _gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, rng):
        super().__init__()
        self.input_size = integer(input_size, "input_size")
        self.hidden_size = integer(hidden_size, "hidden_size")
        self.bias = bool(bias)
        rng = as_generator(rng)
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
        """Parameter gradients from dL/dz (..., gates*H) and the inputs x (..., F),
        h_prev (..., H)."""
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
        s = check_input(value, name)
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
    """One step h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh); x (N, input_size), h (N,
    hidden_size).

    backward(grad_h) returns dL/dx and leaves dL/dh in ``grad_hx``.

    Shape:
        - input ``(N, input_size)``; hx ``(N, hidden_size)`` or None (zeros)
        - output ``(N, hidden_size)``
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
        x = check_input(input, "input", ndim=2, layout="(N, input_size)")
        check_size(x, 1, self.input_size, "input", "features (dimension 1)")
        h = self._state(hx, "hx", (x.shape[0], self.hidden_size))
        w_ih, w_hh, b = self._weights()
        h_new = _activate(x @ w_ih.T + h @ w_hh.T + b, self.nonlinearity)  # (N, H)
        self._cache = (x, h, h_new)
        return h_new

    def backward(self, grad_h):
        x, h, h_new = self._saved()
        da = _activate_backward(
            check_grad(grad_h, h_new.shape, "grad_h"), h_new, self.nonlinearity
        )
        self._accumulate(da, x, h)
        w_ih, w_hh, _ = self._weights()
        self.grad_hx = da @ w_hh
        return da @ w_ih

    def extra_repr(self) -> str:
        return super().extra_repr() + f", nonlinearity={self.nonlinearity!r}"


class LSTMCell(_RecurrentBase):
    """One LSTM step (gates i, f, g, o in torch's order); x (N, input_size), h and c (N,
    hidden_size).

    forward(input, (h, c)) returns (h', c'); backward(grad_h, grad_c=None) returns dL/dx
    and leaves (dL/dh, dL/dc) in ``grad_hx``.

    Shape:
        - input ``(N, input_size)``; hx ``(h, c)``, each ``(N, hidden_size)``, or None
        - output ``(h', c')``, each ``(N, hidden_size)``
    """

    _gates = 4

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *, rng=None
    ):
        super().__init__(input_size, hidden_size, bias, rng)

    def forward(self, input, hx=None):
        x = check_input(input, "input", ndim=2, layout="(N, input_size)")
        check_size(x, 1, self.input_size, "input", "features (dimension 1)")
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
            else check_grad(grad_h, h.shape, "grad_h")
        )
        dc = (
            np.zeros(c.shape)
            if grad_c is None
            else check_grad(grad_c, c.shape, "grad_c")
        )
        dz, dc_prev = _lstm_cell_backward(dh, dc, gates, tanh_c, c)
        self._accumulate(dz, x, h)
        w_ih, w_hh, _ = self._weights()
        self.grad_hx = (dz @ w_hh, dc_prev)
        return dz @ w_ih


class _RecurrentLayer(_RecurrentBase):
    """Sequence handling and the constructor shared by RNN, LSTM and GRU: (T, N, F)
    input, or (N, T, F) with batch_first."""

    _suffix = "_l0"

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
        x = check_input(input, "input", ndim=3, layout=layout)
        check_size(x, 2, self.input_size, "input", "features (dimension 2)")
        return x.transpose(1, 0, 2) if self.batch_first else x

    def _time_major(self, grad_output, shape: tuple[int, ...]) -> np.ndarray:
        """grad_output as (T, N, H) (zeros when None), checked against the forward
        output's layout."""
        if grad_output is None:
            return np.zeros(shape)
        t, n, h = shape
        g = check_grad(
            grad_output, (n, t, h) if self.batch_first else shape, "grad_output"
        )
        return g.transpose(1, 0, 2) if self.batch_first else g

    def _batch_layout(self, seq: np.ndarray) -> np.ndarray:
        """A (T, N, *) array in the layout of the input: (N, T, *) when batch_first."""
        return np.ascontiguousarray(seq.transpose(1, 0, 2)) if self.batch_first else seq

    def extra_repr(self) -> str:
        return super().extra_repr() + (", batch_first=True" if self.batch_first else "")


class RNN(_RecurrentLayer):
    """Elman RNN, one layer: h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), act
    tanh or relu.

    forward(input (T, N, F), hx (1, N, H) or None) -> (output (T, N, H), h_n (1, N, H)).
    backward(grad_output, grad_h_n=None) runs backpropagation through time and returns
    dL/dinput; dL/dhx is left in ``grad_hx``. ``batch_first=True`` uses ``(N, T, *)``
    for input and output, as torch. Only ``num_layers=1``.

    Shape:
        - input ``(T, N, input_size)``, or ``(N, T, input_size)`` with ``batch_first``;
          hx ``(1, N, hidden_size)`` or None
        - output ``(T, N, hidden_size)`` (``(N, T, hidden_size)`` with ``batch_first``)
          and h_n ``(1, N, hidden_size)``
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
        super().__init__(
            input_size, hidden_size, num_layers, bias, batch_first, rng=rng
        )

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
    """LSTM, one layer, gates (i, f, g, o) stacked in torch's order in the rows of the
    weights:

    z_t = x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh (N, 4H); i, f, o = sigmoid, g =
    tanh; c_t = f * c_{t-1} + i * g;  h_t = o * tanh(c_t). forward(input (T, N, F),
    hx=(h_0, c_0) each (1, N, H), or None) -> (output (T, N, H), (h_n, c_n)).
    backward(grad_output, grad_h_n=None, grad_c_n=None) runs backpropagation through
    time and returns dL/dinput; (dL/dh_0, dL/dc_0) is left in ``grad_hx``.

    Shape:
        - input ``(T, N, input_size)``, or ``(N, T, input_size)`` with ``batch_first``;
          hx ``(h_0, c_0)``, each ``(1, N, hidden_size)``, or None
        - output ``(T, N, hidden_size)`` (``(N, T, hidden_size)`` with ``batch_first``)
          and ``(h_n, c_n)``, each ``(1, N, hidden_size)``
    """

    _gates = 4

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
