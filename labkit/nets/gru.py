"""Gated recurrent units: ``GRUCell`` (one step) and ``GRU`` (a sequence, one layer),
with torch's parameter names, gate order (r, z, n) and initialisation."""

from __future__ import annotations

import numpy as np

from .._checks import check_grad, check_input, check_size
from .activation import sigmoid
from .rnn import _RecurrentBase, _RecurrentLayer


def _gru_cell(gi: np.ndarray, gh: np.ndarray, h_prev: np.ndarray):
    """One GRU step from gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh (N, 3H):

    r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z), n = tanh(gi_n + r * gh_n),
    h = (1 - z) * n + z * h_prev.
    Returns h and what the backward step needs: r, z, n and gh_n (each (N, H)).
    """
    i_r, i_z, i_n = np.split(gi, 3, axis=-1)
    h_r, h_z, h_n = np.split(gh, 3, axis=-1)
    r = sigmoid(i_r + h_r)
    z = sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)  # the reset gate scales W_hn h + b_hn, bias included
    return (1.0 - z) * n + z * h_prev, (r, z, n, h_n)


def _gru_cell_backward(dh: np.ndarray, saved, h_prev: np.ndarray):
    """From dL/dh (N, H) to dL/dgi, dL/dgh (N, 3H) and the direct part of dL/dh_prev."""
    r, z, n, h_n = saved
    da_n = dh * (1.0 - z) * (1.0 - n**2)  # through n's pre-activation
    da_r = da_n * h_n * r * (1.0 - r)
    da_z = dh * (h_prev - n) * z * (1.0 - z)
    dgi = np.concatenate([da_r, da_z, da_n], axis=-1)
    dgh = np.concatenate([da_r, da_z, da_n * r], axis=-1)
    return dgi, dgh, dh * z


def _gru_share(layer: _RecurrentBase, a: np.ndarray, source: str) -> np.ndarray:
    """a W^T + b (.., 3H) for source "ih" (a = x) or "hh" (a = h); the GRU keeps its two
    biases apart, because b_hn sits inside r * (.)."""
    out = a @ layer._param(f"weight_{source}").data.T
    return out + layer._param(f"bias_{source}").data if layer.bias else out


def _gru_accumulate(layer: _RecurrentBase, dgi, dgh, x, h_prev) -> None:
    """Parameter gradients from dL/dgi, dL/dgh (.., 3H), x (.., F), h_prev (.., H)."""
    dgi2, dgh2 = dgi.reshape(-1, dgi.shape[-1]), dgh.reshape(-1, dgh.shape[-1])
    layer._param("weight_ih").accumulate(dgi2.T @ x.reshape(-1, layer.input_size))
    layer._param("weight_hh").accumulate(dgh2.T @ h_prev.reshape(-1, layer.hidden_size))
    if layer.bias:
        layer._param("bias_ih").accumulate(dgi2.sum(axis=0))
        layer._param("bias_hh").accumulate(dgh2.sum(axis=0))


class GRUCell(_RecurrentBase):
    """One GRU step, gates (r, z, n) stacked in this order in the rows of the weights:

        r = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
        z = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
        n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
        h' = (1 - z) * n + z * h

    backward(grad_h) returns dL/dx and leaves dL/dh in ``grad_hx``.

    Shape:
        - input: ``(N, input_size)``; hx: ``(N, hidden_size)`` or None (zeros)
        - Output: ``(N, hidden_size)``
        - weight_ih ``(3 * hidden_size, input_size)``, weight_hh
          ``(3 * hidden_size, hidden_size)``, bias_ih and bias_hh ``(3 * hidden_size,)``
    """

    _gates = 3

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, *, rng=None
    ):
        super().__init__(input_size, hidden_size, bias, rng)

    def forward(self, input, hx=None):
        x = check_input(input, "input", ndim=2, layout="(N, input_size)")
        check_size(x, 1, self.input_size, "input", "features (dimension 1)")
        h = self._state(hx, "hx", (x.shape[0], self.hidden_size))
        h_new, saved = _gru_cell(
            _gru_share(self, x, "ih"), _gru_share(self, h, "hh"), h
        )
        self._cache = (x, h, saved)
        return h_new

    def backward(self, grad_h):
        x, h, saved = self._saved()
        dh = check_grad(grad_h, h.shape, "grad_h")
        dgi, dgh, dh_direct = _gru_cell_backward(dh, saved, h)
        _gru_accumulate(self, dgi, dgh, x, h)
        self.grad_hx = dh_direct + dgh @ self._param("weight_hh").data
        return dgi @ self._param("weight_ih").data


class GRU(_RecurrentLayer):
    """GRU, one layer: the ``GRUCell`` step applied along a sequence.

    forward(input, hx=None) -> (output, h_n); backward(grad_output, grad_h_n=None) runs
    backpropagation through time and returns dL/dinput; dL/dhx is left in ``grad_hx``.
    ``batch_first=True`` uses ``(N, T, *)`` for input and output, as torch. Only
    ``num_layers=1``. Parameters are named ``weight_ih_l0`` ... as in torch.

    Shape:
        - input: ``(T, N, input_size)``, or ``(N, T, input_size)`` with batch_first
        - hx, h_n: ``(1, N, hidden_size)``
        - output: ``(T, N, hidden_size)``, or ``(N, T, hidden_size)`` with batch_first
    """

    _gates = 3

    def forward(self, input, hx=None):
        x = self._sequence(input)  # (T, N, F)
        t_len, n, _ = x.shape
        hs = np.empty((t_len + 1, n, self.hidden_size))  # hs[t + 1] = h_t
        hs[0] = self._state(hx, "hx", (1, n, self.hidden_size))[0]
        gi = _gru_share(self, x, "ih")  # (T, N, 3H): the input's share, all steps
        saved = []
        for t in range(t_len):
            hs[t + 1], s = _gru_cell(gi[t], _gru_share(self, hs[t], "hh"), hs[t])
            saved.append(s)
        self._cache = (x, hs, saved)
        return self._batch_layout(hs[1:].copy()), hs[-1:].copy()

    def backward(self, grad_output=None, grad_h_n=None):
        x, hs, saved = self._saved()
        if grad_output is None and grad_h_n is None:
            raise ValueError("grad_output: give grad_output, grad_h_n or both")
        g_out = self._time_major(grad_output, hs[1:].shape)  # (T, N, H)
        dh = self._state(grad_h_n, "grad_h_n", hs[-1:].shape)[0]
        w_hh = self._param("weight_hh").data
        dgi = np.empty(g_out.shape[:2] + (3 * self.hidden_size,))  # (T, N, 3H)
        dgh = np.empty_like(dgi)
        for t in reversed(range(len(g_out))):
            dgi[t], dgh[t], dh_direct = _gru_cell_backward(
                dh + g_out[t], saved[t], hs[t]
            )
            dh = dh_direct + dgh[t] @ w_hh  # dL/dh_{t-1}
        self.grad_hx = dh[None]
        _gru_accumulate(self, dgi, dgh, x, hs[:-1])
        return self._batch_layout(dgi @ self._param("weight_ih").data)
