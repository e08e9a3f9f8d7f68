"""Embedding is held to torch.nn.Embedding and to its definition, a one-hot product."""

import numpy as np
import pytest
import torch

from labkit import nets
from nets_reference import close, numerical_grad


@pytest.fixture
def rng():
    return np.random.default_rng(7101)


@pytest.mark.parametrize("padding_idx", [None, 2, -1])
@pytest.mark.parametrize("shape", [(6,), (3, 5), (2, 3, 4)])
def test_embedding_matches_torch(rng, padding_idx, shape):
    reference = torch.nn.Embedding(7, 4, padding_idx=padding_idx).double()
    layer = nets.Embedding(7, 4, padding_idx=padding_idx)
    layer.load_state_dict(reference.state_dict())
    ids = rng.integers(0, 7, size=shape)
    ids.flat[:3] = [2, 6, 2]  # repeated ids and the padding rows occur
    out = reference(torch.from_numpy(ids))
    g = rng.normal(size=tuple(out.shape))
    out.backward(torch.from_numpy(g))
    close(layer(ids), out)
    assert layer.backward(g) is None
    close(layer.weight.grad, reference.weight.grad)


def test_embedding_is_a_one_hot_product(rng):
    layer = nets.Embedding(5, 3, rng=0)
    ids = np.array([4, 0, 4, 1])
    one_hot = np.eye(5)[ids]  # (4, 5)
    close(layer(ids), one_hot @ layer.weight.data)
    g = rng.normal(size=(4, 3))
    layer.backward(g)
    close(layer.weight.grad, one_hot.T @ g)  # repeated id 4 collects both rows


def test_embedding_matches_finite_differences(rng):
    layer = nets.Embedding(6, 2, rng=1)
    ids = np.array([[0, 3, 3], [5, 0, 1]])
    g = rng.normal(size=(2, 3, 2))
    layer(ids)
    layer.backward(g)
    numeric = numerical_grad(lambda: float((layer(ids) * g).sum()), layer.weight.data)
    np.testing.assert_allclose(layer.weight.grad, numeric, rtol=1e-7, atol=1e-9)


def test_padding_row_starts_at_zero_and_gets_no_gradient(rng):
    layer = nets.Embedding(4, 3, padding_idx=1, rng=2)
    assert np.all(layer.weight.data[1] == 0.0)
    layer(np.array([1, 1, 2]))
    layer.backward(rng.normal(size=(3, 3)))
    assert np.all(layer.weight.grad[1] == 0.0) and np.any(layer.weight.grad[2] != 0.0)


def test_initialisation_is_standard_normal():
    w = nets.Embedding(400, 50, rng=3).weight.data
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1.0) < 0.01


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: nets.Embedding(0, 3), "num_embeddings"),
        (lambda: nets.Embedding(3, 2.5), "embedding_dim"),
        (lambda: nets.Embedding(3, 2, padding_idx=3), "padding_idx"),
        (lambda: nets.Embedding(3, 2, padding_idx=1.0), "padding_idx"),
        (
            lambda: nets.Embedding(3, 2)(np.array([0.0, 1.0])),
            "input must be an integer",
        ),
        (lambda: nets.Embedding(3, 2)(np.array([0, 3])), "input holds ids outside"),
        (lambda: nets.Embedding(3, 2)(np.array([-1])), "input holds ids outside"),
        (lambda: nets.Embedding(3, 2).backward(np.zeros((1, 2))), "grad_out"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_backward_checks_the_gradient_shape():
    layer = nets.Embedding(3, 2)
    layer(np.array([0, 1]))
    with pytest.raises(ValueError, match="grad_out"):
        layer.backward(np.zeros((3, 2)))
