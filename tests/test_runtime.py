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
