"""Chapter 2 exercises: backpropagation.

Every expected value comes from torch autograd in float64 (or from torch's own
``clip_grad_norm_`` and init formulas) on seeded random inputs; the references below are model
solutions in numpy, held to the same cases by the test suite.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from . import Case, exercise
from ._oracle import to_numpy as _np


def _t(array: np.ndarray, grad: bool = False) -> torch.Tensor:
    """A float64 torch copy of ``array`` (int64 labels stay int64)."""
    tensor = torch.tensor(array)
    return tensor.requires_grad_(True) if grad else tensor


# 2.1 -------------------------------------------------------------------------------------------


def _tanh_backward(grad_out, out):
    """dL/dx = dL/dy * (1 - y**2), from the cached output y = tanh(x)."""
    return grad_out * (1.0 - out**2)


@exercise(
    "2.1",
    title="Backward of a tanh layer",
    points=1,
    function="tanh_backward",
    reference=_tanh_backward,
    hints=(
        "d tanh(x)/dx = 1 - tanh(x)**2, and the layer cached out = tanh(x); multiply "
        "elementwise by grad_out.",
    ),
)
def _tanh_cases():
    rng = np.random.default_rng(201)
    cases = []
    for shape in [(5,), (8, 3), (2, 4, 6)]:
        x = _t(rng.normal(scale=1.5, size=shape), grad=True)
        grad_out = rng.normal(size=shape)
        y = torch.tanh(x)
        y.backward(_t(grad_out))
        cases.append(
            Case(f"x of shape {shape}", (grad_out, _np(y)), expected=_np(x.grad))
        )
    return cases


# 2.2 -------------------------------------------------------------------------------------------


def _linear_backward(grad_out, X, W):
    """For Y = X W^T + b: dX = dY W, dW = dY^T X, db = sum of dY over the batch."""
    return grad_out @ W, grad_out.T @ X, grad_out.sum(axis=0)


@exercise(
    "2.2",
    title="Backward of a linear layer for a batch",
    points=2,
    function="linear_backward",
    reference=_linear_backward,
    hints=(
        "Let the shapes guide you: dX is (N, in) = (N, out) @ (out, in); dW is (out, in) = "
        "(out, N) @ (N, in); db sums grad_out over the batch axis (axis 0).",
    ),
)
def _linear_cases():
    rng = np.random.default_rng(202)
    cases = []
    for n, d_in, d_out in [(1, 3, 2), (6, 4, 5), (32, 10, 3)]:
        X = _t(rng.normal(size=(n, d_in)), grad=True)
        W = _t(rng.normal(size=(d_out, d_in)), grad=True)
        b = _t(rng.normal(size=d_out), grad=True)
        grad_out = rng.normal(size=(n, d_out))
        F.linear(X, W, b).backward(_t(grad_out))
        cases.append(
            Case(
                f"N={n}, in={d_in}, out={d_out}",
                (grad_out, _np(X), _np(W)),
                expected=(_np(X.grad), _np(W.grad), _np(b.grad)),
            )
        )
    return cases


# 2.3 -------------------------------------------------------------------------------------------


def _softmax_cross_entropy(logits, y):
    """Mean cross-entropy of softmax(logits) against labels y, and its gradient (P - onehot(y)) / N."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), largest entry 0
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), y].mean()
    grad = np.exp(log_p)
    grad[np.arange(n), y] -= 1.0
    return float(loss), grad / n


@exercise(
    "2.3",
    title="Softmax cross-entropy: loss and gradient",
    points=3,
    function="softmax_cross_entropy",
    reference=_softmax_cross_entropy,
    hints=(
        "The gradient of the mean loss is (softmax(logits) - onehot(y)) / N. For the loss use "
        "log-softmax with the row maximum subtracted first, or large logits overflow exp.",
    ),
)
def _softmax_ce_cases():
    rng = np.random.default_rng(203)
    cases = []
    for label, n, c, scale in [
        ("N=1, 3 classes", 1, 3, 1.0),
        ("N=8, 5 classes", 8, 5, 2.0),
        ("N=64, 10 classes", 64, 10, 3.0),
        ("N=6, 4 classes, logits near 1000", 6, 4, 1.0),
    ]:
        logits = rng.normal(scale=scale, size=(n, c))
        if "1000" in label:
            logits += 1000.0
        y = rng.integers(0, c, size=n).astype(np.int64)
        z = _t(logits, grad=True)
        loss = F.cross_entropy(z, _t(y))
        loss.backward()
        cases.append(Case(label, (logits, y), expected=(loss.item(), _np(z.grad))))
    return cases


# 2.4 -------------------------------------------------------------------------------------------


def _mlp_gradients(X, y, W1, b1, W2, b2):
    """Loss and gradients of mean CE(softmax(tanh(X W1^T + b1) W2^T + b2), y)."""
    n = X.shape[0]
    H = np.tanh(X @ W1.T + b1)  # (N, hidden)
    Z = H @ W2.T + b2  # (N, C)
    Z = Z - Z.max(axis=1, keepdims=True)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    loss = -np.log(P[np.arange(n), y]).mean()
    dZ = P.copy()
    dZ[np.arange(n), y] -= 1.0
    dZ /= n  # (N, C)
    dH = dZ @ W2  # (N, hidden)
    dA = dH * (1.0 - H**2)  # through tanh
    return {
        "loss": float(loss),
        "W1": dA.T @ X,
        "b1": dA.sum(axis=0),
        "W2": dZ.T @ H,
        "b2": dZ.sum(axis=0),
    }


@exercise(
    "2.4",
    title="Backpropagation through a two-layer network",
    points=4,
    function="mlp_gradients",
    reference=_mlp_gradients,
    hints=(
        "Go backward one layer at a time: dZ = (P - onehot(y)) / N, then dW2 = dZ^T H, "
        "dH = dZ W2, through tanh with (1 - H**2), then dW1 = dA^T X. Biases sum over the batch.",
    ),
)
def _mlp_cases():
    rng = np.random.default_rng(204)
    cases = []
    for n, d_in, hidden, c in [(4, 2, 3, 2), (16, 5, 8, 3), (50, 3, 20, 4)]:
        X = rng.normal(size=(n, d_in))
        y = rng.integers(0, c, size=n).astype(np.int64)
        params = {
            "W1": rng.normal(scale=1 / math.sqrt(d_in), size=(hidden, d_in)),
            "b1": rng.normal(scale=0.1, size=hidden),
            "W2": rng.normal(scale=1 / math.sqrt(hidden), size=(c, hidden)),
            "b2": rng.normal(scale=0.1, size=c),
        }
        t = {k: _t(v, grad=True) for k, v in params.items()}
        logits = F.linear(
            torch.tanh(F.linear(_t(X), t["W1"], t["b1"])), t["W2"], t["b2"]
        )
        loss = F.cross_entropy(logits, _t(y))
        loss.backward()
        expected = {"loss": loss.item(), **{k: _np(v.grad) for k, v in t.items()}}
        cases.append(
            Case(
                f"N={n}, in={d_in}, hidden={hidden}, classes={c}",
                (X, y, params["W1"], params["b1"], params["W2"], params["b2"]),
                expected=expected,
            )
        )
    return cases


# 2.5 -------------------------------------------------------------------------------------------


def _central_difference_grad(W, X, Y, eps):
    """(L(W + eps E_ij) - L(W - eps E_ij)) / (2 eps) for L(W) = mean((tanh(X W^T) - Y)**2)."""

    def loss(V):
        return np.mean((np.tanh(X @ V.T) - Y) ** 2)

    W = W.copy()
    grad = np.zeros_like(W)
    for i in np.ndindex(W.shape):
        old = W[i]
        W[i] = old + eps
        plus = loss(W)
        W[i] = old - eps
        minus = loss(W)
        W[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


@exercise(
    "2.5",
    title="A central-difference numerical gradient",
    points=2,
    function="central_difference_grad",
    reference=_central_difference_grad,
    rtol=1e-6,
    atol=1e-9,
    hints=(
        "Perturb one entry of W at a time by +eps and -eps, evaluate the loss both times, divide "
        "the difference by 2*eps and put the entry back. A one-sided difference (f(w+eps) - "
        "f(w)) / eps is not accurate enough to pass.",
    ),
)
def _central_difference_cases():
    # Expected: torch autograd's exact gradient. The tolerance admits central differences (error
    # about eps**2) and rejects one-sided ones (error about eps, 1e-6 here; see the tests).
    rng = np.random.default_rng(205)
    cases = []
    for n, d_in, d_out in [(5, 2, 1), (10, 3, 2), (20, 4, 3)]:
        X = rng.normal(size=(n, d_in))
        Y = rng.normal(scale=0.5, size=(n, d_out))
        W = rng.normal(scale=0.8, size=(d_out, d_in))
        w = _t(W, grad=True)
        torch.mean((torch.tanh(_t(X) @ w.T) - _t(Y)) ** 2).backward()
        cases.append(
            Case(
                f"W of shape {(d_out, d_in)}, N={n}",
                (W, X, Y, 1e-5),
                expected=_np(w.grad),
            )
        )
    return cases


# 2.6 -------------------------------------------------------------------------------------------


def _fans(shape):
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _init_std(shape, scheme):
    """Standard deviation of the weight init: lecun 1/sqrt(fan_in), xavier sqrt(2/(fan_in+fan_out)),
    he sqrt(2/fan_in), torch_default (uniform on +-1/sqrt(fan_in)) 1/sqrt(3 fan_in)."""
    fan_in, fan_out = _fans(tuple(shape))
    return {
        "lecun": math.sqrt(1 / fan_in),
        "xavier": math.sqrt(2 / (fan_in + fan_out)),
        "he": math.sqrt(2 / fan_in),
        "torch_default": math.sqrt(1 / (3 * fan_in)),
    }[scheme]


def _torch_init_std(shape, scheme):
    """The same standard deviations from torch's own fan computation and gains."""
    w = torch.empty(shape, dtype=torch.float64)
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(w)
    if scheme == "lecun":
        return 1.0 / math.sqrt(fan_in)
    if scheme == "xavier":  # as in torch.nn.init.xavier_normal_ with gain 1
        return math.sqrt(2.0 / float(fan_in + fan_out))
    if scheme == "he":  # as in torch.nn.init.kaiming_normal_(nonlinearity="relu")
        return torch.nn.init.calculate_gain("relu") / math.sqrt(fan_in)
    # torch.nn.Linear / Conv2d reset_parameters: kaiming_uniform_(a=sqrt(5)), bound = gain*sqrt(3/fan_in)
    bound = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(
        3.0 / fan_in
    )
    return bound / math.sqrt(3.0)  # std of U(-bound, bound)


@exercise(
    "2.6",
    title="Initialisation scales",
    points=1,
    function="init_std",
    reference=_init_std,
    hints=(
        "fan_in = shape[1] * (kernel size), fan_out = shape[0] * (kernel size), where the kernel "
        "size is the product of shape[2:] (1 for a linear layer). A uniform U(-a, a) has "
        "standard deviation a / sqrt(3).",
    ),
)
def _init_cases():
    cases = []
    for shape in [(64, 32), (10, 300), (16, 3, 3, 3), (8, 4, 5)]:
        for scheme in ["lecun", "xavier", "he", "torch_default"]:
            cases.append(
                Case(
                    f"shape {shape}, {scheme}",
                    (shape, scheme),
                    expected=_torch_init_std(shape, scheme),
                )
            )
    return cases


# 2.7 -------------------------------------------------------------------------------------------


def _clip_grad_norm(grads, max_norm):
    """Scale all grads by min(1, max_norm / (total + 1e-6)), total = sqrt(sum of all squares)."""
    total = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    coef = min(1.0, max_norm / (total + 1e-6))
    return tuple(g * coef for g in grads), total


@exercise(
    "2.7",
    title="Clip gradients by their global norm",
    points=2,
    function="clip_grad_norm",
    reference=_clip_grad_norm,
    hints=(
        "One norm over all arrays together: sqrt(sum of every squared entry). The factor is "
        "max_norm / (total + 1e-6), capped at 1, and it multiplies every array.",
    ),
)
def _clip_cases():
    rng = np.random.default_rng(207)
    cases = []
    for label, shapes, scale, max_norm in [
        ("one array, clipped", [(4, 3)], 3.0, 1.0),
        ("three arrays, clipped", [(5, 2), (5,), (3, 5)], 2.0, 0.5),
        ("three arrays, below max_norm: unchanged", [(5, 2), (5,), (3, 5)], 0.1, 5.0),
        ("a large layer, clipped", [(50, 20), (50,)], 10.0, 1.0),
        ("small gradients, clipped (the 1e-6 matters)", [(3, 2), (3,)], 0.005, 0.005),
    ]:
        grads = tuple(rng.normal(scale=scale, size=s) for s in shapes)
        params = [
            torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in shapes
        ]
        for p, g in zip(params, grads):
            p.grad = _t(g.copy())
        total = torch.nn.utils.clip_grad_norm_(params, max_norm)
        cases.append(
            Case(
                label,
                (grads, max_norm),
                expected=(tuple(_np(p.grad) for p in params), float(total)),
            )
        )
    return cases
