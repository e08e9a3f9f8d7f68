"""Chapter 5 exercises: the references agree with labkit's own implementations.

Each exercise's known mistakes are registered with it and held to the contract in
tests/test_exercise_mistakes.py; here the references are tied to labkit.ewma,
labkit.nets.BatchNorm1d and labkit.optim, which are themselves tested against torch.
"""

import numpy as np

from labkit import nets, optim
from labkit.ewma import ewma
from labkit.exercises import get
from labkit.nets import Parameter


def test_ewma_reference_equals_labkit_ewma():
    x = np.random.default_rng(0).normal(size=40)
    np.testing.assert_allclose(
        get("5.1").reference(x, 0.8), ewma(x, 0.8, bias_correction=True), rtol=1e-13
    )


def test_batchnorm_reference_equals_labkit_batchnorm_over_a_stream():
    rng = np.random.default_rng(5)
    batches, x_eval = rng.normal(2.0, 3.0, size=(7, 5, 3)), rng.normal(size=(4, 3))
    layer = nets.BatchNorm1d(3, momentum=0.2, affine=False, eps=1e-3)
    for batch in batches:
        layer(batch)
    y = layer.eval()(x_eval)
    got = get("5.2").reference(batches, 0.2, x_eval, 1e-3)
    for want, mine in zip((layer.running_mean, layer.running_var, y), got):
        np.testing.assert_allclose(mine, want, rtol=1e-13)


def test_sgd_reference_equals_labkit_sgd_over_two_steps():
    rng = np.random.default_rng(1)
    p0, g1, g2 = rng.normal(size=(3, 4))
    for nesterov in (False, True):
        p = Parameter(p0)
        opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov)
        param, buf = p0, None
        for g in (g1, g2):
            p.grad = g
            opt.step()
            param, buf = get("5.3").reference(param, g, buf, 0.1, 0.9, nesterov)
        np.testing.assert_allclose(param, p.data, rtol=1e-14)
        np.testing.assert_allclose(buf, opt.state[p]["momentum_buffer"], rtol=1e-14)


def test_rmsprop_reference_equals_labkit_rmsprop_on_the_quadratic():
    rng = np.random.default_rng(4)
    start, curvature = rng.normal(size=5), 10.0 ** rng.uniform(-2, 2, size=5)
    for momentum in (0.0, 0.9):
        p = Parameter(start)
        opt = optim.RMSprop([p], lr=0.01, alpha=0.9, momentum=momentum)
        path = [start]
        for _ in range(12):
            p.grad = curvature * p.data
            opt.step()
            path.append(p.data.copy())
        got_path, got_v = get("5.4").reference(
            start, curvature, 0.01, 0.9, 1e-8, momentum, 12
        )
        np.testing.assert_allclose(got_path, np.array(path), rtol=1e-13)
        np.testing.assert_allclose(got_v, opt.state[p]["square_avg"], rtol=1e-13)


def test_rmsprop_reference_leaves_the_start_alone():
    start = np.array([1.0, -2.0])
    get("5.4").reference(start, np.ones(2), 0.1, 0.9, 1e-8, 0.5, 3)
    np.testing.assert_array_equal(start, [1.0, -2.0])


def test_adamw_reference_equals_labkit_adamw_over_three_steps():
    rng = np.random.default_rng(2)
    p0 = rng.normal(size=5)
    p = Parameter(p0)
    opt = optim.AdamW([p], lr=0.01, weight_decay=0.1)
    param, m, v = p0, np.zeros(5), np.zeros(5)
    for t in (1, 2, 3):
        g = rng.normal(size=5)
        p.grad = g
        opt.step()
        param, m, v = get("5.5").reference(
            param, g, m, v, t, 0.01, 0.9, 0.999, 1e-8, 0.1
        )
    np.testing.assert_allclose(param, p.data, rtol=1e-13)


def test_schedule_reference_reaches_base_lr_at_the_end_of_the_warm_up():
    lrs = get("5.6").reference(0.1, 0.001, 4, 10)
    np.testing.assert_allclose(lrs[:5], [0.025, 0.05, 0.075, 0.1, 0.1], rtol=1e-15)
    assert lrs[-1] > 0.001 and np.all(np.diff(lrs[4:]) < 0)
