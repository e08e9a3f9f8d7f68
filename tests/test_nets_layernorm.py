"""LayerNorm is held to torch.nn.LayerNorm, to finite differences and to its
definition."""

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
    return np.random.default_rng(7102)


@pytest.mark.parametrize(
    "normalized_shape, shape",
    [(5, (5,)), (5, (4, 5)), (4, (2, 3, 4)), ((3, 4), (2, 3, 4)), ((2, 3), (2, 3))],
)
@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, False)])
def test_layernorm_matches_torch(rng, normalized_shape, shape, affine, bias):
    reference = torch.nn.LayerNorm(
        normalized_shape, elementwise_affine=affine, bias=bias
    ).double()
    if affine:
        with torch.no_grad():
            for p in reference.parameters():
                p.copy_(torch.from_numpy(rng.normal(size=tuple(p.shape))))
    layer = nets.LayerNorm(normalized_shape, elementwise_affine=affine, bias=bias)
    layer.load_state_dict(reference.state_dict())
    x = 3.0 + 2.0 * rng.normal(size=shape)
    xt = leaf(x)
    y = reference(xt)
    g = rng.normal(size=shape)
    y.backward(torch.from_numpy(g))
    close(layer(x), y)
    close(layer.backward(g), xt.grad)
    same_parameter_grads(layer, reference)


def test_layernorm_matches_finite_differences(rng):
    layer = nets.LayerNorm(4)
    layer.weight.data[:] = rng.normal(size=4)
    layer.bias.data[:] = rng.normal(size=4)
    x, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    layer(x)
    dx = layer.backward(g)

    def loss():
        return float((layer(x) * g).sum())

    np.testing.assert_allclose(dx, numerical_grad(loss, x), rtol=1e-6, atol=1e-8)
    check_parameter_grads_by_differences(layer, loss)


def test_each_example_is_standardised_on_its_own(rng):
    layer = nets.LayerNorm(6, eps=0.0 + 1e-12)
    x = rng.normal(size=(4, 6)) * np.array([[1.0], [10.0], [0.1], [3.0]])
    y = layer(x)
    close(y.mean(axis=1), np.zeros(4), atol=1e-12)
    close(y.var(axis=1), np.ones(4), rtol=1e-9)
    close(
        layer(x[2:3]), y[2:3]
    )  # a batch of one gives the same row: no batch statistics


def test_layernorm_is_the_same_in_training_and_evaluation(rng):
    layer = nets.LayerNorm(3)
    x = rng.normal(size=(5, 3))
    close(layer.eval()(x), layer.train()(x))
    assert list(layer.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: nets.LayerNorm(0), "normalized_shape"),
        (lambda: nets.LayerNorm(()), "normalized_shape"),
        (lambda: nets.LayerNorm("4"), "normalized_shape"),
        (lambda: nets.LayerNorm(4, eps=0.0), "eps"),
        (lambda: nets.LayerNorm(4)(np.zeros((2, 3))), "normalized_shape"),
        (lambda: nets.LayerNorm((2, 3))(np.zeros(6)), "normalized_shape"),
        (lambda: nets.LayerNorm(2)(np.array([[1.0, np.nan]])), "input"),
        (lambda: nets.LayerNorm(2).backward(np.zeros(2)), "grad_out"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()
