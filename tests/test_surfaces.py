"""labkit.surfaces: values, gradients and Hessians against torch autograd and finite
differences; critical points; and trajectories that match torch.optim step for step."""

import math

import matplotlib
import numpy as np
import pytest
import torch

from labkit import optim
from labkit.surfaces import (
    Surface,
    beale,
    plot_paths,
    quadratic,
    rosenbrock,
    trajectory,
    wells,
)

matplotlib.use("Agg")


# Each surface written a second time, in torch, straight from its formula: the
# independent oracle.
def _torch_quadratic(kappa, angle):
    def f(p):
        c, s = math.cos(angle), math.sin(angle)
        u = c * p[0] + s * p[1]  # coordinate along the flat direction
        w = -s * p[0] + c * p[1]  # coordinate along the steep direction
        return 0.5 * (u**2 + kappa * w**2)

    return f


def _torch_rosenbrock(a, b):
    return lambda p: (a - p[0]) ** 2 + b * (p[1] - p[0] ** 2) ** 2


def _torch_beale(p):
    x, y = p[0], p[1]
    return (
        (1.5 - x + x * y) ** 2
        + (2.25 - x + x * y**2) ** 2
        + (2.625 - x + x * y**3) ** 2
    )


def _torch_wells(p):
    centres = [(-1.3, 0.9), (1.2, -0.7), (0.3, 1.6)]
    heights, widths = [1.0, 1.5, -0.8], [0.6, 0.8, 0.5]
    value = 0.06 * (p[0] ** 2 + p[1] ** 2)
    for (cx, cy), h, s in zip(centres, heights, widths):
        value = value - h * torch.exp(
            -((p[0] - cx) ** 2 + (p[1] - cy) ** 2) / (2 * s**2)
        )
    return value


CASES = [
    ("quadratic", quadratic(20.0), _torch_quadratic(20.0, 0.0)),
    ("quadratic rotated", quadratic(7.5, 0.6), _torch_quadratic(7.5, 0.6)),
    ("rosenbrock", rosenbrock(), _torch_rosenbrock(1.0, 100.0)),
    ("rosenbrock a=2 b=10", rosenbrock(2.0, 10.0), _torch_rosenbrock(2.0, 10.0)),
    ("beale", beale(), _torch_beale),
    ("wells", wells(), _torch_wells),
]
IDS = [c[0] for c in CASES]


def _points(surface: Surface, n: int = 25, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo = np.array([surface.xlim[0], surface.ylim[0]])
    hi = np.array([surface.xlim[1], surface.ylim[1]])
    return lo + (hi - lo) * rng.uniform(size=(n, 2))


@pytest.mark.parametrize("name, surface, torch_f", CASES, ids=IDS)
def test_value_gradient_and_hessian_equal_torch_autograd(name, surface, torch_f):
    for point in _points(surface):
        p = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        value = torch_f(p)
        (grad,) = torch.autograd.grad(value, p)
        hess = torch.autograd.functional.hessian(torch_f, p.detach())
        np.testing.assert_allclose(
            surface.f(point), value.item(), rtol=1e-12, atol=1e-12
        )
        np.testing.assert_allclose(
            surface.grad(point), grad.numpy(), rtol=1e-11, atol=1e-11
        )
        np.testing.assert_allclose(
            surface.hessian(point), hess.numpy(), rtol=1e-11, atol=1e-11
        )


@pytest.mark.parametrize("name, surface, torch_f", CASES, ids=IDS)
def test_gradient_equals_central_differences_of_f(name, surface, torch_f):
    h = 1e-6
    for point in _points(surface, n=10, seed=1):
        numeric = [
            (surface.f(point + h * e) - surface.f(point - h * e)) / (2 * h)
            for e in np.eye(2)
        ]
        scale = max(1.0, np.abs(numeric).max())
        np.testing.assert_allclose(
            surface.grad(point), numeric, rtol=1e-6, atol=1e-6 * scale
        )


@pytest.mark.parametrize("name, surface, torch_f", CASES, ids=IDS)
def test_hessian_equals_central_differences_of_grad(name, surface, torch_f):
    h = 1e-6
    for point in _points(surface, n=10, seed=2):
        numeric = np.stack(
            [
                (surface.grad(point + h * e) - surface.grad(point - h * e)) / (2 * h)
                for e in np.eye(2)
            ]
        )
        scale = max(1.0, np.abs(numeric).max())
        np.testing.assert_allclose(
            surface.hessian(point), numeric, rtol=1e-5, atol=1e-6 * scale
        )


@pytest.mark.parametrize("name, surface, torch_f", CASES, ids=IDS)
@pytest.mark.parametrize("batch", [(), (7,), (3, 4)])
def test_batched_points_equal_point_by_point(name, surface, torch_f, batch):
    xy = _points(surface, n=int(np.prod(batch, dtype=int))).reshape(batch + (2,))
    f, g, h = surface.f(xy), surface.grad(xy), surface.hessian(xy)
    assert f.shape == batch and g.shape == batch + (2,) and h.shape == batch + (2, 2)
    flat = xy.reshape(-1, 2)
    np.testing.assert_allclose(f.reshape(-1), [surface.f(p) for p in flat], rtol=1e-14)
    np.testing.assert_allclose(
        g.reshape(-1, 2), [surface.grad(p) for p in flat], rtol=1e-14
    )
    np.testing.assert_allclose(
        h.reshape(-1, 2, 2), [surface.hessian(p) for p in flat], rtol=1e-14
    )


@pytest.mark.parametrize("name, surface, torch_f", CASES, ids=IDS)
def test_listed_minima_are_minima_and_saddles_are_saddles(name, surface, torch_f):
    for m in surface.minima:
        assert np.abs(surface.grad(m)).max() < 1e-8
        assert np.linalg.eigvalsh(surface.hessian(m)).min() > 0
    for s in surface.saddles:
        assert np.abs(surface.grad(s)).max() < 1e-8
        low, high = np.linalg.eigvalsh(surface.hessian(s))
        assert low < 0 < high


def test_known_minimum_values():
    assert rosenbrock().f((1.0, 1.0)) == 0.0
    assert rosenbrock(2.0, 10.0).f((2.0, 4.0)) == 0.0
    assert beale().f((3.0, 0.5)) == 0.0
    assert quadratic(50.0, 1.0).f((0.0, 0.0)) == 0.0
    # the global well is deeper than the local one
    w = wells()
    assert w.f(w.minima[1]) < w.f(w.minima[0]) < w.f(w.saddles[0])


def test_quadratic_has_condition_number_kappa_along_the_rotated_axis():
    q = quadratic(kappa=12.0, angle=0.3)
    values, vectors = np.linalg.eigh(q.hessian((0.4, -1.0)))
    np.testing.assert_allclose(values, [1.0, 12.0], rtol=1e-13)
    steep = vectors[:, 1] * np.sign(vectors[1, 1])
    np.testing.assert_allclose(steep, [-math.sin(0.3), math.cos(0.3)], rtol=1e-12)


def test_gradient_descent_on_the_quadratic_converges_iff_lr_below_2_over_kappa():
    q = quadratic(kappa=20.0)
    ok = trajectory(q, optim.SGD, 300, lr=1.9 / 20)
    bad = trajectory(q, optim.SGD, 300, lr=2.1 / 20)
    assert np.linalg.norm(ok[-1]) < 1e-5 * np.linalg.norm(ok[0])
    assert np.linalg.norm(bad[-1]) > 1e5 * np.linalg.norm(bad[0])
    # along the steep axis the error is multiplied by exactly (1 - lr * kappa) each step
    np.testing.assert_allclose(ok[1:, 1] / ok[:-1, 1], 1 - 1.9, rtol=1e-12)


OPTIMIZERS = [
    ("SGD", dict(lr=1e-3)),
    ("SGD", dict(lr=1e-3, momentum=0.9)),
    ("SGD", dict(lr=5e-4, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=1e-3, momentum=0.9, dampening=0.9, weight_decay=0.1)),
    ("Adam", dict(lr=0.05)),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), amsgrad=True)),
    ("AdamW", dict(lr=0.05, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True)),
    ("Adagrad", dict(lr=0.3, lr_decay=0.01)),
    ("Adadelta", dict(lr=1.0)),
]


@pytest.mark.parametrize(
    "name, hyper", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)]
)
@pytest.mark.parametrize(
    "surface", [rosenbrock(), wells()], ids=["rosenbrock", "wells"]
)
def test_labkit_path_equals_torch_path(name, hyper, surface):
    # Free-running paths, compared at 1e-10: these are well conditioned. Moving the
    # start by 4 units in the last place moves torch's own 150-step path by at most
    # 1.5e-14 (measured for every case here), so rounding differences between CPUs'
    # vector kernels stay four orders of magnitude below the tolerance.
    ours = trajectory(surface, getattr(optim, name), 150, **hyper)
    theirs = trajectory(surface, getattr(torch.optim, name), 150, **hyper)
    assert ours.shape == theirs.shape == (151, 2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_scheduler_is_stepped_after_every_optimizer_step():
    q = quadratic(5.0)

    def halve(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    path = trajectory(q, torch.optim.SGD, 3, start=(1.0, 0.0), lr=0.5, scheduler=halve)
    # x shrinks by (1 - lr_t) with lr_t = 0.5, 0.25, 0.125
    np.testing.assert_allclose(path[:, 0], [1.0, 0.5, 0.375, 0.328125], rtol=1e-15)


def test_noise_is_seeded_and_zero_noise_is_exact_gradient_descent():
    q = quadratic(4.0)
    a = trajectory(q, optim.SGD, 20, lr=0.1, noise=0.5, rng=3)
    b = trajectory(q, optim.SGD, 20, lr=0.1, noise=0.5, rng=3)
    c = trajectory(q, optim.SGD, 20, lr=0.1, noise=0.5, rng=4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3
    plain = trajectory(q, optim.SGD, 20, lr=0.1)
    np.testing.assert_allclose(plain[1], plain[0] - 0.1 * q.grad(plain[0]), rtol=1e-15)


def test_start_defaults_to_the_surface_start_and_zero_steps_return_it():
    r = rosenbrock()
    path = trajectory(r, optim.Adam, 0, lr=0.1)
    np.testing.assert_array_equal(path, [r.start])
    np.testing.assert_array_equal(
        trajectory(r, optim.Adam, 0, start=(0.5, 0.5), lr=0.1), [[0.5, 0.5]]
    )


def test_plot_paths_draws_one_line_per_path():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    paths = {
        "a": np.array([[0.0, 0.0], [1.0, 1.0]]),
        "b": np.array([[0.5, 0.5], [0.0, 1.0]]),
    }
    out = plot_paths(wells(), paths, ax=ax, levels=10, resolution=50)
    assert out is ax
    labels = [line.get_label() for line in ax.get_lines()]
    assert "a" in labels and "b" in labels
    assert ax.get_xlim() == wells().xlim and ax.get_ylim() == wells().ylim
    plt.close(fig)


def test_plot_paths_zooms_into_the_frame_it_is_given():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    path = {"a": np.array([[0.0, 0.0], [0.5, 0.5]])}
    plot_paths(rosenbrock(), path, ax=ax, resolution=20, xlim=(-1, 1), ylim=(0, 2))
    assert ax.get_xlim() == (-1, 1) and ax.get_ylim() == (0, 2)
    plt.close(fig)


@pytest.mark.parametrize(
    "bad", [np.zeros(3), np.zeros((4, 3)), 1.0, [[np.nan, 0.0]], [np.inf, 1.0], "xy"]
)
def test_bad_points_raise(bad):
    with pytest.raises(ValueError, match="xy"):
        rosenbrock().grad(bad)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: quadratic(kappa=0.5), "kappa"),
        (lambda: quadratic(kappa=np.nan), "kappa"),
        (lambda: quadratic(angle=np.inf), "angle"),
        (lambda: rosenbrock(b=0.0), "rosenbrock"),
        (lambda: rosenbrock(a=np.nan), "rosenbrock"),
    ],
)
def test_bad_surface_parameters_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps=-1), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(steps=True), "steps"),
        (dict(steps=5, noise=-1.0), "noise"),
        (dict(steps=5, start=(1.0, 2.0, 3.0)), "xy"),
        (dict(steps=5, start=[[1.0, 2.0]]), "start"),
    ],
)
def test_bad_trajectory_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        trajectory(quadratic(), optim.SGD, lr=0.1, **kwargs)


def test_trajectory_rejects_a_non_surface_and_reports_divergence():
    with pytest.raises(ValueError, match="surface"):
        trajectory(lambda p: p, optim.SGD, 5, lr=0.1)
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(ValueError, match="diverged"):
            trajectory(rosenbrock(), optim.SGD, 50, lr=0.1)
