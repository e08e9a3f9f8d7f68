r"""Test surfaces for watching optimizers move: 2-D objectives with analytic gradients
and Hessians.

Every surface takes points ``xy`` of shape ``(..., 2)`` (the last axis holds ``(x, y)``)
and returns

- ``f(xy)``: the value, shape ``(...)``;
- ``grad(xy)``: the gradient :math:`\nabla f`, shape ``(..., 2)``;
- ``hessian(xy)``: the matrix of second derivatives, shape ``(..., 2, 2)``.

The surfaces
------------
- ``quadratic(kappa, angle)``: :math:`f(p) = \tfrac12 p^\top A p` with
  :math:`A = R_\phi \operatorname{diag}(1, \kappa) R_\phi^\top`; the condition number is
  ``kappa`` and the steep direction is turned by ``angle`` radians from the y axis.
  Gradient descent with learning rate ``lr`` converges on it exactly when
  ``lr < 2 / kappa``.
- ``rosenbrock(a, b)``: :math:`(a - x)^2 + b\,(y - x^2)^2`, a curved valley with its
  minimum at :math:`(a, a^2)`.
- ``beale()``: :math:`\sum_{i=1}^{3} (c_i - x + x y^i)^2` with
  :math:`c = (1.5, 2.25, 2.625)`; minimum 0 at :math:`(3, 0.5)`, flat plateaus and steep
  walls.
- ``wells()``:
  :math:`q\,\lVert p\rVert^2 - \sum_i h_i \exp(-\lVert p - c_i\rVert^2 / 2\sigma_i^2)`,
  a bowl with two Gaussian wells (a shallow local minimum and a deeper global one), a
  saddle between them, and a Gaussian hill (``h < 0``).

``trajectory`` runs an optimizer on a surface, labkit's (``labkit.optim``) or torch's
(``torch.optim``), from a start point and returns the path, so the two can be compared
step for step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .runtime import as_generator

__all__ = [
    "Surface",
    "quadratic",
    "rosenbrock",
    "beale",
    "wells",
    "trajectory",
    "plot_paths",
]


def _points(xy) -> np.ndarray:
    """``xy`` as a float64 array of shape ``(..., 2)``; ValueError otherwise."""
    try:
        arr = np.asarray(xy, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"xy must be an array of numbers of shape (..., 2) ({exc})"
        ) from None
    if arr.ndim == 0 or arr.shape[-1] != 2:
        raise ValueError(
            "xy must have shape (..., 2) (points (x, y) on the last axis), got "
            f"{arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError("xy contains NaN or infinite values")
    return arr


@dataclass(frozen=True)
class Surface:
    """A 2-D objective: value, gradient and Hessian on ``(..., 2)`` points, plus
    plotting facts.

    ``minima`` and ``saddles`` list known critical points; ``xlim``/``ylim`` frame a
    plot and ``start`` is a start point that makes the surface's difficulty visible.
    """

    name: str
    _f: Callable[[np.ndarray], np.ndarray]
    _grad: Callable[[np.ndarray], np.ndarray]
    _hessian: Callable[[np.ndarray], np.ndarray]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    saddles: tuple[tuple[float, float], ...] = ()

    def f(self, xy) -> np.ndarray:
        """The value ``f(x, y)``, shape ``(...)``."""
        return self._f(_points(xy))

    def grad(self, xy) -> np.ndarray:
        """The gradient ``(df/dx, df/dy)``, shape ``(..., 2)``."""
        return self._grad(_points(xy))

    def hessian(self, xy) -> np.ndarray:
        """The Hessian ``[[f_xx, f_xy], [f_xy, f_yy]]``, shape ``(..., 2, 2)``."""
        return self._hessian(_points(xy))

    def __repr__(self) -> str:
        return f"Surface({self.name!r})"


def _stack2x2(a, b, d) -> np.ndarray:
    """The symmetric matrices ``[[a, b], [b, d]]`` stacked, shape ``(..., 2, 2)``."""
    return np.stack([np.stack([a, b], -1), np.stack([b, d], -1)], -2)


# --- the ill-conditioned quadratic
# -------------------------------------------------------------


def quadratic(kappa: float = 20.0, angle: float = 0.0) -> Surface:
    """``f = 0.5 p^T A p``, ``A = R diag(1, kappa) R^T`` with ``R`` the rotation by
    ``angle``."""
    if not np.isfinite(kappa) or kappa < 1:
        raise ValueError(
            f"kappa (the condition number) must be a finite number >= 1, got {kappa!r}"
        )
    if not np.isfinite(angle):
        raise ValueError(f"angle must be a finite number of radians, got {angle!r}")
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    A = R @ np.diag([1.0, float(kappa)]) @ R.T

    def f(p):
        return 0.5 * np.einsum("...i,ij,...j->...", p, A, p)

    def grad(p):
        return p @ A  # A is symmetric: (A p) = p A

    def hessian(p):
        return np.broadcast_to(A, p.shape[:-1] + (2, 2)).copy()

    name = (
        f"quadratic (kappa={kappa:g})"
        if angle == 0
        else f"quadratic (kappa={kappa:g}, rotated)"
    )
    return Surface(
        name,
        f,
        grad,
        hessian,
        xlim=(-3.0, 3.0),
        ylim=(-2.0, 2.0),
        start=(-2.5, 1.2),
        minima=((0.0, 0.0),),
    )


# --- Rosenbrock's valley
# -----------------------------------------------------------------------


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """``f = (a - x)^2 + b (y - x^2)^2``; minimum 0 at ``(a, a^2)``."""
    if not np.isfinite(a) or not np.isfinite(b) or b <= 0:
        raise ValueError(f"rosenbrock needs a finite a and b > 0, got a={a!r}, b={b!r}")

    def f(p):
        x, y = p[..., 0], p[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    def grad(p):
        x, y = p[..., 0], p[..., 1]
        return np.stack([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)], -1)

    def hessian(p):
        x, y = p[..., 0], p[..., 1]
        return _stack2x2(
            2 - 4 * b * y + 12 * b * x**2, -4 * b * x, np.full_like(x, 2 * b)
        )

    return Surface(
        "Rosenbrock",
        f,
        grad,
        hessian,
        xlim=(-2.0, 2.0),
        ylim=(-1.0, 3.0),
        start=(-1.2, 1.0),
        minima=((float(a), float(a) ** 2),),
    )


# --- Beale's function
# --------------------------------------------------------------------------

_BEALE_C = (1.5, 2.25, 2.625)


def beale() -> Surface:
    """``f = sum_i (c_i - x + x y^i)^2`` for ``i = 1, 2, 3``; minimum 0 at
    ``(3, 0.5)``."""

    def residuals(p):
        """``r_i``, ``dr_i/dx``, ``dr_i/dy`` for i = 1..3, each shape ``(3, ...)``."""
        x, y = p[..., 0], p[..., 1]
        i = np.arange(1, 4).reshape((3,) + (1,) * x.ndim)
        c = np.array(_BEALE_C).reshape(i.shape)
        return c - x + x * y**i, y**i - 1, i * x * y ** (i - 1), i, x, y

    def f(p):
        r = residuals(p)[0]
        return np.sum(r**2, axis=0)

    def grad(p):
        r, rx, ry, *_ = residuals(p)
        return np.stack([np.sum(2 * r * rx, 0), np.sum(2 * r * ry, 0)], -1)

    def hessian(p):
        r, rx, ry, i, x, y = residuals(p)
        rxy = i * y ** (i - 1)  # d2 r_i / dx dy
        ryy = (
            i * (i - 1) * x * y ** np.maximum(i - 2, 0)
        )  # d2 r_i / dy2 (zero for i = 1)
        return _stack2x2(
            np.sum(2 * rx * rx, 0),
            np.sum(2 * (rx * ry + r * rxy), 0),
            np.sum(2 * (ry * ry + r * ryy), 0),
        )

    return Surface(
        "Beale",
        f,
        grad,
        hessian,
        xlim=(-4.5, 4.5),
        ylim=(-4.5, 4.5),
        start=(1.0, 1.5),
        minima=((3.0, 0.5),),
    )


# --- two Gaussian wells, a saddle and a hill
# ----------------------------------------------------

_WELL_CENTRES = np.array([[-1.3, 0.9], [1.2, -0.7], [0.3, 1.6]])
_WELL_HEIGHTS = np.array([1.0, 1.5, -0.8])  # > 0: a well, < 0: a hill
_WELL_WIDTHS = np.array([0.6, 0.8, 0.5])
_WELL_BOWL = 0.06


def wells() -> Surface:
    """``f = q |p|^2 - sum_i h_i exp(-|p - c_i|^2 / (2 s_i^2))``: two minima, saddles
    and a hill."""
    C, h, s, q = _WELL_CENTRES, _WELL_HEIGHTS, _WELL_WIDTHS, _WELL_BOWL

    def parts(p):
        d = p[..., None, :] - C  # (..., 3, 2)
        e = h * np.exp(
            -np.sum(d * d, -1) / (2 * s**2)
        )  # (..., 3): h_i times the Gaussian
        return d, e

    def f(p):
        _, e = parts(p)
        return q * np.sum(p * p, -1) - np.sum(e, -1)

    def grad(p):
        d, e = parts(p)
        return 2 * q * p + np.sum((e / s**2)[..., None] * d, -2)

    def hessian(p):
        d, e = parts(p)
        w = (e / s**2)[..., None, None]  # (..., 3, 1, 1)
        outer = (
            d[..., :, None] * d[..., None, :] / (s**2)[:, None, None]
        )  # (..., 3, 2, 2)
        return 2 * q * np.eye(2) + np.sum(w * (np.eye(2) - outer), -3)

    return Surface(
        "two wells",
        f,
        grad,
        hessian,
        xlim=(-3.0, 3.0),
        ylim=(-3.0, 3.0),
        start=(-2.8, -2.0),
        minima=((-1.2478298036, 0.8584703803), (1.1413378429, -0.6657985644)),
        saddles=((-0.3102178130, 0.1823512083), (0.5018433456, 2.6681543631)),
    )


# --- running an optimizer on a surface
# ----------------------------------------------------------


def _is_torch_optimizer(optimizer) -> bool:
    return getattr(optimizer, "__module__", "").startswith("torch")


def trajectory(
    surface: Surface,
    optimizer,
    steps: int,
    start=None,
    *,
    scheduler=None,
    noise: float = 0.0,
    rng=None,
    **hyper,
) -> np.ndarray:
    """Run ``optimizer(params, **hyper)`` for ``steps`` steps on ``surface``; the path
    ``(steps + 1, 2)``.

    ``optimizer`` is an optimizer class from ``labkit.optim`` or ``torch.optim`` (e.g.
    ``labkit.optim.Adam`` with ``lr=0.1``); the point ``(x, y)`` is its one parameter,
    of shape ``(2,)``. Each step sets the parameter's gradient to ``surface.grad`` (plus
    Gaussian noise of standard deviation ``noise`` when asked, drawn from ``rng``, see
    ``labkit.runtime``), then calls ``step()``. ``scheduler``, if given, is a function
    ``optimizer -> scheduler`` (e.g. ``lambda opt: StepLR(opt, 50, 0.5)``) whose
    ``step()`` runs after every optimizer step. Row 0 of the result is the start, row
    ``t`` the point after ``t`` steps.
    """
    if not isinstance(surface, Surface):
        raise ValueError(
            "surface must be a Surface (e.g. labkit.surfaces.rosenbrock()), got "
            f"{type(surface).__name__}"
        )
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    point = _points(surface.start if start is None else start)
    if point.shape != (2,):
        raise ValueError(f"start must be one point (x, y), got shape {point.shape}")
    generator = as_generator(rng)

    if _is_torch_optimizer(optimizer):
        import torch

        param = torch.nn.Parameter(torch.tensor(point, dtype=torch.float64))
        read = lambda: param.detach().cpu().numpy().copy()  # noqa: E731
        set_grad = lambda g: setattr(param, "grad", torch.from_numpy(g))  # noqa: E731
    else:
        from .nets import Parameter

        param = Parameter(point)
        read = lambda: param.data.copy()  # noqa: E731
        set_grad = lambda g: setattr(param, "grad", g)  # noqa: E731

    opt = optimizer([param], **hyper)
    sched = scheduler(opt) if scheduler is not None else None
    path = np.empty((steps + 1, 2))
    path[0] = read()
    for t in range(1, steps + 1):
        g = surface.grad(path[t - 1])
        if noise > 0:
            g = g + noise * generator.normal(size=2)
        set_grad(g)
        opt.step()
        if sched is not None:
            sched.step()
        path[t] = read()
        if not np.isfinite(path[t]).all():
            raise ValueError(
                f"the optimizer diverged at step {t} (the point is {path[t]}); "
                "lower the learning rate"
            )
    return path


def plot_paths(
    surface: Surface,
    paths: dict,
    ax=None,
    levels: int = 20,
    resolution: int = 200,
    title: str | None = None,
    legend: bool = True,
    legend_columns: int = 2,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
):
    """Contour ``surface`` and draw each path (name -> ``(T, 2)`` array), start to end;
    returns ax.

    Contour levels are quantiles of ``f`` over the frame, so every surface shows its
    structure; the frame is the surface's own unless ``xlim`` or ``ylim`` zooms in.
    The start is a black square, each path's end a large marker of its own shape,
    minima are starred and saddles marked with an x. The legend sits below the axes,
    in ``legend_columns`` columns, so it never covers a path.
    """
    import matplotlib.pyplot as plt
    from matplotlib.transforms import offset_copy

    from labkit.plots import DASHES, MARKERS, PALETTE

    if ax is None:
        ax = plt.subplots()[1]
    xlim = surface.xlim if xlim is None else xlim
    ylim = surface.ylim if ylim is None else ylim
    gx, gy = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    values = surface.f(np.stack([gx, gy], -1))  # (resolution, resolution)
    lv = np.unique(np.quantile(values, np.linspace(0.0, 0.95, levels) ** 2))
    ax.contour(
        gx, gy, values, levels=lv, colors="0.6", linewidths=0.6, linestyles="solid"
    )
    filled = ax.contourf(
        gx, gy, values, levels=lv, cmap="Greys", alpha=0.25, extend="max"
    )
    filled.set_rasterized(True)  # a bitmap, not hundreds of polygons, in vector output
    for i, (name, path) in enumerate(paths.items()):
        path = np.asarray(path)
        colour, marker = PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]
        # Colour, dash and a marker on every tenth of the steps tell paths apart; the
        # same marker, large and white-edged, shows where each one ends.
        ax.plot(
            path[:, 0],
            path[:, 1],
            color=colour,
            linestyle=DASHES[i % len(DASHES)],
            lw=1.6,
            marker=marker,
            ms=4,
            markevery=list(range(0, len(path), max(1, len(path) // 10))),
            label=name,
        )
        ax.plot(
            *path[-1], marker=marker, color=colour, ms=9, mec="white", mew=1.2, zorder=4
        )
    if paths:
        first = np.asarray(next(iter(paths.values())))[0]
        ax.plot(*first, "ks", ms=6, zorder=5)
    for m in surface.minima:
        ax.plot(*m, "*", color="black", ms=12, zorder=5)
    for s in surface.saddles:
        ax.plot(*s, "x", color="black", ms=9, mew=2, zorder=5)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xlabel("$x$")
    ax.set_ylabel("$y$")
    ax.set_title(title if title is not None else surface.name)
    if legend and paths:
        # Anchored a fixed distance below the axes, clear of tick labels and x label.
        below = offset_copy(ax.transAxes, fig=ax.figure, y=-42, units="points")
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            bbox_transform=below,
            ncol=legend_columns,
            handlelength=2.4,
            columnspacing=1.0,
        )
    return ax
