"""labkit.data: seeded, shaped as documented, labels balanced, geometry as described."""

import numpy as np
import pytest

from labkit import data


@pytest.mark.parametrize(
    "make,classes",
    [(data.two_moons, 2), (data.spirals, 3), (data.xor, 2), (data.blobs, 3)],
)
def test_toy_sets_are_seeded_and_shaped(make, classes):
    X, y = make(120, rng=5)
    assert X.shape == (120, 2) and X.dtype == np.float64 and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(classes))
    X2, y2 = make(120, rng=5)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(make(120, rng=6)[0], X)


def test_generator_argument_is_used_as_is():
    g = np.random.default_rng(1)
    first = data.xor(8, rng=g)[0]
    second = data.xor(8, rng=g)[0]
    assert not np.array_equal(first, second)


def test_xor_labels_follow_the_signs():
    X, y = data.xor(400, noise=0.05, rng=0)
    np.testing.assert_array_equal(
        y, (np.sign(X[:, 0]) != np.sign(X[:, 1])).astype(np.int64)
    )


def test_noise_free_moons_lie_on_their_circles():
    X, y = data.two_moons(100, noise=0.0, rng=0)
    np.testing.assert_allclose(np.hypot(*X[y == 0].T), 1.0, rtol=1e-12)
    np.testing.assert_allclose(
        np.hypot(X[y == 1, 0] - 1, X[y == 1, 1] - 0.5), 1.0, rtol=1e-12
    )


def test_blobs_centres():
    X, y = data.blobs(3000, centers=4, std=0.1, rng=0)
    means = np.array([X[y == k].mean(axis=0) for k in range(4)])
    np.testing.assert_allclose(np.hypot(*means.T), 2.0, atol=0.02)


def test_shapes_images():
    X, y = data.shapes(40, size=10, noise=0.0, rng=3)
    assert X.shape == (40, 1, 10, 10) and X.dtype == np.float64
    assert np.bincount(y).tolist() == [10, 10, 10, 10]
    for img, label in zip(X[:, 0], y):
        rows, cols = np.nonzero(img)
        if label == 0:
            assert len(set(cols)) == 1 and len(set(rows)) > 1
        elif label == 1:
            assert len(set(rows)) == 1 and len(set(cols)) > 1
        elif label == 2:
            np.testing.assert_array_equal(np.diff(rows), np.diff(cols))
        else:
            assert (
                len(set(rows)) > 1
                and len(set(cols)) > 1
                and not np.array_equal(np.diff(rows), np.diff(cols))
            )


def test_split_partitions_the_data():
    X = np.arange(100, dtype=float)[:, None]
    y = np.arange(100)
    parts = data.split(X, y, (0.5, 0.3, 0.2), rng=0)
    assert [len(p[1]) for p in parts] == [50, 30, 20]
    assert sorted(np.concatenate([p[1] for p in parts]).tolist()) == list(range(100))
    for Xp, yp in parts:
        np.testing.assert_array_equal(Xp[:, 0], yp)


def test_batches_cover_one_epoch():
    X, y = np.arange(10.0)[:, None], np.arange(10)
    got = list(data.batches(X, y, 4, rng=0))
    assert [len(b[1]) for b in got] == [4, 4, 2]
    assert sorted(np.concatenate([b[1] for b in got]).tolist()) == list(range(10))
    ordered = list(data.batches(X, y, 3, shuffle=False))
    np.testing.assert_array_equal(ordered[0][1], [0, 1, 2])


@pytest.mark.parametrize(
    "call,fragment",
    [
        (lambda: data.two_moons(1), "n must"),
        (lambda: data.spirals(10, classes=1), "classes"),
        (lambda: data.xor(10, noise=-1), "noise"),
        (lambda: data.blobs(10, std=np.nan), "std"),
        (lambda: data.shapes(4, size=3), "size"),
        (lambda: data.xor(10, rng=-1), "rng"),
        (lambda: data.xor(10, rng="seed"), "rng"),
        (lambda: data.xor(2.5), "n must"),
        (lambda: data.split(np.zeros((3, 1)), np.zeros(2)), "same length"),
        (lambda: data.split(np.zeros((3, 1)), np.zeros(3), (0.5, 0.6)), "fractions"),
        (lambda: list(data.batches(np.zeros((3, 1)), np.zeros(3), 0)), "batch_size"),
        (lambda: list(data.batches(np.zeros((3, 1)), np.zeros(2), 1)), "same length"),
    ],
)
def test_bad_input(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
