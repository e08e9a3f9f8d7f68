"""Conversions between the plain numpy data of test cases and the torch tensors of the
oracles."""

from __future__ import annotations

import numpy as np
import torch


def float64_tensor(array, requires_grad: bool = False) -> torch.Tensor:
    """A float64 torch copy of ``array`` (anything numpy can read as numbers)."""
    return torch.tensor(
        np.asarray(array, dtype=np.float64), requires_grad=requires_grad
    )


def tensor(array, requires_grad: bool = False) -> torch.Tensor:
    """A torch copy of ``array`` in its own dtype: float64 data, int64 labels."""
    return torch.tensor(np.asarray(array), requires_grad=requires_grad)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of ``tensor``, detached and on the CPU."""
    return tensor.detach().cpu().numpy().astype(np.float64)
