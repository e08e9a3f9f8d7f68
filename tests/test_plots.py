"""labkit.plots draws what it says, and refuses input it cannot draw."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from labkit import data, plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_decision_boundary_colours_the_plane_by_prediction():
    plots.use_style()
    X, y = data.xor(40, rng=0)
    ax = plots.decision_boundary(
        lambda P: (P[:, 0] * P[:, 1] < 0).astype(int), X, y, title="xor"
    )
    assert ax.get_title() == "xor"
    assert len(ax.collections) >= 3  # filled contours + one scatter per class
    with pytest.raises(ValueError, match="X must"):
        plots.decision_boundary(lambda P: P[:, 0], np.zeros((3, 3)), np.zeros(3))


def test_curves_one_line_per_series():
    ax = plots.curves({"a": [3, 2, 1], "b": [1, 1, 1]}, logy=True, title="loss")
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="series"):
        plots.curves({})


def test_image_grid_layout_and_errors():
    fig = plots.image_grid(
        np.zeros((5, 1, 4, 4)), titles=list("abcde"), ncols=3, symmetric=True
    )
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")
    with pytest.raises(ValueError, match="images"):
        plots.image_grid(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="titles"):
        plots.image_grid(np.zeros((2, 4, 4)), titles=["a"])
