"""Figure helpers, so a chapter's plotting cell is one line and the reader sees the
idea."""

from __future__ import annotations

import base64
import contextlib
import struct
import sys
import zlib
from typing import Callable

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure

PALETTE = ("#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057")
# Each colour of the cycle comes with its own dash pattern and marker, so lines stay
# apart in grey print and for readers who do not tell the colours apart.
DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


# The key of the PNG text chunk in which a figure shown in Jupyter after
# `use_style()` records the size, in image pixels, of its smallest text (the font size
# at the figure's dpi). The book's browser test scales it by how much the page shrinks
# the image and holds every chapter figure to at least 9 CSS pixels on a phone.
SMALLEST_TEXT_KEY = "labkit:smallest-text-px"


def use_style() -> None:
    """The course's matplotlib look, and, in Jupyter, figures that say how small their
    text is (`SMALLEST_TEXT_KEY`).

    Sized for a phone, where the book shows a figure 342 pixels wide: text stays at 9
    pixels or more there when the figure is at most 38 times as wide as its smallest
    text is high (at 100 dpi, 11-point text in a figure at most 5.8 inches wide), so
    keep figures near the default 6 inches, two panels a row at most. Light grid, and a
    colour-blind-safe cycle whose lines also differ by dash."""
    plt.rcParams.update(
        {
            "figure.figsize": (6.0, 3.6),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.prop_cycle": plt.cycler(color=PALETTE) + plt.cycler(linestyle=DASHES),
            "font.size": 12,
            "axes.titlesize": 12,
            "axes.labelsize": 12,
            "xtick.labelsize": 11,
            "ytick.labelsize": 11,
            "legend.fontsize": 11,
            "figure.titlesize": 12,
            "lines.linewidth": 1.8,
            "legend.frameon": False,
            "image.cmap": "viridis",
        }
    )
    _show_text_size_in_jupyter()


def _show_text_size_in_jupyter() -> None:
    """In an IPython kernel with the inline backend, show figures through `_png`."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or "inline" not in matplotlib.get_backend():
        return
    # Activating the backend now sets up its formatters once, so they do not replace
    # this one later (matplotlib_inline configures them when the backend loads).
    shell.run_line_magic("matplotlib", "inline")
    shell.display_formatter.formatters["image/png"].for_type(Figure, _png)


def _png(fig: Figure) -> str | None:
    """The PNG Jupyter shows for ``fig`` (base64), with the pixel size of its smallest
    drawn text in a text chunk named `SMALLEST_TEXT_KEY`."""
    from IPython.core.pylabtools import print_figure

    sizes: list[float] = []
    with _recording_text_sizes(sizes):
        png = print_figure(fig, fmt="png")
    if png is None:  # a figure without axes shows nothing
        return None
    if sizes:
        png = with_text_chunk(png, SMALLEST_TEXT_KEY, f"{min(sizes):.2f}")
    return base64.b64encode(png).decode("ascii")


@contextlib.contextmanager
def _recording_text_sizes(sizes: list[float]):
    """Append to ``sizes`` the font size, in pixels, of each non-blank text the Agg
    renderer draws (mathematics included) while the block runs."""
    draw_text = RendererAgg.draw_text

    def recording(self, gc, x, y, s, prop, *args, **kwargs):
        if s.strip():
            sizes.append(prop.get_size_in_points() * self.dpi / 72)
        return draw_text(self, gc, x, y, s, prop, *args, **kwargs)

    RendererAgg.draw_text = recording
    try:
        yield
    finally:
        RendererAgg.draw_text = draw_text


def with_text_chunk(png: bytes, key: str, value: str) -> bytes:
    """``png`` with a tEXt chunk ``key: value`` (Latin-1) right after its header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("png must be PNG data starting with its IHDR chunk")
    if not 1 <= len(key) <= 79 or "\0" in key + value:
        raise ValueError(f"key must be 1 to 79 characters, without NUL; got {key!r}")
    body = b"tEXt" + key.encode("latin-1") + b"\0" + value.encode("latin-1")
    chunk = (
        struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    )
    end = 8 + 8 + 13 + 4  # signature; IHDR's length and type, 13 data bytes, CRC
    return png[:end] + chunk + png[end:]


def _axes(ax):
    return ax if ax is not None else plt.subplots()[1]


def decision_boundary(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    ax=None,
    resolution: int = 200,
    margin: float = 0.5,
    title: str | None = None,
):
    """Colour the plane by ``predict`` (``(m, 2) -> (m,)`` class labels) and scatter
    ``(X, y)``."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2), got {X.shape}")
    ax = _axes(ax)
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    gx, gy = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.column_stack([gx.ravel(), gy.ravel()])  # (resolution**2, 2)
    labels = np.asarray(predict(grid)).reshape(gx.shape)
    classes = np.unique(y)
    colors = [
        PALETTE[i % len(PALETTE)]
        for i in range(int(max(classes.max(), labels.max())) + 1)
    ]
    cmap = plt.matplotlib.colors.ListedColormap(colors)
    ax.contourf(
        gx, gy, labels, levels=np.arange(len(colors) + 1) - 0.5, cmap=cmap, alpha=0.25
    )
    for k in classes:
        ax.scatter(
            *X[y == k].T,
            s=14,
            color=colors[int(k)],
            edgecolor="white",
            linewidth=0.4,
            label=f"class {k}",
        )
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal")
    if title:
        ax.set_title(title)
    return ax


def curves(
    series: dict,
    ax=None,
    xlabel: str = "step",
    ylabel: str = "loss",
    logy: bool = False,
    title: str | None = None,
    end_labels: bool = False,
    **plot_kw,
):
    """One line per entry of ``series`` (name -> 1-D values), with a legend, or with
    each name written at the end of its line (``end_labels=True``)."""
    if not series:
        raise ValueError("series must name at least one curve")
    ax = _axes(ax)
    for name, values in series.items():
        values = np.asarray(values)
        (line,) = ax.plot(values, label=name, **plot_kw)
        if end_labels:
            ax.annotate(
                f" {name}",
                (len(values) - 1, values[-1]),
                color=line.get_color(),
                va="center",
                annotation_clip=False,
            )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if not end_labels:
        ax.legend()
    return ax


def image_grid(
    images: np.ndarray,
    titles=None,
    ncols: int = 6,
    cmap: str = "gray",
    size: float = 1.0,
    symmetric: bool = False,
):
    """Show ``images`` (``(n, H, W)`` or ``(n, 1, H, W)``) in a grid; returns the
    figure.

    ``symmetric=True`` centres the colour scale on zero per image (for filters and
    gradients).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]  # (n, H, W)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(
            f"images must have shape (n, H, W) or (n, 1, H, W), got {images.shape}"
        )
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"titles has {len(titles)} entries for {len(images)} images")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        kw = {}
        if symmetric:
            lim = np.abs(images[i]).max() or 1.0
            kw = {"vmin": -lim, "vmax": lim}
        ax.imshow(images[i], cmap=cmap, **kw)
        if titles is not None:
            ax.set_title(str(titles[i]))
    fig.tight_layout()
    return fig


def hidden_representation(
    hidden: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    ax=None,
    weight=None,
    bias: float = 0.0,
    lines: int = 11,
    margin: float = 0.5,
    title: str | None = None,
):
    """Draw a 2-D layer's view ``hidden(X)`` of 2-D data: where it sends a grid of lines
    over the input box (how the layer bends the plane), the mapped points by class, and,
    given the next unit's ``weight`` (2,) and ``bias``, its decision line
    ``weight . h + bias = 0``."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (n, 2), got {X.shape}")
    H = np.asarray(hidden(X), dtype=np.float64)
    if H.shape != X.shape:
        raise ValueError(f"hidden must map (n, 2) to (n, 2), got {H.shape}")
    ax = _axes(ax)
    lo, hi = X.min(axis=0) - margin, X.max(axis=0) + margin
    t = np.linspace(0.0, 1.0, 200)
    for s in np.linspace(0.0, 1.0, lines):
        fixed = lo + s * (hi - lo)  # one vertical, one horizontal line
        along = lo[:, None] + t * (hi - lo)[:, None]  # (2, 200)
        for segment in (
            np.column_stack([np.full_like(t, fixed[0]), along[1]]),
            np.column_stack([along[0], np.full_like(t, fixed[1])]),
        ):
            ax.plot(
                *np.asarray(hidden(segment)).T, color="0.6", linewidth=0.6, zorder=1
            )
    for k in np.unique(y):
        ax.scatter(
            *H[y == k].T,
            s=14,
            color=PALETTE[int(k) % len(PALETTE)],
            edgecolor="white",
            linewidth=0.4,
            label=f"class {k}",
            zorder=3,
        )
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64).ravel()
        if w.shape != (2,):
            raise ValueError(f"weight must hold 2 numbers, got shape {w.shape}")
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        if abs(w[1]) >= abs(w[0]):
            u = np.linspace(x0, x1, 2)
            ax.plot(
                u,
                -(w[0] * u + bias) / w[1],
                "k--",
                linewidth=1.2,
                label="next unit: $z = 0$",
            )
        else:
            v = np.linspace(y0, y1, 2)
            ax.plot(
                -(w[1] * v + bias) / w[0],
                v,
                "k--",
                linewidth=1.2,
                label="next unit: $z = 0$",
            )
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    ax.set_xlabel("$h_1$")
    ax.set_ylabel("$h_2$")
    if title:
        ax.set_title(title)
    ax.legend(loc="best")
    return ax
