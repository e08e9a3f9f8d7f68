"""labkit.augment: flips equal torch.flip, shifts equal a zero-padded crop, random
transforms act on each image independently with the stated probability, and the shapes
data set behaves as the chapter says (a flip maps the diagonal off the class set, a
half-turn keeps every class)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labkit import augment
from labkit.data import shapes


@pytest.fixture
def images():
    return np.random.default_rng(7).normal(size=(5, 2, 6, 7))  # (N, C, H, W), H != W


def torch_shift(x, dy, dx):
    """Reference shift: pad with zeros by |d| on every side with F.pad, then crop the
    moved window."""
    h, w = x.shape[-2:]
    k = max(abs(dy), abs(dx), 1)
    padded = F.pad(torch.tensor(x), (k, k, k, k))  # (N, C, H + 2k, W + 2k)
    return padded[..., k - dy : k - dy + h, k - dx : k - dx + w].numpy()


# ------------------------------------------------------------------------ deterministic


def test_flips_equal_torch_flip(images):
    np.testing.assert_array_equal(
        augment.hflip(images), torch.flip(torch.tensor(images), [3]).numpy()
    )
    np.testing.assert_array_equal(
        augment.vflip(images), torch.flip(torch.tensor(images), [2]).numpy()
    )


def test_flips_are_involutions_and_commute_into_a_half_turn(images):
    np.testing.assert_array_equal(augment.hflip(augment.hflip(images)), images)
    half_turn = np.rot90(images, 2, axes=(2, 3))
    np.testing.assert_array_equal(augment.hflip(augment.vflip(images)), half_turn)
    np.testing.assert_array_equal(augment.vflip(augment.hflip(images)), half_turn)


@pytest.mark.parametrize("dy, dx", [(0, 0), (1, 0), (0, -2), (2, 3), (-3, 1), (-5, -6)])
def test_shift_equals_zero_padded_crop(images, dy, dx):
    np.testing.assert_array_equal(
        augment.shift(images, dy, dx), torch_shift(images, dy, dx)
    )


def test_shift_hand_example():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    # content moves one row down and one column left; the top row and right column
    # become 0
    expected = np.array([[0, 0, 0], [2, 3, 0], [5, 6, 0]], dtype=float)
    np.testing.assert_array_equal(augment.shift(x, 1, -1)[0, 0], expected)


def test_shift_out_of_frame_gives_zeros(images):
    assert not augment.shift(images, 6, 0).any()
    assert not augment.shift(images, 0, -7).any()


def test_shift_back_restores_the_interior(images):
    back = augment.shift(augment.shift(images, 2, -1), -2, 1)
    np.testing.assert_array_equal(back[..., :-2, 1:], images[..., :-2, 1:])


def test_per_image_shifts_equal_one_shift_per_image(images):
    dy, dx = np.array([0, 1, -1, 2, -3]), np.array([1, 0, -2, 2, 0])
    got = augment.shift(images, dy, dx)
    for i in range(len(images)):
        np.testing.assert_array_equal(
            got[i], augment.shift(images[i : i + 1], int(dy[i]), int(dx[i]))[0]
        )


def test_inputs_are_not_modified(images):
    before = images.copy()
    augment.hflip(images)
    augment.random_hflip(images, 1.0, rng=0)
    augment.random_vflip(images, 1.0, rng=0)
    augment.random_shift(images, 2, rng=0)
    augment.gaussian_noise(images, 0.5, rng=0)
    np.testing.assert_array_equal(images, before)


# ----------------------------------------------------------------------------- random


@pytest.mark.parametrize(
    "fn, flip",
    [(augment.random_hflip, augment.hflip), (augment.random_vflip, augment.vflip)],
)
def test_random_flip_acts_per_image_where_the_draw_is_below_p(images, fn, flip):
    p = 0.5
    chosen = (
        np.random.default_rng(3).random(len(images)) < p
    )  # the documented first draw
    assert 0 < chosen.sum() < len(images)  # a mixed case, so the test bites
    got = fn(images, p, rng=3)
    np.testing.assert_array_equal(got[chosen], flip(images[chosen]))
    np.testing.assert_array_equal(got[~chosen], images[~chosen])


@pytest.mark.parametrize("fn", [augment.random_hflip, augment.random_vflip])
def test_random_flip_p0_is_identity_and_p1_always_flips(images, fn):
    np.testing.assert_array_equal(fn(images, 0.0, rng=1), images)
    assert not np.array_equal(fn(images, 1.0, rng=1), images)


def test_random_flip_frequency_matches_p():
    x = (
        np.arange(2.0).reshape(1, 1, 1, 2).repeat(20000, axis=0)
    )  # [0, 1] flips to [1, 0]
    flipped = augment.random_hflip(x, 0.3, rng=11)[:, 0, 0, 0] == 1.0
    assert abs(flipped.mean() - 0.3) < 4 * np.sqrt(0.3 * 0.7 / 20000)


def test_random_shift_uses_documented_draws(images):
    g = np.random.default_rng(5)
    move = g.random(len(images)) < 0.6
    d = g.integers(-2, 3, size=(len(images), 2))
    d[~move] = 0
    np.testing.assert_array_equal(
        augment.random_shift(images, 2, 0.6, rng=5),
        augment.shift(images, d[:, 0], d[:, 1]),
    )


def test_random_shift_covers_the_range_uniformly():
    x = np.zeros((6000, 1, 9, 9))
    x[:, 0, 4, 4] = 1.0  # one bright pixel in the middle
    out = augment.random_shift(x, 2, rng=2)
    rows, cols = (
        np.nonzero(out[:, 0].sum(axis=2))[1],
        np.nonzero(out[:, 0].sum(axis=1))[1],
    )
    for offsets in (rows - 4, cols - 4):
        counts = np.bincount(offsets + 2, minlength=5)
        assert len(counts) == 5 and np.all(np.abs(counts / 6000 - 0.2) < 0.03)


def test_gaussian_noise_statistics_and_probability():
    x = np.zeros((4000, 1, 5, 5))
    out = augment.gaussian_noise(x, std=0.5, p=0.25, rng=4)
    noisy = out.reshape(4000, -1).any(axis=1)
    assert abs(noisy.mean() - 0.25) < 4 * np.sqrt(0.25 * 0.75 / 4000)
    values = out[noisy].ravel()
    assert abs(values.mean()) < 0.02 and abs(values.std() - 0.5) < 0.01


def test_gaussian_noise_accepts_any_batch_first_array():
    x = np.ones((10, 2))
    out = augment.gaussian_noise(x, 0.1, rng=0)
    assert out.shape == (10, 2) and not np.array_equal(out, x)
    np.testing.assert_array_equal(augment.gaussian_noise(x, 0.0, rng=0), x)


def test_seeds_reproduce_and_a_generator_advances(images):
    np.testing.assert_array_equal(
        augment.random_shift(images, 2, rng=9), augment.random_shift(images, 2, rng=9)
    )
    g = np.random.default_rng(9)
    first, second = (
        augment.gaussian_noise(images, 1.0, rng=g),
        augment.gaussian_noise(images, 1.0, rng=g),
    )
    assert not np.array_equal(first, second)


def test_none_rng_follows_numpy_global_seed(images):
    np.random.seed(123)
    a = augment.random_shift(images, 2, rng=None)
    np.random.seed(123)
    b = augment.random_shift(images, 2, rng=None)
    np.testing.assert_array_equal(a, b)


def test_compose_equals_the_transforms_in_sequence(images):
    pipeline = augment.Compose(
        [
            augment.RandomShift(1, p=0.5),
            augment.RandomHorizontalFlip(0.5),
            augment.RandomVerticalFlip(0.2),
            augment.GaussianNoise(0.1, p=0.5),
        ]
    )
    g = np.random.default_rng(8)
    expected = augment.random_shift(images, 1, 0.5, g)
    expected = augment.random_hflip(expected, 0.5, g)
    expected = augment.random_vflip(expected, 0.2, g)
    expected = augment.gaussian_noise(expected, 0.1, 0.5, g)
    np.testing.assert_array_equal(pipeline(images, np.random.default_rng(8)), expected)
    assert "RandomShift(max_shift=1, p=0.5)" in repr(pipeline.transforms[0])


# -------------------------------------------------------------------- shapes and labels


def on_main_diagonal(img):
    """Whether the bright pixels of a noise-free image lie on one line of slope +1 (row
    - col const)."""
    r, c = np.nonzero(img > 0.5)
    return len(r) > 1 and len(set(r - c)) == 1


def test_flipping_a_diagonal_leaves_the_class_set_and_a_half_turn_does_not():
    X, y = shapes(40, size=10, noise=0.0, rng=3)
    diagonals = X[y == 2]
    assert all(on_main_diagonal(img[0]) for img in diagonals)
    assert not any(on_main_diagonal(img[0]) for img in augment.hflip(diagonals))
    assert not any(on_main_diagonal(img[0]) for img in augment.vflip(diagonals))
    assert all(
        on_main_diagonal(img[0]) for img in augment.hflip(augment.vflip(diagonals))
    )


def test_a_transpose_turns_vertical_bars_into_horizontal_bars():
    X, y = shapes(40, size=10, noise=0.0, rng=4)
    vertical, horizontal = X[y == 0], X[y == 1]
    transposed = vertical.transpose(0, 1, 3, 2)
    # a horizontal bar has all its bright pixels in one row, a vertical one in one
    # column
    assert all(len(set(np.nonzero(img[0] > 0.5)[0])) == 1 for img in transposed)
    assert all(len(set(np.nonzero(img[0] > 0.5)[0])) == 1 for img in horizontal)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: augment.hflip(np.zeros((2, 3, 3))), "4-D image batch"),
        (lambda: augment.vflip(np.zeros((0, 1, 3, 3))), "non-empty"),
        (lambda: augment.hflip(np.full((1, 1, 2, 2), np.nan)), "NaN"),
        (lambda: augment.hflip("abc"), "numeric array"),
        (
            lambda: augment.shift(np.zeros((2, 1, 3, 3)), 1.5, 0),
            "dy must be an integer",
        ),
        (
            lambda: augment.shift(np.zeros((2, 1, 3, 3)), 0, [1, 2, 3]),
            "dx must be one integer or 2",
        ),
        (
            lambda: augment.random_hflip(np.zeros((1, 1, 2, 2)), 1.5),
            "p must be a probability",
        ),
        (
            lambda: augment.random_vflip(np.zeros((1, 1, 2, 2)), -0.1),
            "p must be a probability",
        ),
        (
            lambda: augment.random_shift(np.zeros((1, 1, 2, 2)), -1),
            "max_shift must be a non-negative integer",
        ),
        (
            lambda: augment.random_shift(np.zeros((1, 1, 2, 2)), 1.0),
            "max_shift must be a non-negative integer",
        ),
        (
            lambda: augment.gaussian_noise(np.zeros((1, 3)), -0.1),
            "std must be a finite number",
        ),
        (lambda: augment.gaussian_noise(np.zeros(()), 0.1), "non-empty batch-first"),
        (
            lambda: augment.random_hflip(np.zeros((1, 1, 2, 2)), 0.5, rng=-3),
            "rng must be",
        ),
        (lambda: augment.RandomShift(max_shift=-2), "max_shift"),
        (lambda: augment.GaussianNoise(std=float("inf")), "std"),
        (
            lambda: augment.Compose([augment.RandomShift(1), "flip"]),
            "transforms[1] must be callable",
        ),
    ],
)
def test_bad_input(call, fragment):
    with pytest.raises(ValueError) as info:
        call()
    assert fragment in str(info.value)


# mixup --------------------------------------------------------------------------------


def test_mixup_mixes_inputs_and_labels_with_the_same_weights():
    x = np.arange(12.0).reshape(6, 2)
    y = np.array([0, 1, 2, 0, 1, 2])
    x_mixed, y_mixed = augment.mixup(x, y, 3, alpha=0.4, rng=5)
    g = np.random.default_rng(5)  # the documented order of draws
    perm, lam = g.permutation(6), g.beta(0.4, 0.4, 6)
    np.testing.assert_allclose(x_mixed, lam[:, None] * x + (1 - lam[:, None]) * x[perm])
    expected = np.zeros((6, 3))
    for i in range(6):
        expected[i, y[i]] += lam[i]
        expected[i, y[perm[i]]] += 1 - lam[i]
    np.testing.assert_allclose(y_mixed, expected)
    np.testing.assert_allclose(y_mixed.sum(axis=1), np.ones(6))


def test_mixup_of_images_broadcasts_lambda_over_each_image(images):
    y = np.zeros(len(images), dtype=int)
    x_mixed, y_mixed = augment.mixup(images, y, 2, alpha=1.0, rng=0)
    assert x_mixed.shape == images.shape and y_mixed.shape == (len(images), 2)
    np.testing.assert_allclose(y_mixed[:, 0], 1.0)  # one class: labels never change
    lo = np.minimum(images, images[np.random.default_rng(0).permutation(len(images))])
    assert np.all(x_mixed >= lo - 1e-12)


def test_mixup_lambda_is_beta_distributed():
    x, y = np.zeros((20000, 1)), np.zeros(20000, dtype=int)
    x[::2] = 1.0  # lam is recoverable where an example of value 1 meets one of value 0
    x_mixed, _ = augment.mixup(x, y, 1, alpha=0.5, rng=1)
    perm = np.random.default_rng(1).permutation(20000)
    pairs = (x[:, 0] == 1.0) & (x[perm, 0] == 0.0)
    lam = x_mixed[pairs, 0]
    assert (
        abs(lam.mean() - 0.5) < 0.01 and abs(lam.var() - 0.125) < 0.005
    )  # Beta(.5, .5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"y": np.array([0.0, 1.0, 1.0])}, "y must be an integer array"),
        ({"y": np.array([0, 1])}, "y must be an integer array"),
        ({"y": np.array([0, 1, 3])}, "class indices in"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"x": np.zeros((0, 2))}, "x is empty"),
    ],
)
def test_mixup_rejects_bad_input(kwargs, message):
    args = {
        "x": np.zeros((3, 2)),
        "y": np.array([0, 1, 2]),
        "num_classes": 3,
        "alpha": 0.2,
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        augment.mixup(args["x"], args["y"], args["num_classes"], args["alpha"], rng=0)
