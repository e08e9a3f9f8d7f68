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


def _png_text(png_base64: str) -> dict:
    import base64
    import io

    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(png_base64))).text


def test_a_shown_figure_records_the_size_of_its_smallest_drawn_text():
    plots.use_style()
    fig, ax = plt.subplots(dpi=100)
    ax.plot([0, 1], [0, 1])
    ax.set_title("eight points", fontsize=8)
    ax.text(5, 5, "outside the axes is still drawn", fontsize=20)
    ax.set_xlabel("  ")  # blank text is not text a reader has to read
    text = _png_text(plots._png(fig))
    assert float(text[plots.SMALLEST_TEXT_KEY]) == pytest.approx(8 * 100 / 72, abs=0.01)
    ax.set_title("")
    ax.tick_params(labelsize=15)
    smallest = float(_png_text(plots._png(fig))[plots.SMALLEST_TEXT_KEY])
    assert smallest == pytest.approx(15 * 100 / 72, abs=0.01)  # the blank label is not


def test_a_figure_without_axes_shows_nothing():
    assert plots._png(plt.figure()) is None


def test_text_chunks_are_valid_png_and_refuse_what_png_cannot_hold():
    import base64
    import io

    from PIL import Image

    fig, ax = plt.subplots()
    ax.plot([1, 2])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    png = plots.with_text_chunk(buffer.getvalue(), "key", "value")
    image = Image.open(io.BytesIO(png))
    image.load()  # checks every chunk's CRC
    assert image.text["key"] == "value"
    assert _png_text(base64.b64encode(png))["key"] == "value"
    with pytest.raises(ValueError, match="png must"):
        plots.with_text_chunk(b"GIF89a", "key", "value")
    with pytest.raises(ValueError, match="key must"):
        plots.with_text_chunk(buffer.getvalue(), "", "value")
