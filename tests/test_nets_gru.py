"""GRU and GRUCell are held to torch.nn.GRU / GRUCell (gate order r, z, n; the reset
gate inside r * (W_hn h + b_hn)), to finite differences, and to a hand-computed step."""

import numpy as np
import pytest
import torch

from labkit import nets
from nets_reference import (
    check_parameter_grads_by_differences,
    close,
    leaf,
    numerical_grad,
    same_parameter_grads,
)


@pytest.fixture
def rng():
    return np.random.default_rng(7103)


@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_gru_matches_torch(rng, with_h0, batch_first, bias):
    T, N, F, H = 6, 3, 4, 5
    reference = torch.nn.GRU(F, H, bias=bias, batch_first=batch_first).double()
    layer = nets.GRU(F, H, bias=bias, batch_first=batch_first)
    layer.load_state_dict(reference.state_dict())
    assert list(layer.state_dict()) == list(reference.state_dict())
    x = rng.normal(size=(N, T, F) if batch_first else (T, N, F))
    h0 = rng.normal(size=(1, N, H)) if with_h0 else None
    xt = leaf(x)
    h0t = leaf(h0) if with_h0 else None
    out_t, hn_t = reference(xt, h0t)
    g_out, g_hn = rng.normal(size=tuple(out_t.shape)), rng.normal(size=(1, N, H))
    (
        (out_t * torch.from_numpy(g_out)).sum() + (hn_t * torch.from_numpy(g_hn)).sum()
    ).backward()
    out, hn = layer(x, h0)
    close(out, out_t)
    close(hn, hn_t)
    close(layer.backward(g_out, g_hn), xt.grad)
    if with_h0:
        close(layer.grad_hx, h0t.grad)
    same_parameter_grads(layer, reference)


@pytest.mark.parametrize("with_h", [False, True])
def test_gru_cell_matches_torch(rng, with_h):
    reference = torch.nn.GRUCell(3, 4).double()
    cell = nets.GRUCell(3, 4)
    cell.load_state_dict(reference.state_dict())
    x, h = rng.normal(size=(5, 3)), rng.normal(size=(5, 4))
    xt, ht = leaf(x), leaf(h)
    out = reference(xt, ht if with_h else None)
    g = rng.normal(size=(5, 4))
    out.backward(torch.from_numpy(g))
    close(cell(x, h if with_h else None), out)
    close(cell.backward(g), xt.grad)
    if with_h:
        close(cell.grad_hx, ht.grad)
    same_parameter_grads(cell, reference)


def test_gru_step_by_hand():
    """One step with weights chosen so every gate can be read off: H = F = 1."""
    cell = nets.GRUCell(1, 1)
    cell.weight_ih.data[:] = [[1.0], [2.0], [3.0]]  # rows r, z, n
    cell.weight_hh.data[:] = [[0.5], [-1.0], [2.0]]
    cell.bias_ih.data[:] = [0.0, 0.0, 0.1]
    cell.bias_hh.data[:] = [0.0, 0.0, 0.2]
    x, h = 0.3, -0.4
    r = 1 / (1 + np.exp(-(1.0 * x + 0.5 * h)))
    z = 1 / (1 + np.exp(-(2.0 * x - 1.0 * h)))
    n = np.tanh(3.0 * x + 0.1 + r * (2.0 * h + 0.2))  # b_hn is scaled by r too
    expected = (1 - z) * n + z * h
    close(cell(np.array([[x]]), np.array([[h]])), np.array([[expected]]))


def test_gru_matches_finite_differences(rng):
    layer = nets.GRU(2, 3, rng=0)
    x, h0 = rng.normal(size=(4, 2, 2)), rng.normal(size=(1, 2, 3))
    g_out, g_hn = rng.normal(size=(4, 2, 3)), rng.normal(size=(1, 2, 3))

    def loss():
        out, hn = layer(x, h0)
        return float((out * g_out).sum() + (hn * g_hn).sum())

    layer(x, h0)
    dx = layer.backward(g_out, g_hn)
    dh0 = layer.grad_hx
    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dh0, numerical_grad(loss, h0), rtol=1e-6, atol=1e-8)
    check_parameter_grads_by_differences(layer, loss)


def test_gru_gradient_from_the_last_hidden_state_only(rng):
    reference = torch.nn.GRU(2, 3).double()
    layer = nets.GRU(2, 3)
    layer.load_state_dict(reference.state_dict())
    x = rng.normal(size=(5, 2, 2))
    xt = leaf(x)
    reference(xt)[1].sum().backward()
    layer(x)
    close(layer.backward(grad_h_n=np.ones((1, 2, 3))), xt.grad)


def test_gru_init_is_uniform_in_one_over_sqrt_hidden():
    layer = nets.GRU(10, 25, rng=0)
    for name, p in layer.named_parameters():
        assert p.shape[0] == 75, name
        assert np.abs(p.data).max() <= 0.2 and np.abs(p.data).max() > 0.19


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: nets.GRU(0, 3), "input_size"),
        (lambda: nets.GRU(2, 3, num_layers=2), "num_layers"),
        (lambda: nets.GRU(2, 3)(np.zeros((4, 2))), "input must be a 3-D"),
        (lambda: nets.GRU(2, 3)(np.zeros((4, 1, 3))), "input has 3 features"),
        (lambda: nets.GRU(2, 3)(np.zeros((4, 1, 2)), np.zeros((1, 2, 3))), "hx"),
        (lambda: nets.GRU(2, 3).backward(np.zeros((4, 1, 3))), "grad_out"),
        (lambda: nets.GRUCell(2, 3)(np.zeros((1, 2)), np.zeros((1, 2))), "hx"),
        (lambda: nets.GRUCell(2, 3)(np.full((1, 2), np.inf)), "input"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_backward_needs_some_gradient():
    layer = nets.GRU(2, 3)
    layer(np.zeros((4, 1, 2)))
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward()
    with pytest.raises(ValueError, match="grad_output"):
        layer.backward(np.zeros((4, 1, 2)))
