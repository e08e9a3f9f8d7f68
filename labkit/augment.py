r"""Data augmentation for image batches ``(N, C, H, W)``: random, seeded,
label-preserving (if you choose the transforms well).

Augmentation trains on transformed copies of the training images, ``(T(x), y)``, and so
teaches the network that the label does not change under ``T``. That is only true for
some ``T``: on ``labkit.data.shapes`` a horizontal flip turns the "diagonal" (top-left
to bottom-right) into the anti-diagonal, which is not one of the classes, and a
transpose turns a vertical bar into a horizontal bar, which *is* one, with the wrong
label. Pick transforms under which your task's labels are invariant.

Deterministic transforms
------------------------
- ``hflip(x)``: mirror left-right, ``y[..., i, j] = x[..., i, W - 1 - j]``
  (``torch.flip(x, [3])``).
- ``vflip(x)``: mirror top-bottom, ``y[..., i, j] = x[..., H - 1 - i, j]``
  (``torch.flip(x, [2])``).
- ``shift(x, dy, dx)``: move the content ``dy`` pixels down and ``dx`` pixels right,
  ``y[..., i, j] = x[..., i - dy, j - dx]``, with zeros where that index falls outside
  the image (no wrap-around, unlike ``np.roll``). ``dy`` and ``dx`` are integers, or
  integer arrays of length ``N`` (one shift per image).

Random transforms
-----------------
Each decides *per image*, independently, whether to act (probability ``p``), drawing
from ``rng``: an int seed, a ``np.random.Generator``, or ``None`` (a seed drawn from
numpy's global state, so ``labkit.seed(n)`` makes a run reproducible while successive
calls still differ). Pass one Generator through a whole training run; an int seed
repeats the same draws every call.

- ``random_hflip(x, p=0.5, rng)``, ``random_vflip(x, p=0.5, rng)``;
- ``random_shift(x, max_shift, p=1.0, rng)``: ``dy, dx`` uniform on
  ``{-max_shift, ..., max_shift}``;
- ``gaussian_noise(x, std, p=1.0, rng)``: ``x + std * eps`` with ``eps ~ N(0, 1)`` per
  pixel (any batch-first array, not only images).

Order of draws (so results are reproducible across versions): first the ``N`` uniform
numbers that decide which images are transformed (``rng.random(N) < p``), then the
transform's own numbers for all ``N`` images (shifts ``(N, 2)`` or noise ``x.shape``),
used where selected.

Mixup
-----
``mixup(x, y, num_classes, alpha, rng)`` trains on convex combinations of random pairs
of examples and of their one-hot labels (any batch-first ``x``); its targets are class
probabilities, for a cross-entropy with soft targets.

``Compose([...])`` chains transform objects (``RandomHorizontalFlip``,
``RandomVerticalFlip``, ``RandomShift``, ``GaussianNoise``, named after torchvision's),
each called as ``t(x, rng)``. Inputs are never modified in place; outputs are new
float64 arrays.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import check_input, integer, probability
from .runtime import as_generator

__all__ = [
    "hflip",
    "vflip",
    "shift",
    "random_hflip",
    "random_vflip",
    "random_shift",
    "gaussian_noise",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomShift",
    "GaussianNoise",
    "Compose",
    "mixup",
]


# ---------------------------------------------------------------------- argument checks


def _images(x, name: str = "x") -> np.ndarray:
    """``x`` as a finite, non-empty float64 array of shape (N, C, H, W)."""
    a = _batch(x, name)
    if a.ndim != 4:
        raise ValueError(
            f"{name} must be a 4-D image batch (N, C, H, W), got shape {a.shape}"
        )
    return a


def _batch(x, name: str = "x") -> np.ndarray:
    """``x`` as a finite, non-empty float64 copy with a batch dimension first."""
    a = np.array(check_input(x, name))  # a copy: the caller's array is never touched
    if a.ndim == 0:
        raise ValueError(
            f"{name} must be a non-empty batch-first array, got shape {a.shape}"
        )
    return a


def _offsets(d, n: int, name: str) -> np.ndarray:
    """A shift as an int64 array of length n: one integer for all images, or one per
    image."""
    a = np.asarray(d)
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(
            f"{name} must be an integer or an integer array of length N, got {d!r}"
        )
    if a.ndim == 0:
        return np.full(n, int(a), dtype=np.int64)
    if a.shape != (n,):
        raise ValueError(
            f"{name} must be one integer or {n} integers (one per image), got shape "
            f"{a.shape}"
        )
    return a.astype(np.int64)


# ------------------------------------------------------------------------ deterministic


def hflip(x) -> np.ndarray:
    """Mirror left-right: y[..., i, j] = x[..., i, W - 1 - j]."""
    return np.ascontiguousarray(_images(x)[..., ::-1])


def vflip(x) -> np.ndarray:
    """Mirror top-bottom: y[..., i, j] = x[..., H - 1 - i, j]."""
    return np.ascontiguousarray(_images(x)[..., ::-1, :])


def _shift_one(img: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """One (C, H, W) image moved dy down and dx right, zeros filling the uncovered
    border."""
    _, h, w = img.shape
    out = np.zeros_like(img)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    # rows i - dy and columns j - dx of the source that stay inside the image
    out[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = img[
        :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def shift(x, dy, dx) -> np.ndarray:
    """y[..., i, j] = x[..., i - dy, j - dx] (zero outside); dy, dx ints or one per
    image."""
    x = _images(x)
    n = x.shape[0]
    dys, dxs = _offsets(dy, n, "dy"), _offsets(dx, n, "dx")
    return np.stack([_shift_one(img, int(a), int(b)) for img, a, b in zip(x, dys, dxs)])


# ----------------------------------------------------------------------------- random


def _chosen(n: int, p: float, g: np.random.Generator) -> np.ndarray:
    """Which of n images a random transform acts on: rng.random(n) < p."""
    return g.random(n) < p


def random_hflip(x, p: float = 0.5, rng=None) -> np.ndarray:
    """Each image mirrored left-right with probability p."""
    x, p, g = _images(x), probability(p, "p"), as_generator(rng)
    flip = _chosen(len(x), p, g)
    x[flip] = x[flip][..., ::-1]
    return x


def random_vflip(x, p: float = 0.5, rng=None) -> np.ndarray:
    """Each image mirrored top-bottom with probability p."""
    x, p, g = _images(x), probability(p, "p"), as_generator(rng)
    flip = _chosen(len(x), p, g)
    x[flip] = x[flip][..., ::-1, :]
    return x


def random_shift(x, max_shift: int = 1, p: float = 1.0, rng=None) -> np.ndarray:
    """With probability p per image, shift by dy, dx uniform on {-max_shift, ...,
    max_shift}."""
    x, p, g = _images(x), probability(p, "p"), as_generator(rng)
    max_shift = integer(max_shift, "max_shift", 0)
    move = _chosen(len(x), p, g)
    d = g.integers(-max_shift, max_shift + 1, size=(len(x), 2))  # (N, 2): dy, dx
    d[~move] = 0
    return shift(x, d[:, 0], d[:, 1])


def gaussian_noise(x, std: float = 0.1, p: float = 1.0, rng=None) -> np.ndarray:
    """With probability p per sample, x + std * eps with eps ~ N(0, 1) elementwise."""
    x, p, g = _batch(x), probability(p, "p"), as_generator(rng)
    if (
        isinstance(std, bool)
        or not isinstance(std, numbers.Real)
        or not 0.0 <= float(std) < np.inf
    ):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    noisy = _chosen(len(x), p, g)
    eps = g.standard_normal(x.shape)
    x[noisy] += float(std) * eps[noisy]
    return x


# -------------------------------------------------------------------- transform objects


class _Transform:
    """A random transform with fixed settings, called as t(x, rng)."""

    def __call__(self, x, rng=None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class RandomHorizontalFlip(_Transform):
    """``random_hflip`` with probability p."""

    def __init__(self, p: float = 0.5):
        self.p = probability(p, "p")

    def __call__(self, x, rng=None):
        return random_hflip(x, self.p, rng)


class RandomVerticalFlip(_Transform):
    """``random_vflip`` with probability p."""

    def __init__(self, p: float = 0.5):
        self.p = probability(p, "p")

    def __call__(self, x, rng=None):
        return random_vflip(x, self.p, rng)


class RandomShift(_Transform):
    """``random_shift`` by at most max_shift pixels, with probability p."""

    def __init__(self, max_shift: int = 1, p: float = 1.0):
        self.max_shift = integer(max_shift, "max_shift", 0)
        self.p = probability(p, "p")

    def __call__(self, x, rng=None):
        return random_shift(x, self.max_shift, self.p, rng)


class GaussianNoise(_Transform):
    """``gaussian_noise`` of standard deviation std, with probability p."""

    def __init__(self, std: float = 0.1, p: float = 1.0):
        if (
            isinstance(std, bool)
            or not isinstance(std, numbers.Real)
            or not 0.0 <= float(std) < np.inf
        ):
            raise ValueError(f"std must be a finite number >= 0, got {std!r}")
        self.std = float(std)
        self.p = probability(p, "p")

    def __call__(self, x, rng=None):
        return gaussian_noise(x, self.std, self.p, rng)


class Compose(_Transform):
    """Apply transforms in order, all drawing from the same rng: t_k(... t_1(x, rng)
    ..., rng)."""

    def __init__(self, transforms):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not callable(t):
                raise ValueError(
                    f"transforms[{i}] must be callable as t(x, rng), got "
                    f"{type(t).__name__}"
                )
        self.transforms = transforms

    def __call__(self, x, rng=None):
        g = as_generator(rng)
        for t in self.transforms:
            x = t(x, g)
        return x


# -------------------------------------------------------------------------------- mixup


def mixup(x, y, num_classes: int, alpha: float = 0.2, rng=None):
    """Mixup (Zhang et al., 2018): mix every example with a random partner, labels too.

    With a random permutation ``perm`` of the batch and, per example,
    ``lam_i ~ Beta(alpha, alpha)``::

        x_mixed[i] = lam_i * x[i] + (1 - lam_i) * x[perm[i]]
        y_mixed[i] = lam_i * onehot(y[i]) + (1 - lam_i) * onehot(y[perm[i]])

    Small ``alpha`` puts most ``lam`` near 0 or 1 (mild mixing); ``alpha = 1`` draws
    ``lam`` uniformly. ``x`` is any batch-first array ``(N, ...)``, ``y`` integer class
    indices ``(N,)`` in ``[0, num_classes)``. Draws: first ``rng.permutation(N)``, then
    ``rng.beta(alpha, alpha, N)``.

    Returns ``(x_mixed, y_mixed)``: float64 arrays of the shape of ``x`` and
    ``(N, num_classes)``, whose rows are class probabilities
    (``torch.nn.CrossEntropyLoss`` takes them as targets).
    """
    a = _batch(x)
    labels = np.asarray(y)
    if labels.dtype.kind not in "iu" or labels.shape != (len(a),):
        raise ValueError(
            f"y must be an integer array of {len(a)} class indices (one per example), "
            f"got dtype {labels.dtype}, shape {labels.shape}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if num_classes < 1 or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"y must hold class indices in [0, num_classes={num_classes}), got values "
            f"from {labels.min()} to {labels.max()}"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number, got {alpha!r}")
    g = as_generator(rng)
    perm = g.permutation(len(a))
    lam = g.beta(alpha, alpha, len(a))
    onehot = np.eye(num_classes)[labels]  # (N, C)
    lam_x = lam.reshape(
        (-1,) + (1,) * (a.ndim - 1)
    )  # broadcast over the example's axes
    x_mixed = lam_x * a + (1.0 - lam_x) * a[perm]
    y_mixed = lam[:, None] * onehot + (1.0 - lam[:, None]) * onehot[perm]
    return x_mixed, y_mixed
