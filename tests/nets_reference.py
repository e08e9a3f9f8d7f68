"""The references layer tests hold labkit.nets to: torch autograd, central
differences."""

import numpy as np
import torch

RTOL, ATOL = 1e-10, 1e-12


def close(actual, expected, rtol=RTOL, atol=ATOL):
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def leaf(array):
    """A float64 torch leaf that records its gradient."""
    return torch.tensor(array, dtype=torch.float64, requires_grad=True)


def numerical_grad(f, array, eps=1e-6):
    """Central differences (f(a + eps e_i) - f(a - eps e_i)) / (2 eps).

    ``array`` is perturbed in place (and restored), so ``f`` must read it."""
    grad = np.zeros_like(array)
    for i in np.ndindex(array.shape):
        old = array[i]
        array[i] = old + eps
        f_plus = f()
        array[i] = old - eps
        f_minus = f()
        array[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def same_parameter_grads(np_module, torch_module):
    """Parameter names equal torch's, in torch's order, and so do their gradients."""
    torch_params = dict(torch_module.named_parameters())
    np_params = dict(np_module.named_parameters())
    assert list(np_params) == list(torch_params)
    for name, p in np_params.items():
        close(p.grad, torch_params[name].grad)


def check_parameter_grads_by_differences(module, loss, rtol=1e-6, atol=1e-8):
    """Every parameter gradient left by backward equals central differences of
    loss()."""
    for name, p in module.named_parameters():
        numeric = numerical_grad(loss, p.data)
        np.testing.assert_allclose(p.grad, numeric, rtol=rtol, atol=atol, err_msg=name)
