"""labkit.seed and labkit.device."""

import random

import numpy as np
import pytest
import torch

import labkit


def test_seed_makes_every_generator_repeat():
    g = labkit.seed(3)
    draws = (random.random(), np.random.rand(), torch.rand(1).item(), g.normal())
    g = labkit.seed(3)
    assert draws == (
        random.random(),
        np.random.rand(),
        torch.rand(1).item(),
        g.normal(),
    )


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_seed_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="seed value"):
        labkit.seed(bad)


def test_device_is_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert labkit.device().type == expected


def draws_with_rng_none():
    """One draw from every labkit function that takes ``rng``, each with rng=None."""
    from labkit import augment, data, language, nets, optim, surfaces, training

    images = np.arange(2 * 1 * 4 * 4, dtype=float).reshape(2, 1, 4, 4)
    model = torch.nn.Linear(2, 2).double()
    history = training.fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        data.two_moons(20, rng=None),
        data.two_moons(10, rng=None),
        epochs=1,
        batch_size=5,
        rng=None,
    )
    return [
        nets.Linear(3, 2).weight.data,
        nets.Conv2d(1, 2, 2).weight.data,
        nets.LSTM(2, 3).weight_hh_l0.data,
        nets.Dropout(0.5)(np.ones((4, 4))),
        nets.init.normal_(np.zeros(3)),
        augment.random_shift(images, 1),
        augment.gaussian_noise(images),
        data.spirals(30, rng=None)[0],
        data.batches(np.arange(6.0)[:, None], np.arange(6), 2, rng=None).__next__()[1],
        language.sample_token(np.zeros(5), rng=None),
        surfaces.trajectory(surfaces.rosenbrock(), optim.SGD, 3, lr=1e-3, noise=0.1),
        history["batch_loss"],
    ]


def test_rng_none_is_repeatable_after_seed_everywhere():
    """None means numpy's global state in every labkit function: seed() repeats all."""
    labkit.seed(5)
    first = draws_with_rng_none()
    labkit.seed(5)
    again = draws_with_rng_none()
    labkit.seed(6)
    other = draws_with_rng_none()
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a, b)
    assert sum(not np.array_equal(a, c) for a, c in zip(first, other)) >= len(first) - 1


def test_as_generator_reads_the_three_kinds_of_rng():
    g = np.random.default_rng(1)
    assert labkit.runtime.as_generator(g) is g
    assert labkit.runtime.as_generator(4).random() == np.random.default_rng(4).random()
    np.random.seed(9)
    first = labkit.runtime.as_generator(None).random()
    np.random.seed(9)
    assert labkit.runtime.as_generator(None).random() == first
    for bad in (-1, 1.5, "0", True):
        with pytest.raises(ValueError, match="rng"):
            labkit.runtime.as_generator(bad)
