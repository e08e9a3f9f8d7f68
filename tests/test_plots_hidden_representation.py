"""labkit.plots.hidden_representation: what it draws is the hidden map of the data and
the grid."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from labkit import plots  # noqa: E402


def _rotate(P):
    """A fixed linear map, so every drawn point can be predicted exactly."""
    return P @ np.array([[0.0, -1.0], [2.0, 0.5]]).T


def test_draws_mapped_points_grid_images_and_the_next_units_line():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 2)), np.arange(20) % 2
    fig, ax = plt.subplots()
    plots.hidden_representation(
        _rotate, X, y, ax=ax, weight=np.array([1.0, -2.0]), bias=0.5, lines=5
    )
    H = _rotate(X)
    offsets = np.vstack([c.get_offsets() for c in ax.collections])
    np.testing.assert_allclose(np.sort(offsets, axis=0), np.sort(H, axis=0), rtol=1e-12)
    lines = ax.get_lines()
    assert len(lines) == 2 * 5 + 1  # 5 vertical and 5 horizontal grid lines + z = 0
    grid_first = np.column_stack(
        lines[0].get_data()
    )  # the image of the first vertical line
    lo = X.min(axis=0) - 0.5
    np.testing.assert_allclose(
        _rotate(
            np.column_stack(
                [np.full(200, lo[0]), np.linspace(lo[1], X.max(axis=0)[1] + 0.5, 200)]
            )
        ),
        grid_first,
        rtol=1e-12,
        atol=1e-12,
    )
    h1, h2 = lines[-1].get_data()
    np.testing.assert_allclose(
        1.0 * np.asarray(h1) - 2.0 * np.asarray(h2) + 0.5, 0.0, atol=1e-12
    )
    plt.close(fig)


def test_rejects_bad_shapes():
    X, y = np.zeros((4, 2)), np.zeros(4)
    with pytest.raises(ValueError, match="X"):
        plots.hidden_representation(_rotate, np.zeros((4, 3)), y)
    with pytest.raises(ValueError, match="hidden"):
        plots.hidden_representation(lambda P: P[:, :1], X, y)
    with pytest.raises(ValueError, match="weight"):
        plots.hidden_representation(_rotate, X, y, weight=np.ones(3))
    plt.close("all")
