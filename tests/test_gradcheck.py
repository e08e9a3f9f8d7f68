"""labkit.gradcheck: central differences, relative error, gradcheck, gradient norms and
clipping.

References: closed-form derivatives, hand-computed numbers, torch autograd and
torch.nn.utils.clip_grad_norm_ in float64.
"""

import math

import numpy as np
import pytest
import torch

from labkit.gradcheck import (
    clip_grad_norm_,
    grad_norms,
    gradcheck,
    layer_outputs,
    numerical_gradient,
    rel_error,
)


# -- small modules following the labkit.nets contract, so these tests stand on their own


class _Param:
    def __init__(self, data):
        self.data = np.array(data, dtype=np.float64)
        self.grad = None

    def accumulate(self, g):
        self.grad = g.copy() if self.grad is None else self.grad + g


class _Affine:
    """Y = X W^T + b with a correct backward, or a buggy one (dW = dY^T X forgotten
    transpose)."""

    def __init__(self, rng, d_in, d_out, bug=False):
        self.weight = _Param(rng.normal(size=(d_out, d_in)))
        self.bias = _Param(rng.normal(size=d_out))
        self.bug = bug

    def named_parameters(self):
        return [("weight", self.weight), ("bias", self.bias)]

    def forward(self, X):
        self.X = X
        return X @ self.weight.data.T + self.bias.data

    def backward(self, dY):
        dW = dY.T @ self.X
        if self.bug:
            dW = dW * 1.01
        self.weight.accumulate(dW)
        self.bias.accumulate(dY.sum(axis=0))
        return dY @ self.weight.data


class _MeanSquare:
    """A loss-like module: L = mean((X - target)**2), backward() takes no argument."""

    def named_parameters(self):
        return []

    def forward(self, X, target):
        self.diff = X - target
        return float(np.mean(self.diff**2))

    def backward(self):
        return 2 * self.diff / self.diff.size


# -- numerical_gradient ----------------------------------------------------------------


def test_numerical_gradient_matches_closed_form():
    x = np.random.default_rng(0).normal(size=(3, 4))
    f = lambda v: np.sum(np.sin(v) * v**2)
    exact = np.cos(x) * x**2 + 2 * x * np.sin(x)
    np.testing.assert_allclose(numerical_gradient(f, x), exact, rtol=1e-8, atol=1e-10)


def test_numerical_gradient_is_second_order_and_one_sided_is_first_order():
    # f(x) = exp(x) at 0: central error ~ eps**2/6, one-sided error ~ eps/2
    x = np.zeros(1)
    for eps in (1e-2, 1e-3):
        central = numerical_gradient(lambda v: np.exp(v[0]), x, eps)[0]
        assert abs(central - 1.0) == pytest.approx(eps**2 / 6, rel=1e-2)


def test_numerical_gradient_restores_x_exactly_and_perturbs_in_place():
    x = np.random.default_rng(1).normal(size=5)
    before = x.copy()
    seen = []
    numerical_gradient(lambda v: seen.append(v is x) or float(v.sum()), x)
    assert all(seen) and np.array_equal(x, before)


def test_numerical_gradient_keeps_float32():
    x = np.linspace(-1, 1, 4).astype(np.float32)
    g = numerical_gradient(lambda v: np.sum(v**2), x, eps=1e-2)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "x, eps, match",
    [
        (np.zeros(3), 0.0, "eps"),
        (np.zeros(3), -1e-6, "eps"),
        (np.zeros(3), float("nan"), "eps"),
        (np.zeros(3, dtype=np.int64), 1e-6, "x must be a numpy array of floats"),
        (np.array([1.0, np.nan]), 1e-6, "finite"),
        (np.zeros(0), 1e-6, "empty"),
        ([1.0, 2.0], 1e-6, "numpy array"),
    ],
)
def test_numerical_gradient_rejects_bad_input(x, eps, match):
    with pytest.raises(ValueError, match=match):
        numerical_gradient(lambda v: 0.0, x, eps)


def test_numerical_gradient_rejects_non_scalar_or_non_finite_f():
    with pytest.raises(ValueError, match="one real number"):
        numerical_gradient(lambda v: v * 2, np.ones(2))
    with pytest.raises(ValueError, match="finite"):
        numerical_gradient(lambda v: np.inf, np.ones(2))


# -- rel_error -------------------------------------------------------------------------


def test_rel_error_hand_computed():
    # ||(3,4) - (0,0)|| / (5 + 0) = 1 ; ||(1,0)-(0,1)|| / (1 + 1) = sqrt(2)/2
    assert rel_error(np.array([3.0, 4.0]), np.zeros(2)) == 1.0
    assert rel_error(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(
        math.sqrt(2) / 2, rel=1e-15
    )


def test_rel_error_properties():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    assert rel_error(a, a) == 0.0
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(a, b) == pytest.approx(rel_error(b, a), rel=1e-15)
    assert rel_error(1e-9 * a, 1e-9 * b) == pytest.approx(rel_error(a, b), rel=1e-12)
    assert 0.0 < rel_error(a, b) <= 1.0
    assert rel_error(torch.tensor(a), b) == pytest.approx(rel_error(a, b), rel=1e-15)


def test_rel_error_rejects_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        rel_error(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        rel_error(np.array([np.nan]), np.zeros(1))
    with pytest.raises(ValueError, match="tiny"):
        rel_error(np.zeros(1), np.zeros(1), tiny=0.0)
    with pytest.raises(ValueError, match="real numbers"):
        rel_error(np.array(["a"]), np.array(["b"]))


# -- gradcheck -------------------------------------------------------------------------


def test_gradcheck_passes_a_correct_module_and_restores_it():
    rng = np.random.default_rng(3)
    layer = _Affine(rng, 4, 3)
    weight_before = layer.weight.data.copy()
    X = rng.normal(size=(6, 4))
    report = gradcheck(layer, X)
    assert set(report) == {"input", "weight", "bias"}
    assert max(report.values()) < 1e-8
    assert np.array_equal(layer.weight.data, weight_before)
    assert layer.weight.grad is None and layer.bias.grad is None


def test_gradcheck_keeps_existing_gradients():
    rng = np.random.default_rng(4)
    layer = _Affine(rng, 2, 2)
    layer.weight.grad = np.full((2, 2), 7.0)
    gradcheck(layer, rng.normal(size=(3, 2)))
    assert np.array_equal(layer.weight.grad, np.full((2, 2), 7.0))


def test_gradcheck_finds_the_wrong_parameter():
    rng = np.random.default_rng(5)
    report = gradcheck(_Affine(rng, 4, 3, bug=True), rng.normal(size=(6, 4)))
    # a 1% error in dW: rel_error = 0.01 / (2.01) about 5e-3; the others stay exact
    assert report["weight"] == pytest.approx(0.01 / 2.01, rel=1e-4)
    assert report["input"] < 1e-8 and report["bias"] < 1e-8


def test_gradcheck_on_a_loss_module_checks_the_input_and_holds_the_target():
    rng = np.random.default_rng(6)
    X, T = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    report = gradcheck(_MeanSquare(), (X, T))
    assert set(report) == {"input"} and report["input"] < 1e-8


def test_gradcheck_names_several_inputs_and_skips_integer_ones():
    rng = np.random.default_rng(12)
    a, k, b = rng.normal(size=3), np.arange(3), rng.normal(size=3)
    report = gradcheck(
        lambda u, idx, v: u[idx] * v,
        (a, k, b),
        grad_fn=lambda G, u, idx, v: (G * v, G * u),
    )
    assert set(report) == {"input0", "input2"} and max(report.values()) < 1e-9
    wrong = gradcheck(
        lambda u, idx, v: u * v, (a, k, b), grad_fn=lambda G, u, idx, v: (G * v, G * v)
    )
    assert wrong["input0"] < 1e-9 and wrong["input2"] > 0.01
    with pytest.raises(ValueError, match="3 input gradients"):
        gradcheck(
            lambda u, idx, v: u * v, (a, k, b), grad_fn=lambda G, u, idx, v: (G, G, G)
        )


def test_gradcheck_on_a_function_matches_torch_softmax_cross_entropy():
    rng = np.random.default_rng(7)
    logits, y = rng.normal(size=(5, 4)), rng.integers(0, 4, size=5)

    def ce(z, labels):
        z = z - z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(labels)), labels].mean()

    def ce_grad(G, z, labels):
        t = torch.tensor(z, requires_grad=True)
        torch.nn.functional.cross_entropy(t, torch.tensor(labels)).backward(
            torch.tensor(G)
        )
        return t.grad.numpy()

    report = gradcheck(ce, (logits, y), grad_fn=ce_grad)
    assert set(report) == {"input"} and report["input"] < 1e-8


def test_gradcheck_uses_the_whole_jacobian():
    # f(x) = x[::-1]: a backward that returns G instead of G[::-1] must fail
    x = np.random.default_rng(8).normal(size=6)
    good = gradcheck(lambda v: v[::-1] * 1.0, x, grad_fn=lambda G, v: G[::-1])
    bad = gradcheck(lambda v: v[::-1] * 1.0, x, grad_fn=lambda G, v: G)
    assert good["input"] < 1e-9 and bad["input"] > 0.1


def test_gradcheck_rejects_bad_calls():
    rng = np.random.default_rng(9)
    layer = _Affine(rng, 2, 2)
    with pytest.raises(ValueError, match="grad_fn is required"):
        gradcheck(np.tanh, np.zeros(3))
    with pytest.raises(ValueError, match="grad_fn is only for plain functions"):
        gradcheck(layer, np.zeros((1, 2)), grad_fn=lambda G, x: G)
    with pytest.raises(ValueError, match="floating-point"):
        gradcheck(lambda y: y, np.arange(3), grad_fn=lambda G, y: G)
    with pytest.raises(ValueError, match="finite"):
        gradcheck(layer, np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="at least one"):
        gradcheck(layer, ())
    with pytest.raises(ValueError, match="eps"):
        gradcheck(layer, np.zeros((1, 2)), eps=0)
    with pytest.raises(ValueError, match="module"):
        gradcheck(42, np.zeros(2))


# -- grad_norms ------------------------------------------------------------------------


def test_grad_norms_of_a_torch_module_match_torch():
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    ).double()
    net(torch.randn(5, 3, dtype=torch.float64)).pow(2).sum().backward()
    norms = grad_norms(net)
    assert list(norms) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    for name, p in net.named_parameters():
        assert norms[name] == pytest.approx(
            torch.linalg.vector_norm(p.grad).item(), rel=1e-14
        )


def test_grad_norms_of_a_labkit_style_module_and_errors():
    layer = _Affine(np.random.default_rng(10), 2, 2)
    with pytest.raises(ValueError, match="no gradient yet"):
        grad_norms(layer)
    layer.weight.grad, layer.bias.grad = np.array([[3.0, 0.0], [0.0, 4.0]]), np.zeros(2)
    assert grad_norms(layer) == {"weight": 5.0, "bias": 0.0}
    with pytest.raises(ValueError, match="named_parameters"):
        grad_norms(object())


# -- clip_grad_norm_ -------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    rng = np.random.default_rng(11)
    grads = [rng.normal(size=s) for s in [(4, 3), (4,), (2, 4)]]
    mine = [_Param(np.zeros(g.shape)) for g in grads]
    theirs = [
        torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads
    ]
    for p, q, g in zip(mine, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    total = clip_grad_norm_(mine, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total == pytest.approx(expected.item(), rel=1e-13)
    for p, q in zip(mine, theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-13, atol=0)


def test_clip_grad_norm_hand_computed_and_skips_missing_grads():
    p, q = _Param(np.zeros(2)), _Param(np.zeros(1))
    p.grad = np.array([3.0, 4.0])  # norm 5, clipped to 1
    assert clip_grad_norm_([p, q], 1.0) == 5.0
    np.testing.assert_allclose(p.grad, np.array([3.0, 4.0]) / (5.0 + 1e-6), rtol=1e-15)
    assert q.grad is None
    assert clip_grad_norm_([q], 1.0) == 0.0


@pytest.mark.parametrize(
    "max_norm, norm_type, match",
    [
        (-1.0, 2.0, "max_norm"),
        (float("nan"), 2.0, "max_norm"),
        (True, 2.0, "max_norm"),
        (1.0, 0.0, "norm_type"),
        (1.0, -2.0, "norm_type"),
    ],
)
def test_clip_grad_norm_rejects_bad_hyper_parameters(max_norm, norm_type, match):
    p = _Param(np.zeros(2))
    p.grad = np.ones(2)
    with pytest.raises(ValueError, match=match):
        clip_grad_norm_([p], max_norm, norm_type)


def test_clip_grad_norm_rejects_non_finite_gradients():
    p = _Param(np.zeros(2))
    p.grad = np.array([1.0, np.nan])
    with pytest.raises(ValueError, match="finite"):
        clip_grad_norm_([p], 1.0)


# -- on the real labkit.nets layers ----------------------------------------------------


def test_gradcheck_passes_labkit_layers_and_losses():
    import labkit.nets as nn

    rng = np.random.default_rng(13)
    model = nn.Sequential(
        nn.Linear(3, 5, rng=0),
        nn.Tanh(),
        nn.Linear(5, 4, rng=1),
        nn.Sigmoid(),
        nn.BatchNorm1d(4),
        nn.Linear(4, 2, rng=2),
    )
    report = gradcheck(model, rng.normal(size=(6, 3)))
    assert set(report) == {"input", *dict(model.named_parameters())}
    assert max(report.values()) < 1e-7
    assert (
        gradcheck(
            nn.CrossEntropyLoss(), (rng.normal(size=(6, 3)), rng.integers(0, 3, 6))
        )["input"]
        < 1e-8
    )
    assert (
        gradcheck(nn.MSELoss(), (rng.normal(size=(6, 3)), rng.normal(size=(6, 3))))[
            "input"
        ]
        < 1e-8
    )


def test_gradcheck_catches_the_tanh_backward_that_uses_the_input():
    import labkit.nets as nn

    class WrongTanh(nn.Tanh):
        """Uses 1 - x**2 (the input) where 1 - y**2 (the cached output) is right."""

        def forward(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            return super().forward(x)

        def backward(self, grad_out):
            return grad_out * (1 - self.x**2)

    X = np.random.default_rng(14).normal(size=(5, 3))
    assert gradcheck(nn.Tanh(), X)["input"] < 1e-8
    assert gradcheck(WrongTanh(), X)["input"] > 1e-2


def test_grad_norms_agree_between_labkit_and_torch_models_with_the_same_weights():
    import labkit.nets as nn

    torch.manual_seed(1)
    theirs = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    ).double()
    mine = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=0))
    mine.load_state_dict(theirs.state_dict())
    X = np.random.default_rng(15).normal(size=(7, 3))
    y = np.random.default_rng(16).integers(0, 2, 7)
    torch.nn.functional.cross_entropy(
        theirs(torch.tensor(X)), torch.tensor(y)
    ).backward()
    loss_fn = nn.CrossEntropyLoss()
    loss_fn(mine(X), y)
    mine.backward(loss_fn.backward())
    a, b = grad_norms(mine), grad_norms(theirs)
    assert list(a) == list(b)
    for name in a:
        assert a[name] == pytest.approx(b[name], rel=1e-12)


# -- layer_outputs ---------------------------------------------------------------------


def test_layer_outputs_of_labkit_and_torch_sequentials_agree():
    import labkit.nets as nn

    torch.manual_seed(2)
    theirs = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    ).double()
    mine = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=0))
    mine.load_state_dict(theirs.state_dict())
    X = np.random.default_rng(17).normal(size=(5, 3))
    a = layer_outputs(mine, X)
    with torch.no_grad():
        b = layer_outputs(theirs, torch.tensor(X))
    assert [name for name, _ in a] == [name for name, _ in b] == ["0", "1", "2"]
    np.testing.assert_allclose(
        a[1][1], np.tanh(X @ mine[0].weight.data.T + mine[0].bias.data), rtol=1e-15
    )
    for (_, u), (_, v) in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-15)


def test_layer_outputs_rejects_non_sequentials():
    import labkit.nets as nn

    with pytest.raises(ValueError, match="named_children"):
        layer_outputs(np.tanh, np.zeros(2))
    with pytest.raises(ValueError, match="no layers"):
        layer_outputs(nn.Sequential(), np.zeros(2))
